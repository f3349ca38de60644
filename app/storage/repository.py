"""Reads and writes of executions and everything they own, on one session.

The repository flushes, never commits: the caller's unit of work decides.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from app.errors import ExecutionNotFound
from app.execution.status import (
    EXECUTION_TRANSITIONS,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    IllegalTransition,
    check_transition,
)
from app.storage.models import (
    EventRow,
    ExecutionRow,
    PlanStepRow,
    RunRow,
    SharedStateRow,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class LeaseLost(RuntimeError):
    """This process no longer owns the execution it was about to write to."""

    def __init__(self, execution_id: str, owner: str) -> None:
        super().__init__(f"{owner} no longer owns execution {execution_id}")
        self.execution_id = execution_id


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


class ExecutionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # executions

    async def get(self, execution_id: str) -> ExecutionRow:
        row = None
        if _is_uuid(execution_id):
            row = await self.session.get(ExecutionRow, execution_id)
        if row is None:
            raise ExecutionNotFound(
                f"no execution with id '{execution_id}'", execution_id=execution_id
            )
        return row

    async def page(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[Sequence[ExecutionRow], int]:
        query = select(ExecutionRow)
        if status is not None:
            query = query.where(ExecutionRow.status == status)
        total = await self.session.scalar(
            select(func.count()).select_from(query.subquery())
        )
        ordered = query.order_by(ExecutionRow.created_at.desc(), ExecutionRow.id)
        rows = await self.session.scalars(ordered.limit(limit).offset(offset))
        return rows.all(), total or 0

    async def unfinished(self) -> Sequence[ExecutionRow]:
        rows = await self.session.scalars(
            select(ExecutionRow).where(ExecutionRow.status.in_(["accepted", "running"]))
        )
        return rows.all()

    def set_status(self, row: ExecutionRow, target: str, **fields: Any) -> None:
        check_transition("execution", EXECUTION_TRANSITIONS, row.status, target)
        row.status = target
        for name, value in fields.items():
            setattr(row, name, value)

    # steps and runs

    async def steps(self, execution_id: str) -> Sequence[PlanStepRow]:
        rows = await self.session.scalars(
            select(PlanStepRow)
            .where(PlanStepRow.execution_id == execution_id)
            .order_by(PlanStepRow.position)
            # rows a change's statements wrote since they were loaded: read again
            .execution_options(populate_existing=True)
        )
        return rows.all()

    async def runs(self, execution_id: str) -> Sequence[RunRow]:
        rows = await self.session.scalars(
            select(RunRow)
            .where(RunRow.execution_id == execution_id)
            .order_by(RunRow.started_at, RunRow.step_id)
            # rows a change's statements wrote since they were loaded: read again
            .execution_options(populate_existing=True)
        )
        return rows.all()

    # events

    async def events_after(
        self, execution_id: str, after_seq: int, limit: int
    ) -> Sequence[EventRow]:
        rows = await self.session.scalars(
            select(EventRow)
            .where(EventRow.execution_id == execution_id, EventRow.seq > after_seq)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        return rows.all()

    async def last_event(
        self, execution_id: str, step_id: str, type: str
    ) -> EventRow | None:
        return await self.session.scalar(
            select(EventRow)
            .where(
                EventRow.execution_id == execution_id,
                EventRow.step_id == step_id,
                EventRow.type == type,
            )
            .order_by(EventRow.seq.desc())
            .limit(1)
        )

    # shared state

    def _by_code_point(self, column: Any) -> Any:
        """Order text by code point on every database, whatever its collation."""
        bind = self.session.bind
        return column.collate("C") if bind.dialect.name == "postgresql" else column

    async def state(self, execution_id: str) -> Sequence[SharedStateRow]:
        rows = await self.session.scalars(
            select(SharedStateRow)
            .where(SharedStateRow.execution_id == execution_id)
            .order_by(self._by_code_point(SharedStateRow.key))
        )
        return rows.all()


# the writes a change is made of: statements built once, on the tables, that a
# synchronous or an asynchronous connection carries out alike with their values


@dataclass(frozen=True)
class Write:
    """One statement of a change; a ``transition`` must change exactly one row.

    ``transition`` is what, from which statuses, to which: IllegalTransition
    names them when the row was not in one of those statuses.
    """

    statement: Executable
    values: dict[str, Any]
    transition: tuple[str, list[str], str] | None = None
    inserts: bool = False  # a new row, which later writes may change

    def check(self, result: Result[Any]) -> None:
        changed = result.rowcount  # type: ignore[attr-defined]
        if self.transition is not None and changed != 1:
            raise self.refused()

    def refused(self) -> IllegalTransition:
        assert self.transition is not None
        what, sources, target = self.transition
        return IllegalTransition(what, f"not {' or '.join(sources)}", target)

    @property
    def shape(self) -> tuple[int, tuple[str, ...]]:
        """Writes of one shape are carried out by one statement, executed many."""
        return id(self.statement), tuple(self.values)


def write_many(connection: Connection, writes: list[Write]) -> None:
    """Carry out writes of one shape together; raise if any was refused."""
    first = writes[0]
    result = connection.execute(first.statement, [write.values for write in writes])
    if first.transition is not None and result.rowcount != len(writes):
        raise first.refused()  # one of them was: the caller finds out which


_executions = ExecutionRow.__table__
_steps = PlanStepRow.__table__
_runs = RunRow.__table__
_state = SharedStateRow.__table__
_events = EventRow.__table__
ADD_EVENTS = insert(_events)  # executed with a list of events' values

_CLAIM = {
    fenced: update(_executions)
    .where(_executions.c.id == bindparam("b_execution"))
    .where(_executions.c.owner == bindparam("b_owner") if fenced else true())
    .values(last_seq=_executions.c.last_seq + bindparam("b_count"))
    .returning(_executions.c.last_seq)
    for fenced in (False, True)
}
_STEP_STATUS = (
    update(_steps)
    .where(
        _steps.c.execution_id == bindparam("b_execution"),
        _steps.c.step_id == bindparam("b_step"),
        _steps.c.status.in_([bindparam("b_from"), bindparam("b_or_from")]),
    )
    .values(status=bindparam("b_target"))
)
_FINISH_RUN = update(_runs).where(
    _runs.c.id == bindparam("b_run"),
    _runs.c.status.in_([bindparam("b_from"), bindparam("b_or_from")]),
)  # the columns set are the values it is given
_ADD_RUN = insert(_runs)


def claim_seqs(
    execution_id: str, owner: str | None, count: int
) -> tuple[Executable, dict[str, Any]]:
    """Take the execution's next ``count`` event numbers; returns the last one.

    Given an owner, nothing is taken unless the owner still holds the lease.
    """
    values = {"b_execution": execution_id, "b_count": count, "b_owner": owner}
    return _CLAIM[owner is not None], values


def step_status(execution_id: str, step_id: str, target: str) -> Write:
    """Move a step to ``target`` from a status the transitions allow."""
    sources = _STEP_SOURCES[target]
    values = {"b_execution": execution_id, "b_step": step_id, "b_target": target}
    values |= _from(sources)
    return Write(_STEP_STATUS, values, (f"step {step_id}", sources, target))


def add_run(**values: Any) -> Write:
    return Write(_ADD_RUN, values, inserts=True)


def finish_run(run_id: str, target: str, **fields: Any) -> Write:
    sources = _RUN_SOURCES[target]
    values = {"b_run": run_id, "status": target} | _from(sources)
    # a running run's other columns are empty: None leaves one as it is
    values |= {name: value for name, value in fields.items() if value is not None}
    return Write(_FINISH_RUN, values, (f"run {run_id}", sources, target))


def put_state(dialect: str, execution_id: str, key: str, **fields: Any) -> Write:
    """Store one key as the shared state's merge left it."""
    values = {"execution_id": execution_id, "key": key, **fields}
    return Write(_PUT_STATE[dialect], values)


def _upsert_state(insert_for: Any) -> Executable:
    statement = insert_for(_state)
    kept = ("execution_id", "key")
    changed = {
        c.name: statement.excluded[c.name] for c in _state.c if c.name not in kept
    }
    return statement.on_conflict_do_update(index_elements=kept, set_=changed)


_PUT_STATE = {
    "sqlite": _upsert_state(sqlite.insert),
    "postgresql": _upsert_state(postgresql.insert),
}


def _sources_of(table: dict[str, frozenset[str]]) -> dict[str, list[str]]:
    """For each status, the statuses a transition to it may come from."""
    sources: dict[str, list[str]] = {}
    for source, targets in sorted(table.items()):
        for target in targets:
            sources.setdefault(target, []).append(source)
    assert all(len(s) <= 2 for s in sources.values())  # the statements take two
    return sources


_STEP_SOURCES = _sources_of(STEP_TRANSITIONS)
_RUN_SOURCES = _sources_of(RUN_TRANSITIONS)


def _from(sources: list[str]) -> dict[str, str]:
    """The statuses a write may move from, as the statements' two parameters."""
    return {"b_from": sources[0], "b_or_from": sources[-1]}
