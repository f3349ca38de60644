"""Batched changes: written together, each still whole, published in commit order.

On SQLite the changes queued while one batch is written go in the next, in one
transaction; on PostgreSQL each is a transaction of its own. Either way a change
that fails is rolled back alone, and its neighbours commit.
"""

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event, select

from app.events.broker import Broker
from app.events.types import EventType
from app.execution.recorder import Recorder
from app.execution.status import IllegalTransition
from app.storage import migrate
from app.storage.database import Database
from app.storage.models import EventRow, ExecutionRow, PlanStepRow, RunRow
from app.storage.repository import LeaseLost, utcnow

OWNER = "process-a"


async def execution(database: Database, steps: int, owner: str = OWNER) -> str:
    """A running execution owned by ``owner`` with steps s0.. all pending."""
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
                status="running",
                dry_run=False,
                last_seq=0,
                created_at=utcnow(),
                owner=owner,
            )
        )
        await session.flush()
        for position in range(steps):
            session.add(
                PlanStepRow(
                    execution_id=execution_id,
                    step_id=f"s{position}",
                    position=position,
                    agent="builder",
                    title="t",
                    instructions="i",
                    depends_on=[],
                    estimate_ms=0,
                    phase=0,
                    status="pending",
                )
            )
    return execution_id


async def start(recorder: Recorder, execution_id: str, step_id: str) -> None:
    """What a step's start writes: its status, its run, its event."""
    async with recorder.batched(execution_id, OWNER) as change:
        await change.set_step_status(step_id, "running")
        await change.add_run(
            id=f"{execution_id[:8]}-{step_id}",
            step_id=step_id,
            attempt=1,
            agent="builder",
            runner="simulated",
            status="running",
            started_at=utcnow(),
        )
        await change.event(EventType.step_started, step_id)


async def stored(database: Database, execution_id: str) -> dict[str, Any]:
    async with database.reader() as session:
        steps = await session.scalars(
            select(PlanStepRow).where(PlanStepRow.execution_id == execution_id)
        )
        runs = await session.scalars(
            select(RunRow.step_id).where(RunRow.execution_id == execution_id)
        )
        events = await session.scalars(
            select(EventRow)
            .where(EventRow.execution_id == execution_id)
            .order_by(EventRow.seq)
        )
        last_seq = await session.scalar(
            select(ExecutionRow.last_seq).where(ExecutionRow.id == execution_id)
        )
        return {
            "statuses": {step.step_id: step.status for step in steps},
            "runs": sorted(runs),
            "events": [(row.seq, row.step_id) for row in events],
            "last_seq": last_seq,
        }


@pytest.fixture
async def database(database_url: str):
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


def commits(database: Database) -> list[int]:
    """Counts the batch writer's commits (SQLite only)."""
    counted = [0]
    assert database.batches is not None

    def count(_connection: Any) -> None:
        counted[0] += 1

    event.listen(database.batches.engine, "commit", count)
    return counted


async def test_changes_queued_together_commit_in_one_transaction(
    database: Database,
) -> None:
    recorder = Recorder(database, Broker())
    execution_id = await execution(database, 50)
    counted = commits(database) if database.batches is not None else None

    await asyncio.gather(*(start(recorder, execution_id, f"s{i}") for i in range(50)))

    data = await stored(database, execution_id)
    assert set(data["statuses"].values()) == {"running"}
    assert len(data["runs"]) == 50
    assert [seq for seq, _ in data["events"]] == list(range(1, 51))
    assert data["last_seq"] == 50
    if counted is not None:  # queued while none was being written: one batch
        assert counted[0] == 1


async def test_a_refused_change_is_rolled_back_alone(database: Database) -> None:
    recorder = Recorder(database, Broker())
    execution_id = await execution(database, 3)

    async def refused() -> None:  # pending -> succeeded is not a transition
        async with recorder.batched(execution_id, OWNER) as change:
            await change.set_step_status("s1", "succeeded")
            await change.event(EventType.step_succeeded, "s1")

    outcomes = await asyncio.gather(
        start(recorder, execution_id, "s0"),
        refused(),
        start(recorder, execution_id, "s2"),
        return_exceptions=True,
    )

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], IllegalTransition)
    assert "step s1" in str(outcomes[1])
    data = await stored(database, execution_id)
    assert data["statuses"] == {"s0": "running", "s1": "pending", "s2": "running"}
    assert data["runs"] == ["s0", "s2"]
    # the refused change took no event number: no gap
    assert data["events"] == [(1, "s0"), (2, "s2")]
    assert data["last_seq"] == 2


async def test_a_lost_lease_fails_only_that_executions_change(
    database: Database,
) -> None:
    recorder = Recorder(database, Broker())
    kept = await execution(database, 1)
    taken = await execution(database, 1, owner="process-b")

    outcomes = await asyncio.gather(
        start(recorder, kept, "s0"),
        start(recorder, taken, "s0"),
        return_exceptions=True,
    )

    assert outcomes[0] is None
    assert isinstance(outcomes[1], LeaseLost)
    assert (await stored(database, kept))["statuses"] == {"s0": "running"}
    untouched = await stored(database, taken)
    assert untouched["statuses"] == {"s0": "pending"}
    assert untouched["runs"] == [] and untouched["events"] == []


async def test_events_are_published_once_committed_each_once(
    database: Database,
) -> None:
    """On SQLite in seq order too; on PostgreSQL, where concurrent changes are
    transactions of their own, watchers fill what comes out of order from the
    table."""
    broker = Broker()
    recorder = Recorder(database, broker)
    execution_id = await execution(database, 200)
    refused_step = "s7"

    async def refused() -> None:
        async with recorder.batched(execution_id, OWNER) as change:
            await change.set_step_status(refused_step, "succeeded")
            await change.event(EventType.step_succeeded, refused_step)

    with broker.subscribe(execution_id) as queue:
        writes = [
            refused() if i == 7 else start(recorder, execution_id, f"s{i}")
            for i in range(200)
        ]
        await asyncio.gather(*writes, return_exceptions=True)
        published = [queue.get_nowait() for _ in range(queue.qsize())]

    assert refused_step not in {event.step_id for event in published}
    stored_events = (await stored(database, execution_id))["events"]
    assert len(stored_events) == 199
    assert sorted((e.seq, e.step_id) for e in published) == stored_events
    if database.batches is not None:
        assert [(e.seq, e.step_id) for e in published] == stored_events


async def test_a_cancelled_writer_still_has_its_change_written(
    database: Database,
) -> None:
    """A cancel that lands while the change waits for its batch loses nothing."""
    broker = Broker()
    recorder = Recorder(database, broker)
    execution_id = await execution(database, 1)

    with broker.subscribe(execution_id) as queue:
        writing = asyncio.ensure_future(start(recorder, execution_id, "s0"))
        await asyncio.sleep(0)  # queued, not yet written
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert [event.step_id for event in [queue.get_nowait()]] == ["s0"]

    data = await stored(database, execution_id)
    assert data["statuses"] == {"s0": "running"} and data["runs"] == ["s0"]
