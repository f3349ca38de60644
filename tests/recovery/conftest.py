"""Service processes for the recovery tests, stopped and checked afterwards."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.api.test_executions import step
from tests.invariants import check_invariants
from tests.serving import ServiceProcess

Processes = Callable[..., ServiceProcess]


def plan(*steps: dict, **config: object) -> dict:
    """A request for the scripted test agent (see tests/agents/scripted.py)."""
    return {
        "task": "survive a crash",
        "plan": {"steps": list(steps)},
        "config": {"profile": "scripted", **config},
    }


async def serve(
    database_url: str, folder: Path, defaults: dict[str, str] | None = None
) -> AsyncIterator[Processes]:
    """A maker of service processes; at the end they are killed, the data checked."""
    started: list[ServiceProcess] = []

    def make(**settings: str) -> ServiceProcess:
        process = ServiceProcess(database_url, folder, (defaults or {}) | settings)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()
    await check_invariants(database_url)


@pytest.fixture
async def processes(database_url: str, tmp_path: Path) -> AsyncIterator[Processes]:
    async for make in serve(database_url, tmp_path):
        yield make


__all__ = ["Processes", "plan", "serve", "step"]
