"""The simulated runner: waits for a step's estimate instead of running an agent."""

import asyncio
import logging

from app.runners.base import Progress, StepContext, StepResult

logger = logging.getLogger(__name__)


class SimulatedRunner:
    """Sleeps for the step's estimate (scaled) and returns a result marked simulated.

    Dry previews and the built-in "simulated" profile use it; it never changes
    shared state, so its results cannot be mistaken for an agent's work.
    """

    kind = "simulated"

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must not be negative")
        self.time_scale = time_scale

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """Wait for the scaled estimate, then report that no agent ran."""
        delay_ms = round(context.estimate_ms * self.time_scale)
        await progress.log(
            f"Simulating the {context.agent} step for {delay_ms} ms; no agent runs."
        )
        logger.debug(
            "simulated.step",
            extra={"step_id": context.step_id, "delay_ms": delay_ms},
        )

        await asyncio.sleep(delay_ms / 1000)
        return StepResult(output=_simulated_output(context, delay_ms))


def _simulated_output(context: StepContext, delay_ms: int) -> dict[str, object]:
    summary = (
        f"Simulated {context.agent} step: no agent ran; "
        f"'{context.step_id}' waited {delay_ms} ms in place of real work."
    )
    return {
        "simulated": True,
        "agent": context.agent,
        "step_id": context.step_id,
        "summary": summary,
    }
