"""Reads and writes of executions and everything they own, on one session.

The repository flushes, never commits: the caller's unit of work decides.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ExecutionNotFound
from app.execution.status import (
    EXECUTION_TRANSITIONS,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
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
        )
        return rows.all()

    async def set_step_status(
        self, execution_id: str, step_id: str, target: str
    ) -> None:
        row = await self.session.get(PlanStepRow, (execution_id, step_id))
        assert row is not None, (execution_id, step_id)
        check_transition("step", STEP_TRANSITIONS, row.status, target)
        row.status = target

    async def runs(self, execution_id: str) -> Sequence[RunRow]:
        rows = await self.session.scalars(
            select(RunRow)
            .where(RunRow.execution_id == execution_id)
            .order_by(RunRow.started_at, RunRow.step_id)
        )
        return rows.all()

    async def finish_run(self, run_id: str, target: str, **fields: Any) -> RunRow:
        row = await self.session.get(RunRow, run_id)
        assert row is not None, run_id
        check_transition("run", RUN_TRANSITIONS, row.status, target)
        row.status = target
        for name, value in fields.items():
            setattr(row, name, value)
        return row

    # events

    async def append_event(
        self,
        execution_id: str,
        type: str,
        step_id: str | None,
        data: dict[str, Any],
        *,
        owner: str | None = None,
    ) -> EventRow:
        """Append one event with the execution's next ``seq``.

        Given an owner, the event is only appended while that owner holds the
        execution's lease; otherwise LeaseLost is raised and nothing is written.
        """
        query = update(ExecutionRow).where(ExecutionRow.id == execution_id)
        if owner is not None:
            query = query.where(ExecutionRow.owner == owner)
        seq = await self.session.scalar(
            query.values(last_seq=ExecutionRow.last_seq + 1)
            .returning(ExecutionRow.last_seq)
            .execution_options(synchronize_session=False)
        )
        if seq is None and owner is not None:
            raise LeaseLost(execution_id, owner)
        assert seq is not None, execution_id
        row = EventRow(
            execution_id=execution_id,
            seq=seq,
            type=type,
            step_id=step_id,
            data=data,
            created_at=utcnow(),
        )
        self.session.add(row)
        return row

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

    async def put_state(
        self,
        execution_id: str,
        key: str,
        value: Any,
        *,
        version: int,
        merge: str,
        step_id: str,
        run_id: str,
        attempt: int,
        at: datetime,
        writers: list[dict[str, Any]] | None,
    ) -> SharedStateRow:
        """Store one key as the shared state's merge left it."""
        row = await self.session.get(SharedStateRow, (execution_id, key))
        if row is None:
            row = SharedStateRow(execution_id=execution_id, key=key)
            self.session.add(row)
        row.value, row.version, row.merge = value, version, merge
        row.updated_by_step, row.updated_by_run = step_id, run_id
        row.updated_by_attempt, row.updated_at, row.writers = attempt, at, writers
        return row
