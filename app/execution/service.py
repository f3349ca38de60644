"""Executions as the API sees them: submit, read, cancel."""

import asyncio
import logging
import time
import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from app.errors import (
    ExecutionConflict,
    InvalidRequest,
    ShuttingDown,
    TaskTooLong,
)
from app.events.listener import notify_control
from app.events.types import EventType
from app.execution import idempotency
from app.execution.executor import Executor, loop_config, planned_step
from app.execution.recorder import Recorder, event_read
from app.execution.schemas import (
    EventPage,
    ExecutionConfig,
    ExecutionCreate,
    ExecutionPage,
    ExecutionRead,
    ExecutionResult,
    PlanRead,
    RunRead,
    StateEntryRead,
    StepRead,
    plan_figures,
)
from app.execution.status import (
    FINISHED_EXECUTION,
    ExecutionStatus,
    StepStatus,
)
from app.planning import describe, make_plan
from app.planning.models import Plan, RetryPolicy
from app.runners.profiles import ProfileRegistry
from app.settings import Settings
from app.storage.database import Database
from app.storage.models import ExecutionRow, PlanStepRow
from app.storage.repository import ExecutionRepository, utcnow

logger = logging.getLogger(__name__)


class ExecutionService:
    def __init__(
        self,
        database: Database,
        recorder: Recorder,
        executor: Executor,
        registry: ProfileRegistry,
        settings: Settings,
    ) -> None:
        self.database = database
        self.recorder = recorder
        self.executor = executor
        self.registry = registry
        self.settings = settings

    # submit

    async def submit(
        self, request: ExecutionCreate, idempotency_key: str | None = None
    ) -> tuple[ExecutionRead, bool]:
        """Plan the task, store the execution, and start it unless it is a dry run.

        Returns the execution and whether it was stored by an earlier request
        with the same Idempotency-Key (then nothing new is stored or started).
        """
        config = self._resolve(request)
        digest = ""
        if idempotency_key is not None:
            key = idempotency.checked_key(
                idempotency_key, self.settings.idempotency_key_max_chars
            )
            digest = idempotency.request_hash(request, config)
            earlier = await self._earlier(key, digest)
            if earlier is not None:
                return earlier, True
        plan = self._plan(request, config)
        if not self.executor.accepting and not config.dry_run:
            raise ShuttingDown("the service is shutting down; send the request again")
        execution_id = str(uuid.uuid4())
        try:
            await self._store(
                execution_id, request, config, plan, idempotency_key, digest
            )
        except IntegrityError:
            if idempotency_key is None:
                raise
            # another request with the same key was stored first
            earlier = await self._earlier(idempotency_key, digest)
            if earlier is None:
                raise
            return earlier, True
        logger.info(
            "execution.accepted",
            extra={
                "execution_id": execution_id,
                "steps": len(plan.steps),
                "dry_run": config.dry_run,
            },
        )
        if not config.dry_run:
            self.executor.start(
                execution_id,
                request.task,
                plan.steps,
                loop_config(config, plan.estimated_savings_ms),
            )
        read = await self.get(execution_id)
        read.plan = _plan_read(execution_id, plan, {})
        return read, False

    async def _earlier(self, key: str, digest: str) -> ExecutionRead | None:
        async with self.database.reader() as session:
            execution_id = await idempotency.find(session, key, digest)
        if execution_id is None:
            return None
        read = await self.get(execution_id)
        read.plan = await self.plan(execution_id)
        return read

    async def _store(
        self,
        execution_id: str,
        request: ExecutionCreate,
        config: ExecutionConfig,
        plan: Plan,
        idempotency_key: str | None,
        digest: str,
    ) -> None:
        status = ExecutionStatus.planned if config.dry_run else ExecutionStatus.accepted
        async with self.recorder.change(execution_id) as change:
            session = change.repository.session
            execution = _execution_row(execution_id, request.task, config, plan, status)
            if not config.dry_run:
                execution.owner = self.executor.owner
                execution.lease_expires_at = self.executor.leases.expiry()
            session.add(execution)
            await session.flush()
            await session.execute(insert(PlanStepRow), _step_rows(execution_id, plan))
            if idempotency_key is not None:
                await idempotency.store(
                    session,
                    idempotency_key,
                    digest,
                    execution_id,
                    self.settings.idempotency_key_ttl_seconds,
                )
            await change.event(EventType.execution_accepted, dry_run=config.dry_run)
            await change.event(EventType.execution_planned, **plan_figures(plan))
            if config.dry_run:
                execution.finished_at = utcnow()
                await change.event(
                    EventType.execution_finished, status=status.value, reason="dry run"
                )
                execution.reason = "dry run"

    async def purge_idempotency_keys(self) -> int:
        async with self.database.transaction() as session:
            return await idempotency.purge_expired(session)

    def _resolve(self, request: ExecutionCreate) -> ExecutionConfig:
        """The request's config with every default filled in and every limit checked."""
        settings = self.settings
        if len(request.task) > settings.max_task_chars:
            raise TaskTooLong(
                f"task is {len(request.task)} characters; "
                f"the limit is {settings.max_task_chars}",
                length=len(request.task),
                limit=settings.max_task_chars,
            )
        config = request.config.model_copy()
        config.profile = config.profile or settings.default_profile
        self.registry.get(config.profile)
        config.max_parallel = config.max_parallel or settings.max_parallel_default
        if config.max_parallel > settings.max_parallel_limit:
            raise InvalidRequest.on_field(
                "body.config.max_parallel",
                f"{config.max_parallel} is above the server's limit of "
                f"{settings.max_parallel_limit}",
                limit=settings.max_parallel_limit,
            )
        if not config.parallel:
            config.max_parallel = 1
        config.retry = config.retry or RetryPolicy()
        self._check_retry(config.retry, "body.config.retry.max_attempts")
        for index, step in enumerate(request.plan.steps if request.plan else ()):
            if step.retry is not None:
                field = f"body.plan.steps.{index}.retry.max_attempts"
                self._check_retry(step.retry, field)
        config.step_timeout_s = _capped(
            config.step_timeout_s,
            settings.step_timeout_default_seconds,
            settings.step_timeout_max_seconds,
            "body.config.step_timeout_s",
        )
        config.execution_timeout_s = _capped(
            config.execution_timeout_s,
            settings.execution_timeout_default_seconds,
            settings.execution_timeout_max_seconds,
            "body.config.execution_timeout_s",
        )
        return config

    def _check_retry(self, retry: RetryPolicy, field: str) -> None:
        limit = self.settings.retry_max_attempts_limit
        if retry.max_attempts > limit:
            raise InvalidRequest.on_field(
                field,
                f"{retry.max_attempts} is above the limit of {limit}",
                limit=limit,
            )

    def _plan(self, request: ExecutionCreate, config: ExecutionConfig) -> Plan:
        steps = request.plan.steps if request.plan else None
        for step in steps or ():
            if (
                step.timeout_s
                and step.timeout_s > self.settings.step_timeout_max_seconds
            ):
                raise InvalidRequest(
                    f"step {step.id} has timeout_s {step.timeout_s:g}; the limit is "
                    f"{self.settings.step_timeout_max_seconds:g}",
                    step_id=step.id,
                )
        return make_plan(
            request.task,
            mode=config.mode,
            steps=steps,
            max_parallel=config.max_parallel or 1,
            parallel=config.parallel,
            max_steps=self.settings.max_plan_steps,
        )

    # read

    async def get(self, execution_id: str) -> ExecutionRead:
        async with self.database.reader() as session:
            row = await ExecutionRepository(session).get(execution_id)
        return _execution_read(row)

    async def page(
        self, *, status: ExecutionStatus | None, limit: int | None, offset: int
    ) -> ExecutionPage:
        limit = min(
            limit or self.settings.page_size_default, self.settings.page_size_max
        )
        async with self.database.reader() as session:
            rows, total = await ExecutionRepository(session).page(
                status=status.value if status else None, limit=limit, offset=offset
            )
        items = [_execution_read(row) for row in rows]
        return ExecutionPage(items=items, total=total, limit=limit, offset=offset)

    async def plan(self, execution_id: str) -> PlanRead:
        async with self.database.reader() as session:
            repository = ExecutionRepository(session)
            row = await repository.get(execution_id)
            steps = await repository.steps(execution_id)
        plan = Plan(steps=[planned_step(step) for step in steps], **row.plan_figures)
        return _plan_read(row.id, plan, {step.step_id: step.status for step in steps})

    async def runs(self, execution_id: str) -> list[RunRead]:
        async with self.database.reader() as session:
            repository = ExecutionRepository(session)
            await repository.get(execution_id)
            rows = await repository.runs(execution_id)
        return [RunRead.model_validate(row, from_attributes=True) for row in rows]

    async def state(self, execution_id: str) -> list[StateEntryRead]:
        async with self.database.reader() as session:
            repository = ExecutionRepository(session)
            await repository.get(execution_id)
            rows = await repository.state(execution_id)
        return [
            StateEntryRead.model_validate(row, from_attributes=True) for row in rows
        ]

    async def events(
        self, execution_id: str, *, after_seq: int, limit: int | None
    ) -> EventPage:
        limit = min(limit or self.settings.page_size_max, self.settings.page_size_max)
        async with self.database.reader() as session:
            repository = ExecutionRepository(session)
            row = await repository.get(execution_id)
            if after_seq > row.last_seq:
                raise InvalidRequest(
                    f"after_seq {after_seq} is past the last event ({row.last_seq})",
                    errors=[{"field": "after_seq", "problem": "past the last event"}],
                    last_seq=row.last_seq,
                )
            rows = await repository.events_after(execution_id, after_seq, limit)
        items = [event_read(event) for event in rows]
        next_after_seq = items[-1].seq if items else after_seq
        finished = row.status in FINISHED_EXECUTION and next_after_seq >= row.last_seq
        return EventPage(items=items, next_after_seq=next_after_seq, finished=finished)

    # cancel

    async def cancel(self, execution_id: str) -> ExecutionRead:
        """Stop a running execution; one that has finished is a conflict.

        The cancel is stored first, so that it stands whatever happens next. The
        process that runs the execution stops it, whichever process got the
        request; one that no live process runs is taken over here and stopped.
        """
        current = await self.get(execution_id)
        if current.status not in FINISHED_EXECUTION:
            await self._cancel(execution_id, "cancelled by request")
            current = await self.get(execution_id)
            if current.status not in FINISHED_EXECUTION or (
                current.status == ExecutionStatus.cancelled
            ):
                return current  # not finished yet: the stop is under way
        raise ExecutionConflict(
            f"execution {execution_id} is {current.status.value}; "
            "only an accepted or running execution can be cancelled",
            execution_id=execution_id,
            status=current.status.value,
        )

    async def _cancel(self, execution_id: str, reason: str) -> None:
        wait_s = self.settings.cancel_wait_seconds
        executor = self.executor
        # stored first: it stands even if the process running it dies meanwhile
        await executor.leases.ask_cancel(execution_id, reason)
        if executor.owns(execution_id):
            await executor.stop(execution_id, ExecutionStatus.cancelled, reason, wait_s)
            return
        if executor.accepting and await executor.take_over(execution_id):
            await executor.wait(execution_id, wait_s)  # it resumes, then stops
            return
        await notify_control(self.database, f"cancel {execution_id}")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if (await self.get(execution_id)).status in FINISHED_EXECUTION:
                return
            await asyncio.sleep(0.05)

    def cancel_noticed(self, execution_id: str) -> None:
        """A cancel was asked of another process; stop it here if it runs here."""
        if self.executor.owns(execution_id):
            asyncio.create_task(self._cancel_asked(execution_id))

    async def _cancel_asked(self, execution_id: str) -> None:
        async with self.database.reader() as session:
            row = await ExecutionRepository(session).get(execution_id)
        if row.cancel_requested:
            self.executor.cancel_asked(execution_id, row.cancel_requested)


