"""Shared pieces of the runner tests: a progress recorder, step contexts, pid files."""

import asyncio
import os
import signal
from pathlib import Path

import pytest

from app.runners.base import StepContext
from tests.runners.processes import is_running

AGENT_SCRIPT = Path(__file__).parent / "agents" / "agent.py"


class RecordingProgress:
    """Keeps every progress line a runner reports."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def log(self, line: str) -> None:
        self.lines.append(line)

    async def wait_for_line(self, line: str, timeout: float = 60.0) -> None:
        """Wait until the line has been reported."""
        async with asyncio.timeout(timeout):
            while line not in self.lines:
                await asyncio.sleep(0.02)


def _make_context(instructions: str = "", **fields) -> StepContext:
    values = {
        "execution_id": "exec-1",
        "run_id": "run-1",
        "attempt": 1,
        "step_id": "build-api",
        "agent": "builder",
        "title": "Build the API",
        "instructions": instructions,
        "task": "Implement login",
    }
    return StepContext(**{**values, **fields})


@pytest.fixture
def progress() -> RecordingProgress:
    return RecordingProgress()


@pytest.fixture
def make_context():
    """Build a builder step's context from its instructions and any other fields."""
    return _make_context


@pytest.fixture
def agent_script() -> Path:
    return AGENT_SCRIPT


@pytest.fixture
def pid_files(tmp_path):
    """Pid files the agents write; whatever they name is killed after the test."""
    folder = tmp_path / "pids"
    folder.mkdir()
    yield folder
    for path in folder.glob("*.pid"):
        pid = int(path.read_text())
        if is_running(pid):
            os.kill(pid, signal.SIGKILL)
