"""What must hold in the stored data whatever happened: checked after tests."""

from collections import Counter

from sqlalchemy import select

from app.execution.status import FINISHED_EXECUTION, FINISHED_STEP
from app.storage.database import Database
from app.storage.models import EventRow, ExecutionRow, PlanStepRow, RunRow

# every run ends with exactly one of these, naming it by run_id
RUN_TERMINAL_EVENTS = {
    "step.succeeded",
    "step.failed",
    "step.timed_out",
    "step.cancelled",
    "step.retrying",
}


async def check_invariants(database_url: str) -> int:
    """Assert the invariants over every execution; the number checked."""
    database = Database(database_url)
    try:
        async with database.reader() as session:
            executions = (await session.scalars(select(ExecutionRow))).all()
            runs = (await session.scalars(select(RunRow))).all()
            steps = (await session.scalars(select(PlanStepRow))).all()
            events = (
                await session.scalars(
                    select(EventRow).order_by(EventRow.execution_id, EventRow.seq)
                )
            ).all()
    finally:
        await database.dispose()

    seqs: dict[str, list[int]] = {}
    terminal: Counter[str] = Counter()
    for event in events:
        seqs.setdefault(event.execution_id, []).append(event.seq)
        if event.type in RUN_TERMINAL_EVENTS and event.data.get("run_id"):
            terminal[event.data["run_id"]] += 1

    ended = FINISHED_EXECUTION - {"planned"}  # a dry run's steps stay pending
    for execution in executions:
        found = seqs.get(execution.id, [])
        assert found == list(range(1, len(found) + 1)), (execution.id, "seq gaps")
        assert len(found) == execution.last_seq, (execution.id, "last_seq")
        if execution.status in FINISHED_EXECUTION:
            assert execution.owner is None, (execution.id, "finished but owned")
    finished = {e.id for e in executions if e.status in ended}
    for run in runs:
        if run.execution_id in finished:
            assert run.status != "running", (run.id, "running in a finished execution")
        if run.status != "running":
            assert terminal[run.id] == 1, (run.id, run.status, terminal[run.id])
        else:
            assert terminal[run.id] == 0, (run.id, "running with a terminal event")
    for step in steps:
        if step.execution_id in finished:
            assert step.status in FINISHED_STEP, (step.step_id, step.status)
    attempts = Counter((run.execution_id, run.step_id, run.attempt) for run in runs)
    assert max(attempts.values(), default=1) == 1, "an attempt was started twice"
    return len(executions)
