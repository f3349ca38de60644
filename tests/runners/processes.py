"""Helpers for tests that watch real processes come and go."""

import asyncio
import os
from pathlib import Path

# generous bounds: they catch a hang, they do not measure speed
PATIENCE_SECONDS = 60.0


def is_running(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_until_gone(pid: int) -> bool:
    """Wait until the process has died; False if it is still running at the end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_SECONDS
    while is_running(pid) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return not is_running(pid)


async def read_pid(path: Path) -> int:
    """Wait for the agent to write a pid file, then read it."""
    async with asyncio.timeout(PATIENCE_SECONDS):
        # the file may exist a moment before its number is written
        while not (path.exists() and path.read_text().strip()):
            await asyncio.sleep(0.02)
    return int(path.read_text())
