"""The executor: starts each step the moment its dependencies have succeeded.

An ``ExecutionLoop`` owns one execution. It admits ready steps (``ReadySet``) while
fewer than ``max_parallel`` of its steps are under way; each admitted step waits
for a server-wide slot (``Slots``), highest remaining path first, then its runner
carries it out. The loop wakes when any step ends, records what follows from it
(newly ready steps, steps skipped below a failure, a stop under ``fail_fast``) and
admits again. Phases are never barriers; they are counted for display only.

A stop (cancel, execution timeout, ``fail_fast``, shutdown) prevents new starts
and cancels running steps; each cancelled step records its own end, the steps
that never started end ``skipped``, and the execution's final event is written
last. Every run ends in exactly one terminal status.

``Executor`` holds the loops of this process and the server-wide cap.
"""

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app import logs
from app.events.types import EventType
from app.execution.limits import Slots
from app.execution.ready import Node, PhaseTracker, ReadySet
from app.execution.recorder import (
    Change,
    Recorder,
    bounded_json,
    clean_text,
    shielded,
)
from app.execution.schemas import ExecutionResult
from app.execution.status import (
    FINISHED_EXECUTION,
    ExecutionStatus,
    RunStatus,
    StepStatus,
)
from app.planning.graph import remaining_path_ms
from app.planning.models import PlannedStep
from app.runners.base import RunFailed, StepContext
from app.runners.profiles import ProfileRegistry
from app.settings import Settings
from app.storage.models import RunRow
from app.storage.repository import utcnow

logger = logging.getLogger(__name__)

TERMINAL_EVENT = {
    StepStatus.succeeded: EventType.step_succeeded,
    StepStatus.failed: EventType.step_failed,
    StepStatus.timed_out: EventType.step_timed_out,
    StepStatus.cancelled: EventType.step_cancelled,
}


@dataclass(frozen=True)
class LoopConfig:
    """An execution's resolved limits."""

    max_parallel: int
    fail_fast: bool
    step_timeout_s: float
    execution_timeout_s: float
    profile: str
    estimated_savings_ms: int


@dataclass
class RunRecord:
    """What the loop remembers of a finished run, for the result figures."""

    step_id: str
    status: RunStatus
    started: float
    finished: float

    @property
    def duration_ms(self) -> int:
        return round((self.finished - self.started) * 1000)


@dataclass
class Stop:
    status: ExecutionStatus
    reason: str


@dataclass
class _Progress:
    """Turns a run's progress lines into step.log events, up to a cap per run.

    Each line is written in a task of its own, so a cancel never cuts a
    transaction short; ``settle`` waits for those writes, so that a step's log
    lines always come before its terminal event.
    """

    recorder: Recorder
    execution_id: str
    step_id: str
    run_id: str
    settings: Settings
    stopping: Callable[[], bool]
    lines: int = 0
    writes: set[asyncio.Task[None]] = field(default_factory=set)

    async def log(self, line: str) -> None:
        if self.stopping():
            return  # output drained after a stop is not worth delaying the stop
        self.lines += 1
        limit = self.settings.max_log_events_per_run
        if self.lines > limit + 1:
            return
        if self.lines == limit + 1:
            line = f"[more log lines omitted: the limit is {limit} per run]"
        text = clean_text(line.rstrip("\n"), self.settings.max_log_line_bytes)
        write = asyncio.ensure_future(self._write(text))
        self.writes.add(write)
        write.add_done_callback(self.writes.discard)
        await asyncio.shield(write)

    async def settle(self) -> None:
        await asyncio.gather(*self.writes, return_exceptions=True)

    async def _write(self, text: str) -> None:
        async with self.recorder.change(self.execution_id) as change:
            await change.event(
                EventType.step_log, self.step_id, run_id=self.run_id, line=text
            )


