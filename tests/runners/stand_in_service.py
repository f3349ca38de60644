"""A stand-in for the service: runs one step of the test agent until it is killed.

    python stand_in_service.py WORKDIR_ROOT KILL_GRACE_SECONDS INSTRUCTIONS

It needs the project on PYTHONPATH, and may run from any working directory.
"""

import asyncio
import sys
from pathlib import Path

from app.runners.base import StepContext
from app.runners.command import CommandRunner

AGENT_SCRIPT = Path(__file__).parent / "agents" / "agent.py"


class IgnoredProgress:
    async def log(self, line: str) -> None:
        pass


async def main(workdir_root: str, kill_grace_seconds: str, instructions: str) -> None:
    runner = CommandRunner(
        [sys.executable, str(AGENT_SCRIPT)],
        workdir_root=Path(workdir_root),
        max_output_bytes=64 * 1024,
        max_log_line_bytes=4096,
        kill_grace_seconds=float(kill_grace_seconds),
    )
    context = StepContext(
        execution_id="exec-1",
        run_id="run-1",
        attempt=1,
        step_id="build-api",
        agent="builder",
        title="Build the API",
        instructions=instructions,
        task="Implement login",
    )
    await runner.run(context, IgnoredProgress())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
