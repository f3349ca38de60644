"""The benchmark's agent, for the python runner: one workload node per step."""

import asyncio
import os
from pathlib import Path
from typing import Any

from app.runners.base import StepContext

# W6: a folder where the benchmark opens an execution's gate once its watchers
# are connected; until then the execution's first steps wait
GATES = os.environ.get("PX_BENCH_GATES")


async def sleep_step(context: StepContext) -> dict[str, Any]:
    """Sleep for the step's estimate (0: yield once) and return a small dict."""
    if GATES and not context.upstream:
        gate = Path(GATES) / context.execution_id
        while not gate.exists():
            await asyncio.sleep(0.005)
    await asyncio.sleep(context.estimate_ms / 1000)
    return {"ok": True}
