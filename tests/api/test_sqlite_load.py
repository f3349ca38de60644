"""Many chatty executions at once on the default database, SQLite.

SQLite takes one writer at a time; every log line is a transaction of its own.
Nothing here measures speed: the test asserts that nothing fails or goes missing.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.settings import Settings
from tests.api.test_executions import all_events, scripted, step
from tests.conftest import PROFILES, Service, start_service

EXECUTIONS = 20
STEPS = 4
LINES = 100
PATIENCE_S = 600.0  # a safety net for a stuck run, not a speed target
POLL_S = 0.2


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'px.db'}",
        profiles_path=PROFILES,
        workdir_root=tmp_path / "runs",
        log_level="WARNING",
        _env_file=None,
    )
    async with start_service(settings) as running:
        yield running


async def watch(service: Service, execution_id: str) -> list[dict]:
    """Read the events as they come, like a polling client, until the last one."""
    events: list[dict] = []
    async with asyncio.timeout(PATIENCE_S):
        while not events or events[-1]["type"] != "execution.finished":
            after_seq = events[-1]["seq"] if events else 0
            response = await service.client.get(
                f"/executions/{execution_id}/events", params={"after_seq": after_seq}
            )
            assert response.status_code == 200, response.text
            page = response.json()["items"]
            assert [e["seq"] for e in page] == list(
                range(after_seq + 1, after_seq + len(page) + 1)
            ), "a reader saw a gap"
            events += page
            await asyncio.sleep(POLL_S)
    return events


class TestManyChattyExecutions:
    async def test_twenty_at_once_all_succeed_and_lose_no_log_line(
        self, sqlite_service: Service
    ) -> None:
        errors = Collected()
        logging.getLogger("app").addHandler(errors)
        steps = [step(f"chatty-{i}", numbered_lines=LINES) for i in range(STEPS)]
        body = scripted(*steps)

        try:
            created = await asyncio.gather(
                *(sqlite_service.submit(f"load {n}", **body) for n in range(EXECUTIONS))
            )
            watched = await asyncio.gather(
                *(watch(sqlite_service, c["id"]) for c in created)
            )
        finally:
            logging.getLogger("app").removeHandler(errors)

        assert [r.getMessage() for r in errors.records] == []
        for execution, seen in zip(created, watched, strict=True):
            await self.assert_complete(sqlite_service, execution["id"], seen)

    async def assert_complete(
        self, service: Service, execution_id: str, seen: list[dict]
    ) -> None:
        execution = (await service.client.get(f"/executions/{execution_id}")).json()
        assert execution["status"] == "succeeded", execution["reason"]
        events = await all_events(service, execution_id)
        assert events == seen
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert execution["last_seq"] == len(events)

        for index in range(STEPS):
            step_id = f"chatty-{index}"
            mine = [e for e in events if e["step_id"] == step_id]
            lines = [e["data"]["line"] for e in mine if e["type"] == "step.log"]
            assert lines == [f"line {n}" for n in range(LINES)], step_id
            assert mine[-1]["type"] == "step.succeeded", step_id
