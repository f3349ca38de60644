"""The benchmark's agent, for the python runner: one workload node per step."""

import asyncio
from typing import Any

from app.runners.base import StepContext


async def sleep_step(context: StepContext) -> dict[str, Any]:
    """Sleep for the step's estimate (0: yield once) and return a small dict."""
    await asyncio.sleep(context.estimate_ms / 1000)
    return {"ok": True}