def _capped(value: float | None, default: float, limit: float, field: str) -> float:
    if value is None:
        return default
    if value > limit:
        raise InvalidRequest.on_field(
            field, f"{value:g} is above the limit of {limit:g}", limit=limit
        )
    return value


def _execution_row(
    execution_id: str,
    task: str,
    config: ExecutionConfig,
    plan: Plan,
    status: ExecutionStatus,
) -> ExecutionRow:
    return ExecutionRow(
        id=execution_id,
        task=task,
        task_type=plan.task_type.value if plan.task_type else None,
        mode=plan.mode.value,
        profile=config.profile,
        config=config.model_dump(mode="json"),
        plan_figures=plan_figures(plan),
        status=status.value,
        dry_run=config.dry_run,
        last_seq=0,
        created_at=utcnow(),
    )


def _step_rows(execution_id: str, plan: Plan) -> list[dict[str, Any]]:
    """The plan's steps as rows, inserted together (a plan may have thousands)."""
    return [
        dict(
            execution_id=execution_id,
            step_id=step.id,
            position=position,
            agent=step.agent.value,
            title=step.title,
            instructions=step.instructions,
            depends_on=step.depends_on,
            estimate_ms=step.estimate_ms,
            timeout_s=step.timeout_s,
            retry=step.retry.model_dump(mode="json") if step.retry else None,
            phase=step.phase,
            status=StepStatus.pending.value,
        )
        for position, step in enumerate(plan.steps)
    ]


def _execution_read(row: ExecutionRow) -> ExecutionRead:
    return ExecutionRead(
        id=row.id,
        task=row.task,
        task_type=row.task_type,
        status=ExecutionStatus(row.status),
        dry_run=row.dry_run,
        profile=row.profile,
        config=ExecutionConfig.model_validate(row.config),
        reason=row.reason,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        last_seq=row.last_seq,
        estimated_savings_ms=row.plan_figures["estimated_savings_ms"],
        result=ExecutionResult.model_validate(row.result) if row.result else None,
    )


def _plan_read(execution_id: str, plan: Plan, statuses: dict[str, str]) -> PlanRead:
    steps = [
        StepRead(
            **step.model_dump(),
            status=StepStatus(statuses.get(step.id, StepStatus.pending)),
        )
        for step in plan.steps
    ]
    return PlanRead(
        execution_id=execution_id,
        steps=steps,
        description=describe(plan),
        **plan_figures(plan),
    )
