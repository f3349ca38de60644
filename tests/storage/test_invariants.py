"""The invariant check itself catches what it is meant to catch."""

import uuid

import pytest

from app.storage import migrate
from app.storage.database import Database
from app.storage.models import EventRow, ExecutionRow, RunRow
from app.storage.repository import utcnow
from tests.invariants import check_invariants


async def store(database_url: str, status: str, seqs: list[int], run: str | None):
    """One execution with events numbered seqs and, optionally, one run."""
    database = Database(database_url)
    await migrate.upgrade(database)
    execution_id = str(uuid.uuid4())
    async with database.transaction() as session:
        session.add(
            ExecutionRow(
                id=execution_id,
                task="t",
                mode="explicit",
                profile="simulated",
                config={},
                plan_figures={},
                status=status,
                dry_run=False,
                last_seq=len(seqs),
                created_at=utcnow(),
            )
        )
        await session.flush()
        for seq in seqs:
            session.add(
                EventRow(
                    execution_id=execution_id,
                    seq=seq,
                    type="step.log",
                    data={},
                    created_at=utcnow(),
                )
            )
        if run is not None:
            session.add(
                RunRow(
                    id=str(uuid.uuid4()),
                    execution_id=execution_id,
                    step_id="a",
                    attempt=1,
                    agent="builder",
                    runner="simulated",
                    status=run,
                    started_at=utcnow(),
                )
            )
    await database.dispose()


class TestTheCheck:
    async def test_clean_data_passes(self, database_url: str) -> None:
        await store(database_url, "running", [1, 2, 3], "running")
        assert await check_invariants(database_url) == 1

    async def test_a_gap_in_seq_is_caught(self, database_url: str) -> None:
        await store(database_url, "running", [1, 3], None)
        with pytest.raises(AssertionError, match="seq gaps"):
            await check_invariants(database_url)

    async def test_a_run_left_running_in_a_finished_execution_is_caught(
        self, database_url: str
    ) -> None:
        await store(database_url, "succeeded", [1], "running")
        with pytest.raises(AssertionError, match="running in a finished execution"):
            await check_invariants(database_url)

    async def test_a_run_without_its_terminal_event_is_caught(
        self, database_url: str
    ) -> None:
        await store(database_url, "running", [1], "failed")
        with pytest.raises(AssertionError, match="failed"):
            await check_invariants(database_url)