@dataclass
class ExecutionLoop:
    execution_id: str
    task: str
    steps: list[PlannedStep]
    config: LoopConfig
    recorder: Recorder
    registry: ProfileRegistry
    slots: Slots
    settings: Settings
    outputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list)
    statuses: dict[str, StepStatus] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    progress: dict[str, _Progress] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {step.id: step for step in self.steps}
        priority = remaining_path_ms(self.steps)
        self.ready = ReadySet(
            Node(step.id, step.depends_on, priority[step.id]) for step in self.steps
        )
        self.phases = PhaseTracker({step.id: step.phase for step in self.steps})
        self.statuses = {step.id: StepStatus.pending for step in self.steps}
        self._stop: Stop | None = None
        self._stopped = asyncio.Event()
        self._closing = False  # set once the loop has decided how it ends

    def stop(self, status: ExecutionStatus, reason: str) -> None:
        """Ask the loop to stop; the first reason wins, and none once it is closing."""
        if self._stop is None and not self._closing:
            self._stop = Stop(status, reason)
            self._stopped.set()

    async def run(self) -> None:
        logs.bind(execution_id=self.execution_id)
        try:
            await self._run()
        except Exception:
            logger.exception("execution.crashed")
            await self._abandon("internal error in the executor")

    async def _abandon(self, reason: str) -> None:
        """Close whatever is still open after the loop itself failed."""
        status = ExecutionStatus.failed
        try:
            async with self.recorder.change(self.execution_id) as change:
                await close_open_work(change, status, reason, self._result(status, 0))
        except Exception:
            logger.exception("execution.not_closed")

    async def _run(self) -> None:
        started = time.monotonic()
        await self._record_started()

        running: dict[asyncio.Task[StepStatus], str] = {}
        stop_waiter = asyncio.create_task(self._stopped.wait())
        deadline = started + self.config.execution_timeout_s
        try:
            while self._stop is None:
                self._admit(running)
                if not running:
                    break
                remaining = deadline - time.monotonic()
                done, _ = await asyncio.wait(
                    {*running, stop_waiter},
                    timeout=max(remaining, 0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done - {stop_waiter}:
                    await self._settle(running.pop(task), task.result())
                if time.monotonic() >= deadline:
                    seconds = self.config.execution_timeout_s
                    self.stop(
                        ExecutionStatus.timed_out,
                        f"execution timed out after {seconds:g} s",
                    )
        finally:
            self._closing = True
            stop_waiter.cancel()
            await self._cancel(running)

        await self._skip(self.ready.drain(), "the execution stopped before it ran")
        await self._finish(started)

    # admission

    def _admit(self, running: dict[asyncio.Task[StepStatus], str]) -> None:
        while self.ready.has_ready() and len(running) < self.config.max_parallel:
            step_id = self.ready.pop()
            running[asyncio.create_task(self._run_step(step_id))] = step_id

    async def _settle(self, step_id: str, status: StepStatus) -> None:
        if status == StepStatus.succeeded:
            self.ready.succeeded(step_id)
            await self._phase_end(step_id)
            return

        await self._phase_end(step_id)
        if self.config.fail_fast:
            self.stop(ExecutionStatus.failed, f"step {step_id} {status.value}")
            return
        downstream = self.ready.did_not_succeed(step_id)
        await self._skip(downstream, f"dependency {step_id} {status.value}")

    async def _cancel(self, running: dict[asyncio.Task[StepStatus], str]) -> None:
        for task in running:
            task.cancel()
        results = await asyncio.gather(*running, return_exceptions=True)
        never_started = []
        for step_id in running.values():
            if self.statuses[step_id] == StepStatus.pending:
                never_started.append(step_id)
            else:
                await self._phase_end(step_id)
        await self._skip(never_started, "the execution stopped before it ran")
        for result in results:
            if isinstance(result, Exception):
                raise result

    # one step

    async def _run_step(self, step_id: str) -> StepStatus:
        step = self.by_id[step_id]
        logs.bind(step_id=step_id)
        async with self.slots.slot(self.ready.node(step_id).priority):
            run_id = str(uuid.uuid4())
            try:
                await shielded(self._record_step_started(step, run_id))
                return await self._carry_out(step, run_id)
            except asyncio.CancelledError:
                if self.statuses[step.id] == StepStatus.running:
                    reason = self._stop.reason if self._stop else "cancelled"
                    await shielded(
                        self._record_step_end(
                            step, run_id, StepStatus.cancelled, error=reason
                        )
                    )
                raise

    async def _carry_out(self, step: PlannedStep, run_id: str) -> StepStatus:
        context = StepContext(
            execution_id=self.execution_id,
            run_id=run_id,
            attempt=1,
            step_id=step.id,
            agent=step.agent,
            title=step.title,
            instructions=step.instructions,
            task=self.task,
            upstream={dep: self.outputs.get(dep) for dep in step.depends_on},
            state=dict(self.state),
            estimate_ms=step.estimate_ms,
            timeout_s=self._timeout_s(step),
        )
        progress = _Progress(
            self.recorder,
            self.execution_id,
            step.id,
            run_id,
            self.settings,
            stopping=lambda: self._stop is not None,
        )
        self.progress[step.id] = progress
        timeout = asyncio.timeout(context.timeout_s)
        try:
            runner = self.registry.runner_for(self.config.profile, step.agent)
            async with timeout:
                result = await runner.run(context, progress)
        except TimeoutError as error:
            if not timeout.expired():
                return await self._failed(step, run_id, error)
            message = f"step timed out after {context.timeout_s:g} s"
            return await shielded(
                self._record_step_end(step, run_id, StepStatus.timed_out, error=message)
            )
        except Exception as error:
            return await self._failed(step, run_id, error)

        try:
            output = bounded_json(result.output, self.settings.max_output_bytes)
            updates = self._checked_state(result.state_updates)
        except (RunFailed, ValueError, TypeError, RecursionError) as error:
            return await self._failed(step, run_id, error)
        try:
            return await shielded(
                self._record_step_end(
                    step,
                    run_id,
                    StepStatus.succeeded,
                    output=output,
                    state_updates=updates,
                )
            )
        except SQLAlchemyError as error:
            logger.exception("step.result_not_stored")
            message = f"the step's result could not be stored: {type(error).__name__}"
            return await self._failed(step, run_id, RunFailed(message))

    def _checked_state(self, updates: Any) -> dict[str, Any]:
        """The step's state updates, or RunFailed saying why they cannot be kept."""
        if not isinstance(updates, dict):
            raise RunFailed("state updates must be a JSON object")
        limit = self.settings.max_state_updates_per_run
        if len(updates) > limit:
            raise RunFailed(f"{len(updates)} state updates; the limit is {limit}")
        checked = {}
        for key, value in updates.items():
            if not isinstance(key, str) or not 0 < len(key) <= 200:
                raise RunFailed("state keys must be strings of 1 to 200 characters")
            if clean_text(key, 1000) != key:
                raise RunFailed("state keys must be valid text without NUL")
            checked[key] = bounded_json(value, self.settings.max_output_bytes)
        return checked

    def _timeout_s(self, step: PlannedStep) -> float:
        return step.timeout_s or self.config.step_timeout_s

    async def _failed(
        self, step: PlannedStep, run_id: str, error: Exception
    ) -> StepStatus:
        if isinstance(error, RunFailed):
            message, details = error.message, error.details
        else:
            message, details = f"{type(error).__name__}: {error}", {}
        return await shielded(
            self._record_step_end(
                step, run_id, StepStatus.failed, error=message, details=details
            )
        )

    # recording

    async def _record_started(self) -> None:
        async with self.recorder.change(self.execution_id) as change:
            row = await change.repository.get(self.execution_id)
            change.repository.set_status(
                row, ExecutionStatus.running, started_at=utcnow()
            )
            await change.event(
                EventType.execution_started,
                max_parallel=self.config.max_parallel,
                fail_fast=self.config.fail_fast,
                profile=self.config.profile,
            )
        logger.info("execution.started")

    async def _record_step_started(self, step: PlannedStep, run_id: str) -> None:
        runner_kind = self.registry.get(self.config.profile).spec_for(step.agent).kind
        first_of_phase = self.phases.start(step.id)
        started_at, started = utcnow(), time.monotonic()  # one instant, two clocks
        async with self.recorder.change(self.execution_id) as change:
            if first_of_phase is not None:
                await change.event(EventType.phase_started, phase=first_of_phase)
            await change.repository.set_step_status(
                self.execution_id, step.id, StepStatus.running
            )
            change.repository.session.add(
                RunRow(
                    id=run_id,
                    execution_id=self.execution_id,
                    step_id=step.id,
                    attempt=1,
                    agent=step.agent,
                    runner=runner_kind,
                    status=RunStatus.running,
                    started_at=started_at,
                )
            )
            await change.event(
                EventType.step_started,
                step.id,
                run_id=run_id,
                attempt=1,
                agent=step.agent,
                runner=runner_kind,
                phase=step.phase,
            )
        self.statuses[step.id] = StepStatus.running
        self.started_at[step.id] = started
        logger.info("step.started")

    async def _record_step_end(
        self,
        step: PlannedStep,
        run_id: str,
        status: StepStatus,
        *,
        output: Any = None,
        error: str | None = None,
        details: dict[str, Any] | None = None,
        state_updates: dict[str, Any] | None = None,
    ) -> StepStatus:
        started = self.started_at[step.id]
        finished_at, finished = utcnow(), time.monotonic()
        record = RunRecord(step.id, RunStatus(status.value), started, finished)
        if step.id in self.progress:
            await self.progress[step.id].settle()
        limit = self.settings.max_output_bytes
        error = clean_text(error, limit) if error is not None else None
        details = bounded_json(details, limit) if details else None
        async with self.recorder.change(self.execution_id) as change:
            await change.repository.finish_run(
                run_id,
                status.value,
                finished_at=finished_at,
                duration_ms=record.duration_ms,
                output=output,
                error=error,
                details=details,
            )
            await change.repository.set_step_status(self.execution_id, step.id, status)
            for key, value in (state_updates or {}).items():
                await self._put_state(change, step.id, run_id, key, value)
            await change.event(
                TERMINAL_EVENT[status],
                step.id,
                run_id=run_id,
                duration_ms=record.duration_ms,
                **({"error": error} if error else {}),
                **({"details": details} if details else {}),
            )
        self.records.append(record)
        self.statuses[step.id] = status
        self.state.update(state_updates or {})
        if status == StepStatus.succeeded:
            self.outputs[step.id] = output
        logger.info(
            "step.finished",
            extra={"status": status.value, "duration_ms": record.duration_ms},
        )
        return status

    async def _put_state(
        self, change: Change, step_id: str, run_id: str, key: str, value: Any
    ) -> None:
        row = await change.repository.put_state(
            self.execution_id, key, value, step_id=step_id, run_id=run_id
        )
        await change.event(
            EventType.state_updated, step_id, key=key, version=row.version
        )

    async def _skip(self, step_ids: list[str], reason: str) -> None:
        if not step_ids:
            return
        async with self.recorder.change(self.execution_id) as change:
            for step_id in step_ids:
                self.statuses[step_id] = StepStatus.skipped
                await change.repository.set_step_status(
                    self.execution_id, step_id, StepStatus.skipped
                )
                await change.event(EventType.step_skipped, step_id, reason=reason)
        for step_id in step_ids:
            await self._phase_end(step_id)

    async def _phase_end(self, step_id: str) -> None:
        phase = self.phases.finish(step_id)
        if phase is None:
            return
        async with self.recorder.change(self.execution_id) as change:
            await change.event(EventType.phase_finished, phase=phase)

    async def _finish(self, started: float | None = None) -> None:
        wall_ms = round((time.monotonic() - started) * 1000) if started else 0
        status, reason = self._final_status()
        result = self._result(status, wall_ms)
        async with self.recorder.change(self.execution_id) as change:
            row = await change.repository.get(self.execution_id)
            change.repository.set_status(
                row,
                status,
                finished_at=utcnow(),
                reason=reason,
                result=result.model_dump(mode="json"),
            )
            await change.event(
                EventType.execution_finished,
                status=status.value,
                reason=reason,
                result=result.model_dump(mode="json"),
            )
        logger.info(
            "execution.finished",
            extra={"status": status.value, "total_time_ms": wall_ms},
        )

    def _final_status(self) -> tuple[ExecutionStatus, str | None]:
        counts = Counter(self.statuses.values())
        if counts[StepStatus.succeeded] == len(self.steps):
            return ExecutionStatus.succeeded, None  # a late stop changed nothing
        if self._stop is not None:
            return self._stop.status, self._stop.reason
        unsuccessful = len(self.steps) - counts[StepStatus.succeeded]
        reason = f"{unsuccessful} of {len(self.steps)} steps did not succeed"
        if counts[StepStatus.succeeded]:
            return ExecutionStatus.partial, reason
        return ExecutionStatus.failed, reason

    def _result(self, status: ExecutionStatus, wall_ms: int) -> ExecutionResult:
        agent_ms = sum(record.duration_ms for record in self.records)
        return ExecutionResult(
            status=status,
            total_time_ms=wall_ms,
            agent_time_ms=agent_ms,
            measured_savings_ms=agent_ms - wall_ms,
            speedup=round(agent_ms / wall_ms, 2) if wall_ms else None,
            parallel_groups_executed=len(self.phases.started),
            critical_path_taken=self._critical_path_taken(),
            estimated_savings_ms=self.config.estimated_savings_ms,
            runs_by_status=dict(Counter(r.status.value for r in self.records)),
            steps_by_status=dict(Counter(s.value for s in self.statuses.values())),
        )

    def _critical_path_taken(self) -> list[str]:
        """The chain of runs that held up the end: last to finish, walked back."""
        finished = {record.step_id: record.finished for record in self.records}
        if not finished:
            return []
        path = [max(finished, key=finished.__getitem__)]
        while True:
            deps = [d for d in self.by_id[path[-1]].depends_on if d in finished]
            if not deps:
                return path[::-1]
            path.append(max(deps, key=finished.__getitem__))


async def close_open_work(
    change: Change,
    status: ExecutionStatus,
    reason: str,
    result: ExecutionResult | None = None,
) -> None:
    """End an execution as it stands: open runs cancelled, pending steps skipped."""
    repository = change.repository
    row = await repository.get(change.execution_id)
    if row.status in FINISHED_EXECUTION:
        return
    for run in await repository.runs(change.execution_id):
        if run.status == RunStatus.running:
            await repository.finish_run(
                run.id, RunStatus.cancelled, finished_at=utcnow(), error=reason
            )
    for step in await repository.steps(change.execution_id):
        if step.status == StepStatus.running:
            target, event = StepStatus.cancelled, EventType.step_cancelled
        elif step.status == StepStatus.pending:
            target, event = StepStatus.skipped, EventType.step_skipped
        else:
            continue
        await repository.set_step_status(change.execution_id, step.step_id, target)
        await change.event(event, step.step_id, reason=reason)
    summary = result.model_dump(mode="json") if result else None
    repository.set_status(
        row, status, finished_at=utcnow(), reason=reason, result=summary
    )
    await change.event(
        EventType.execution_finished, status=status.value, reason=reason, result=summary
    )


class Executor:
    """The executions running in this process, and the server-wide cap."""

    def __init__(
        self, recorder: Recorder, registry: ProfileRegistry, settings: Settings
    ) -> None:
        self.recorder = recorder
        self.registry = registry
        self.settings = settings
        self.slots = Slots(settings.server_max_parallel)
        self._loops: dict[str, tuple[ExecutionLoop, asyncio.Task[None]]] = {}

    def start(
        self, execution_id: str, task: str, steps: list[PlannedStep], config: LoopConfig
    ) -> None:
        """Run the execution in the background, not tied to any request."""
        loop = ExecutionLoop(
            execution_id,
            task,
            steps,
            config,
            self.recorder,
            self.registry,
            self.slots,
            self.settings,
        )
        task_ = asyncio.create_task(loop.run(), name=f"execution-{execution_id}")
        self._loops[execution_id] = (loop, task_)
        task_.add_done_callback(lambda _: self._loops.pop(execution_id, None))

    def owns(self, execution_id: str) -> bool:
        return execution_id in self._loops

    async def stop(
        self, execution_id: str, status: ExecutionStatus, reason: str, wait_s: float
    ) -> None:
        """Stop one execution and wait up to wait_s for its final event."""
        entry = self._loops.get(execution_id)
        if entry is None:
            return
        loop, task = entry
        loop.stop(status, reason)
        await asyncio.wait({task}, timeout=wait_s)

    async def shutdown(self, wait_s: float) -> None:
        """Stop every execution of this process; cut off those that outlast wait_s.

        An execution cut off keeps its unfinished status in the database, and
        the next start of the service closes it.
        """
        reason = "the service stopped while it ran"
        for loop, _ in self._loops.values():
            loop.stop(ExecutionStatus.failed, reason)
        tasks = {task for _, task in self._loops.values()}
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=wait_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
