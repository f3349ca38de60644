"""One execution's loop: starts each step the moment its dependencies have succeeded.

An ``ExecutionLoop`` owns one execution. It admits ready steps (``ReadySet``) while
fewer than ``max_parallel`` of its steps are under way; each admitted step waits
for a server-wide slot (``Slots``), highest remaining path first, then its runner
carries it out. The loop wakes when any step ends, records what follows from it
(newly ready steps, steps skipped below a failure, a stop under ``fail_fast``) and
admits again. Phases are never barriers; they are counted for display only.

A step is tried up to its retry policy's ``max_attempts`` times; each attempt is a
run of its own, with an id derived from the execution, the step and the attempt
number, so that a side-effecting agent can tell a repeat and the database refuses
a second start of the same attempt. Between attempts the step is ``retrying``.

A stop (cancel, execution timeout, ``fail_fast``) prevents new starts and cancels
running steps; each cancelled step records its own end, the steps that never
started end ``skipped``, and the execution's final event is written last. Every
run ends in exactly one terminal status with exactly one terminal event.

A spent budget (the execution's runs have used more tokens or cost than its
``budget`` allows) also prevents new starts and further attempts, but lets
running steps finish: what they used is paid for. The execution then ends with
the budget as its reason.

Shared state is merged by ``SharedState`` (``app/execution/state.py``): a run
sees a snapshot taken when it starts, and its updates are merged, stored and
announced with its end, one run end at a time.

A drain (the service is shutting down) only prevents new starts: running steps
may finish. An interrupt (the grace period is over) cuts them off: their runs end
``interrupted``, and the execution is handed back, unfinished, for the next
process to resume (``resume=True``). A loop that loses its lease stops writing.
"""

import asyncio
import logging
import math
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app import logs
from app.errors import ProfileNotFound
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
from app.execution.schemas import Budget, ExecutionResult
from app.execution.state import Entry, MergeRule, Outcome, SharedState, Writer
from app.execution.status import (
    FINISHED_EXECUTION,
    FINISHED_STEP,
    ExecutionStatus,
    RunStatus,
    StepStatus,
)
from app.planning.graph import remaining_path_ms
from app.planning.models import PlannedStep, RetryPolicy
from app.runners.base import RunFailed, StepContext, Usage
from app.runners.profiles import ProfileRegistry
from app.settings import Settings
from app.storage.models import RunRow, SharedStateRow
from app.storage.repository import LeaseLost, utcnow

logger = logging.getLogger(__name__)

TERMINAL_EVENT = {
    StepStatus.succeeded: EventType.step_succeeded,
    StepStatus.failed: EventType.step_failed,
    StepStatus.timed_out: EventType.step_timed_out,
    StepStatus.cancelled: EventType.step_cancelled,
}
RUN_ENDS_STEP = {
    RunStatus.succeeded: StepStatus.succeeded,
    RunStatus.failed: StepStatus.failed,
    RunStatus.timed_out: StepStatus.timed_out,
    RunStatus.cancelled: StepStatus.cancelled,
    RunStatus.interrupted: StepStatus.failed,
}
INTERRUPTED = "interrupted: the service running it stopped"
_MAX_TOKENS = 10**15  # far beyond any run, well inside a 64-bit column
_ATTEMPT_IDS = uuid.UUID("5f0c4b8e-2a57-4a8e-9d51-7c3e6b1d0a92")


def attempt_id(execution_id: str, step_id: str, attempt: int) -> str:
    """The run id of one attempt: the same whichever process makes it."""
    return str(uuid.uuid5(_ATTEMPT_IDS, f"{execution_id}/{step_id}/{attempt}"))


@dataclass(frozen=True)
class LoopConfig:
    """An execution's resolved limits."""

    max_parallel: int
    fail_fast: bool
    step_timeout_s: float
    execution_timeout_s: float
    profile: str
    estimated_savings_ms: int
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget: Budget | None = None
    state_merge: dict[str, MergeRule] = field(default_factory=dict)


@dataclass
class RunRecord:
    """What the loop remembers of a finished run, for the result figures."""

    step_id: str
    status: RunStatus
    duration_ms: int | None  # None for a run cut off by a crash
    finished: datetime
    usage: Usage | None = None


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

    loop: "ExecutionLoop"
    step_id: str
    run_id: str
    lines: int = 0
    writes: set[asyncio.Task[None]] = field(default_factory=set)

    async def log(self, line: str) -> None:
        if self.loop.stopping:
            return  # output drained after a stop is not worth delaying the stop
        self.lines += 1
        limit = self.loop.settings.max_log_events_per_run
        if self.lines > limit + 1:
            return
        if self.lines == limit + 1:
            line = f"[more log lines omitted: the limit is {limit} per run]"
        text = clean_text(line.rstrip("\n"), self.loop.settings.max_log_line_bytes)
        write = asyncio.ensure_future(self._write(text))
        self.writes.add(write)
        write.add_done_callback(self.writes.discard)
        await asyncio.shield(write)

    async def settle(self) -> None:
        await asyncio.gather(*self.writes, return_exceptions=True)

    async def _write(self, text: str) -> None:
        async with self.loop.change() as change:
            await change.event(
                EventType.step_log, self.step_id, run_id=self.run_id, line=text
            )


@dataclass
class History:
    """What an execution had done before this loop took it over."""

    statuses: dict[str, StepStatus]
    attempts: dict[str, int]
    records: list[RunRecord]
    outputs: dict[str, Any]
    state: list[Entry]
    last_error: dict[str, tuple[StepStatus, str]]
    not_before: dict[str, datetime]  # steps in a retry wait: when it ends


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
    owner: str | None = None
    resume: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list)
    statuses: dict[str, StepStatus] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    progress: dict[str, _Progress] = field(default_factory=dict)
    last_error: dict[str, tuple[StepStatus, str]] = field(default_factory=dict)
    not_before: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {step.id: step for step in self.steps}
        priority = remaining_path_ms(self.steps)
        self.ready = ReadySet(
            Node(step.id, step.depends_on, priority[step.id]) for step in self.steps
        )
        self.phases = PhaseTracker({step.id: step.phase for step in self.steps})
        self.statuses = {step.id: StepStatus.pending for step in self.steps}
        order = {step.id: index for index, step in enumerate(self.steps)}
        self.state = SharedState(self.config.state_merge, order)
        self.seen: dict[str, dict[str, int]] = {}  # each run's snapshot versions
        self._spent: str | None = None  # why the budget stops new starts
        self._given_up_to_budget: set[str] = set()  # steps it ended in a retry wait
        self._budget_spent_event = asyncio.Event()
        self.used = Usage()  # the usage of the runs so far, kept as they end
        self.attempts = {step.id: 0 for step in self.steps}
        self.began = utcnow()
        self._stop: Stop | None = None
        self._wake = asyncio.Event()  # a step ended, or the loop was asked to stop
        self._ended: deque[asyncio.Task[StepStatus]] = deque()  # steps to settle
        self._closing = False  # set once the loop has decided how it ends
        self._draining = False  # start nothing new; let running steps finish
        self._interrupting = False  # cut running steps off; resume elsewhere
        self._lost = False  # another process holds the lease now

    # asked from outside

    def stop(self, status: ExecutionStatus, reason: str) -> None:
        """Ask the loop to stop; the first reason wins, and none once it is closing."""
        if self._stop is None and not self._closing:
            self._stop = Stop(status, reason)
            self._wake.set()

    def drain(self) -> None:
        """Start no new step; the execution is handed back once none runs."""
        self._draining = True
        self._wake.set()

    def interrupt(self) -> None:
        """Cut running steps off; their runs end interrupted, to be re-attempted."""
        self._draining = self._interrupting = True
        self._wake.set()

    def lose(self) -> None:
        """The lease is gone: stop every step and write nothing more."""
        self._lost = True
        self.interrupt()

    @property
    def closing(self) -> bool:
        """The loop has decided how it ends and is writing its last changes."""
        return self._closing

    @property
    def stopping(self) -> bool:
        return self._stop is not None or self._interrupting

    @asynccontextmanager
    async def change(self, *, reads: bool = False) -> AsyncIterator[Change]:
        """A unit of work fenced by this loop's lease; a lost lease stops the loop.

        Only a change that ``reads`` gets a session; the others are batched.
        """
        begin = self.recorder.change if reads else self.recorder.batched
        try:
            async with begin(self.execution_id, self.owner) as change:
                yield change
        except LeaseLost:
            self._lost = True
            self.interrupt()
            raise

    # the loop

    async def run(self) -> None:
        logs.bind(execution_id=self.execution_id)
        try:
            await self._run()
        except LeaseLost:
            logger.warning("execution.lease_lost")
        except ProfileNotFound as error:
            # a profile gone since the execution was accepted: a Python
            # function's profile exists only in the process that had it
            logger.error("execution.profile_missing", extra={"error": error.message})
            await self._abandon(f"cannot run its steps: {error.message} here")
        except Exception:
            if self._lost:
                logger.warning("execution.lease_lost")
                return
            logger.exception("execution.crashed")
            await self._abandon("internal error in the executor")

    async def _abandon(self, reason: str) -> None:
        """Close whatever is still open after the loop itself failed."""
        status = ExecutionStatus.failed
        try:
            async with self.change(reads=True) as change:
                await close_open_work(change, status, reason, self._result(status))
        except Exception:
            logger.exception("execution.not_closed")

    async def _run(self) -> None:
        if self.resume:
            await self._record_resumed()
        else:
            await self._record_started()

        running: dict[asyncio.Task[StepStatus], str] = {}
        deadline = time.monotonic() + self._seconds_left()
        try:
            while self._stop is None and not self._interrupting:
                if not self._draining:
                    self._admit(running)
                if not running:
                    break
                # each step's task reports its own end: the wait costs the same
                # however many steps run
                with suppress(TimeoutError):
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                        await self._wake.wait()
                self._wake.clear()
                while self._ended:
                    task = self._ended.popleft()
                    await self._settle(running.pop(task), task.result())
                if time.monotonic() >= deadline:
                    self._time_out()
        finally:
            self._closing = True
            await self._cancel(running)

        if self._lost:
            return
        if self._stop is None and self._draining and self._unfinished():
            await self._hand_back()
            return
        left = self.ready.drain()
        for step_id in left:
            if self.statuses[step_id] == StepStatus.retrying:
                await self._give_up(self.by_id[step_id])
        await self._skip(
            [s for s in left if self.statuses[s] == StepStatus.pending],
            self._spent or "the execution stopped before it ran",
        )
        await self._finish()

    def _time_out(self) -> None:
        seconds = self.config.execution_timeout_s
        self.stop(ExecutionStatus.timed_out, f"execution timed out after {seconds:g} s")

    def _seconds_left(self) -> float:
        spent = (utcnow() - self.began).total_seconds()
        return max(self.config.execution_timeout_s - spent, 0)

    def _unfinished(self) -> list[str]:
        return [s for s, status in self.statuses.items() if status not in FINISHED_STEP]

    # admission

    def _admit(self, running: dict[asyncio.Task[StepStatus], str]) -> None:
        if self._spent is not None:
            return
        while self.ready.has_ready() and len(running) < self.config.max_parallel:
            step_id = self.ready.pop()
            task = asyncio.create_task(self._run_step(step_id))
            task.add_done_callback(self._step_ended)
            running[task] = step_id

    def _step_ended(self, task: asyncio.Task[StepStatus]) -> None:
        if not self._closing:
            self._ended.append(task)
            self._wake.set()

    async def _settle(self, step_id: str, status: StepStatus) -> None:
        if status == StepStatus.retrying:
            return  # parked by a drain: the next process tries it again
        if status == StepStatus.skipped:
            return  # not started: the budget was spent while it waited
        if status == StepStatus.succeeded:
            self.ready.succeeded(step_id)
            return

        # a step the budget gave up on did not fail of itself: fail_fast does
        # not cut the running steps off for it, the budget lets them finish
        if self.config.fail_fast and step_id not in self._given_up_to_budget:
            self.stop(ExecutionStatus.failed, f"step {step_id} {status.value}")
            return
        downstream = self.ready.did_not_succeed(step_id)
        await self._skip(downstream, f"dependency {step_id} {status.value}")

    async def _cancel(self, running: dict[asyncio.Task[StepStatus], str]) -> None:
        for task in running:
            task.cancel()
        results = await asyncio.gather(*running, return_exceptions=True)
        if self._lost:
            return
        never_started = [
            step_id
            for step_id in running.values()
            if self.statuses[step_id] == StepStatus.pending
        ]
        if not self._interrupting:
            await self._skip(never_started, "the execution stopped before it ran")
        for result in results:
            if isinstance(result, Exception):
                raise result

    # one step, attempt after attempt

    async def _run_step(self, step_id: str) -> StepStatus:
        step = self.by_id[step_id]
        logs.bind(step_id=step_id)
        try:
            await asyncio.sleep(self._wait_left(step_id))
            while True:
                status, delay_s = await self._attempt(step)
                if status != StepStatus.retrying or self._draining:
                    return status
                await self._retry_wait(delay_s)
                if self._spent is not None:
                    await shielded(self._give_up(step))
                    return self.statuses[step.id]
        except asyncio.CancelledError:
            await shielded(self._cancelled(step))
            raise

    async def _retry_wait(self, delay_s: float) -> None:
        """Wait for a step's next attempt; a spent budget ends the wait."""
        with suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._budget_spent_event.wait()

    def _wait_left(self, step_id: str) -> float:
        """What is left of a retry wait begun before a restart, in seconds."""
        not_before = self.not_before.pop(step_id, None)
        return max((not_before - utcnow()).total_seconds(), 0) if not_before else 0

    async def _attempt(self, step: PlannedStep) -> tuple[StepStatus, float]:
        priority = self.ready.node(step.id).priority
        runner_slots = self.registry.slots_for(self.config.profile, step.agent)
        runner_slot = runner_slots.slot(priority) if runner_slots else nullcontext()
        async with runner_slot, self.slots.slot(priority):
            if self._spent is not None and self.attempts[step.id] == 0:
                await shielded(self._skip([step.id], self._spent))
                return StepStatus.skipped, 0.0
            if self._spent is not None:
                await shielded(self._give_up(step))
                return self.statuses[step.id], 0.0
            attempt = self.attempts[step.id] + 1
            run_id = attempt_id(self.execution_id, step.id, attempt)
            await self._record_step_started(step, run_id, attempt)
            return await self._carry_out(step, run_id, attempt)

    async def _cancelled(self, step: PlannedStep) -> None:
        """Record how a step cut off by a stop, an interrupt or a drain ends."""
        if self._lost:
            return
        status = self.statuses[step.id]
        if status == StepStatus.running:
            attempt = self.attempts[step.id]
            run_id = attempt_id(self.execution_id, step.id, attempt)
            if self._interrupting:
                run_status, error = RunStatus.interrupted, INTERRUPTED
            else:
                run_status = RunStatus.cancelled
                error = self._stop.reason if self._stop else "cancelled"
            await self._record_run_end(step, run_id, attempt, run_status, error=error)
        elif status == StepStatus.retrying and not self._interrupting:
            await self._give_up(step)

    async def _carry_out(
        self, step: PlannedStep, run_id: str, attempt: int
    ) -> tuple[StepStatus, float]:
        context = StepContext(
            execution_id=self.execution_id,
            run_id=run_id,
            attempt=attempt,
            step_id=step.id,
            agent=step.agent,
            title=step.title,
            instructions=step.instructions,
            task=self.task,
            upstream={dep: self.outputs.get(dep) for dep in step.depends_on},
            state=self.state.values(),
            estimate_ms=step.estimate_ms,
            timeout_s=self._timeout_s(step),
        )
        self.seen[step.id] = self.state.versions()
        self.progress[step.id] = _Progress(self, step.id, run_id)
        timeout = asyncio.timeout(context.timeout_s)
        try:
            runner = self.registry.runner_for(self.config.profile, step.agent)
            async with timeout:
                result = await runner.run(context, self.progress[step.id])
        except TimeoutError as error:
            if not timeout.expired():
                return await self._failed(step, run_id, attempt, error)
            message = f"step timed out after {context.timeout_s:g} s"
            return await shielded(
                self._record_run_end(
                    step, run_id, attempt, RunStatus.timed_out, error=message
                )
            )
        except Exception as error:
            return await self._failed(step, run_id, attempt, error)

        try:
            output = bounded_json(result.output, self.settings.max_output_bytes)
            updates = self._checked_state(result.state_updates)
            usage = _checked_usage(result.usage)
        except (RunFailed, ValueError, TypeError, RecursionError) as error:
            return await self._failed(step, run_id, attempt, error)
        try:
            return await shielded(
                self._record_run_end(
                    step,
                    run_id,
                    attempt,
                    RunStatus.succeeded,
                    output=output,
                    state_updates=updates,
                    usage=usage,
                )
            )
        except SQLAlchemyError as error:
            logger.exception("step.result_not_stored")
            message = f"the step's result could not be stored: {type(error).__name__}"
            return await self._failed(step, run_id, attempt, RunFailed(message))

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

    def _policy(self, step: PlannedStep) -> RetryPolicy:
        return step.retry or self.config.retry

    async def _failed(
        self, step: PlannedStep, run_id: str, attempt: int, error: Exception
    ) -> tuple[StepStatus, float]:
        usage = None
        if isinstance(error, RunFailed):
            message, details = error.message, error.details
            try:
                usage = _checked_usage(error.usage)
            except RunFailed:
                pass  # the failure itself says more than a bad usage would
        else:
            message, details = f"{type(error).__name__}: {error}", {}
        return await shielded(
            self._record_run_end(
                step,
                run_id,
                attempt,
                RunStatus.failed,
                error=message,
                details=details,
                usage=usage,
            )
        )

    # recording

    async def _record_started(self) -> None:
        async with self.change(reads=True) as change:
            row = await change.repository.get(self.execution_id)
            change.repository.set_status(
                row, ExecutionStatus.running, started_at=self.began
            )
            await change.event(
                EventType.execution_started,
                max_parallel=self.config.max_parallel,
                fail_fast=self.config.fail_fast,
                profile=self.config.profile,
            )
        logger.info("execution.started")

    async def _record_resumed(self) -> None:
        """Take up where the previous owner stopped, and say so in the log.

        ``execution.resumed`` comes first; the runs the previous owner left
        running then end ``interrupted``, each as its retry policy says.
        """
        async with self.change(reads=True) as change:
            repository = change.repository
            row = await repository.get(self.execution_id)
            first_start = row.status == ExecutionStatus.accepted
            if first_start:
                repository.set_status(row, ExecutionStatus.running, started_at=utcnow())
            self.began = row.started_at or utcnow()
            # a cancel asked, or a timeout passed, while no process ran it: the
            # runs cut off then are not worth another attempt
            if row.cancel_requested:
                self.stop(ExecutionStatus.cancelled, row.cancel_requested)
            elif self._seconds_left() == 0:
                self._time_out()
            open_runs = [
                run
                for run in await repository.runs(self.execution_id)
                if run.status == RunStatus.running
            ]
            done = [
                step.step_id
                for step in await repository.steps(self.execution_id)
                if step.status == StepStatus.succeeded
            ]
            await change.event(
                EventType.execution_resumed,
                interrupted_runs=[run.id for run in open_runs],
                succeeded_steps=sorted(done),
            )
            if first_start:
                await change.event(
                    EventType.execution_started,
                    max_parallel=self.config.max_parallel,
                    fail_fast=self.config.fail_fast,
                    profile=self.config.profile,
                )
            for run in open_runs:
                await change.finish_run(
                    run.id,
                    RunStatus.interrupted,
                    finished_at=utcnow(),
                    error=INTERRUPTED,
                )
                await self._write_run_outcome(
                    change,
                    self.by_id[run.step_id],
                    run.id,
                    run.attempt,
                    RunStatus.interrupted,
                    INTERRUPTED,
                )
            history = await load_history(change, self.steps)
        ended_now = [
            run.step_id
            for run in open_runs
            if self.statuses[run.step_id] in FINISHED_STEP
        ]
        blocked = self._restore(history, ended_now)
        for step_id in ended_now:
            await self._phase_end(step_id)
        logger.info("execution.resumed", extra={"interrupted_runs": len(open_runs)})
        failed = [
            step_id
            for step_id, status in self.statuses.items()
            if status in FINISHED_STEP - {StepStatus.succeeded, StepStatus.skipped}
        ]
        if failed:
            await self._skip(blocked, f"dependency {failed[0]} did not succeed")
            if self.config.fail_fast:
                status = self.statuses[failed[0]]
                self.stop(ExecutionStatus.failed, f"step {failed[0]} {status.value}")

    def _restore(self, history: History, ended_now: list[str]) -> list[str]:
        """Replay the history; the pending steps that can no longer run.

        Steps in ended_now ended while resuming; their phases are ended by the
        caller, so that a phase's end is announced once.
        """
        self.statuses.update(history.statuses)
        self.attempts.update(history.attempts)
        self.records.extend(history.records)
        self.used = usage_totals(self.records)
        self.outputs.update(history.outputs)
        self.state.keep(Outcome(entries=history.state))
        self.last_error.update(history.last_error)
        self.not_before.update(history.not_before)
        ended = {
            step_id: status == StepStatus.succeeded
            for step_id, status in self.statuses.items()
            if status in FINISHED_STEP
        }
        blocked = self.ready.restore(ended)
        ran = [s for s, n in self.attempts.items() if n]
        self.phases.restore(ran, [s for s in ended if s not in ended_now])
        return [s for s in blocked if self.statuses[s] == StepStatus.pending]

    async def _record_step_started(
        self, step: PlannedStep, run_id: str, attempt: int
    ) -> None:
        """Record a run's start; the agent runs only once it is stored.

        The loop counts the step running before the change is written: a cancel
        that lands during the write then records the run's end behind it.
        """
        runner_kind = self.registry.get(self.config.profile).spec_for(step.agent).kind
        first_of_phase = self.phases.start(step.id)
        started_at, started = utcnow(), time.monotonic()  # one instant, two clocks
        self.statuses[step.id] = StepStatus.running
        self.attempts[step.id] = attempt
        self.started_at[step.id] = started
        async with self.change() as change:
            if first_of_phase is not None:
                await change.event(EventType.phase_started, phase=first_of_phase)
            await change.set_step_status(step.id, StepStatus.running)
            await change.add_run(
                id=run_id,
                step_id=step.id,
                attempt=attempt,
                agent=step.agent,
                runner=runner_kind,
                status=RunStatus.running,
                started_at=started_at,
            )
            await change.event(
                EventType.step_started,
                step.id,
                run_id=run_id,
                attempt=attempt,
                agent=step.agent,
                runner=runner_kind,
                phase=step.phase,
            )
        logger.info("step.started", extra={"attempt": attempt})

    async def _record_run_end(
        self,
        step: PlannedStep,
        run_id: str,
        attempt: int,
        run_status: RunStatus,
        *,
        output: Any = None,
        error: str | None = None,
        details: dict[str, Any] | None = None,
        state_updates: dict[str, Any] | None = None,
        usage: Usage | None = None,
    ) -> tuple[StepStatus, float]:
        """End a run; the step ends with it, or waits for its next attempt.

        The run's state updates are merged, and its usage counted, at once and
        before the change is written: the changes of runs ending together are
        queued, and so written, in the order their updates were merged.
        """
        finished_at = utcnow()
        duration_ms = round((time.monotonic() - self.started_at[step.id]) * 1000)
        if step.id in self.progress:
            await self.progress[step.id].settle()
        limit = self.settings.max_output_bytes
        error = clean_text(error, limit) if error is not None else None
        details = bounded_json(details, limit) if details else None
        writer = Writer(step.id, run_id, attempt, finished_at)
        merged = self.state.merge(
            state_updates or {}, writer, self.seen.get(step.id, {})
        )
        self.state.keep(merged)
        self.records.append(
            RunRecord(step.id, run_status, duration_ms, finished_at, usage)
        )
        self.used = _added(self.used, usage)
        spent = self._budget_spent(self.used)
        first_spent = spent is not None and self._spent is None
        if first_spent:
            self._spent = spent
        async with self.change() as change:
            await change.finish_run(
                run_id,
                run_status.value,
                finished_at=finished_at,
                duration_ms=duration_ms,
                output=output,
                error=error,
                details=details,
                **_usage_columns(usage),
            )
            await self._write_state(change, step.id, merged)
            status, delay_s = await self._write_run_outcome(
                change,
                step,
                run_id,
                attempt,
                run_status,
                error,
                details=details,
                duration_ms=duration_ms,
            )
            if first_spent:
                await change.event(
                    EventType.execution_budget_exceeded, step.id, reason=spent
                )
            if status in FINISHED_STEP:
                await self._end_phase(change, step.id)
        if first_spent:
            self._budget_spent_event.set()
            logger.info("execution.budget_exceeded", extra={"reason": spent})
            self._wake.set()
        if status == StepStatus.succeeded:
            self.outputs[step.id] = output
        logger.info(
            "step.run_finished",
            extra={
                "status": run_status.value,
                "step_status": status.value,
                "duration_ms": duration_ms,
            },
        )
        return status, delay_s

    async def _write_run_outcome(
        self,
        change: Change,
        step: PlannedStep,
        run_id: str,
        attempt: int,
        run_status: RunStatus,
        error: str | None,
        **data: Any,
    ) -> tuple[StepStatus, float]:
        """The step's status after a run, with the run's one terminal event."""
        data = {key: value for key, value in data.items() if value is not None}
        if error:
            data["error"] = error
        policy = self._policy(step)
        retry = (
            run_status not in (RunStatus.succeeded, RunStatus.cancelled)
            and self._stop is None
            and policy.allows(run_status.value, attempt)
        )
        if retry:
            status = StepStatus.retrying
            # an interruption was not the agent's doing: its next attempt is at once
            immediate = run_status == RunStatus.interrupted
            delay_s = 0.0 if immediate else policy.delay_s(attempt, random.random())
            event = EventType.step_retrying
            data |= {
                "outcome": run_status.value,
                "next_attempt": attempt + 1,
                "delay_ms": round(delay_s * 1000),
            }
            failed_as = RUN_ENDS_STEP[run_status]
            self.last_error[step.id] = (failed_as, error or run_status.value)
        else:
            status, delay_s = RUN_ENDS_STEP[run_status], 0.0
            if run_status == RunStatus.interrupted:
                data["outcome"] = "interrupted"
                if self._stop and self._stop.status == ExecutionStatus.cancelled:
                    status = StepStatus.cancelled  # cut off, then cancelled
            event = TERMINAL_EVENT[status]
        await change.set_step_status(step.id, status)
        await change.event(event, step.id, run_id=run_id, attempt=attempt, **data)
        self.statuses[step.id] = status
        return status, delay_s

    async def _give_up(self, step: PlannedStep) -> None:
        """End a step that was waiting for its next attempt when the loop stopped."""
        status, error = self.last_error.get(step.id, (StepStatus.failed, "failed"))
        reason = self._stop.reason if self._stop else (self._spent or "stopped")
        if self._stop is None and self._spent is not None:
            self._given_up_to_budget.add(step.id)
        async with self.change() as change:
            await change.set_step_status(step.id, status)
            await change.event(
                TERMINAL_EVENT[status],
                step.id,
                error=f"{error}; no further attempt: {reason}",
            )
            await self._end_phase(change, step.id)
        self.statuses[step.id] = status

    async def _write_state(self, change: Change, step_id: str, merged: Outcome) -> None:
        """Store a run's merged updates, with an event per key and per conflict."""
        for entry in merged.entries:
            await change.put_state(
                entry.key,
                value=entry.value,
                version=entry.version,
                merge=entry.merge.value,
                updated_by_step=entry.writer.step_id,
                updated_by_run=entry.writer.run_id,
                updated_by_attempt=entry.writer.attempt,
                updated_at=entry.writer.at,
                writers=[w.as_dict() for w in entry.writers] or None,
            )
            await change.event(
                EventType.state_updated,
                step_id,
                key=entry.key,
                version=entry.version,
                merge=entry.merge.value,
            )
        for conflict in merged.conflicts:
            await change.event(
                EventType.state_conflict,
                step_id,
                key=conflict.key,
                kept_step=conflict.kept.step_id,
                kept_run=conflict.kept.run_id,
                discarded_step=conflict.discarded.step_id,
                discarded_run=conflict.discarded.run_id,
                seen_version=conflict.seen_version,
                version=conflict.version,
                rule="the step later in the plan's order wins",
            )

    def _budget_spent(self, totals: Usage) -> str | None:
        """Why the runs so far are over the execution's budget, if they are."""
        budget = self.config.budget
        if budget is None:
            return None
        over = []
        if budget.max_tokens is not None and totals.total_tokens > budget.max_tokens:
            over.append(f"{totals.total_tokens:,} tokens used of {budget.max_tokens:,}")
        cost = totals.cost or 0.0
        if budget.max_cost is not None and cost > budget.max_cost:
            over.append(f"cost {cost:.6g} of {budget.max_cost:g}")
        return f"budget exceeded: {'; '.join(over)}" if over else None

    async def _skip(self, step_ids: list[str], reason: str) -> None:
        if not step_ids:
            return
        async with self.change() as change:
            for step_id in step_ids:
                self.statuses[step_id] = StepStatus.skipped
                await change.set_step_status(step_id, StepStatus.skipped)
                await change.event(EventType.step_skipped, step_id, reason=reason)
                await self._end_phase(change, step_id)

    async def _phase_end(self, step_id: str) -> None:
        async with self.change() as change:
            await self._end_phase(change, step_id)

    async def _end_phase(self, change: Change, step_id: str) -> None:
        """Count a step's end; the change tells of its phase's end if it was last."""
        phase = self.phases.finish(step_id)
        if phase is not None:
            await change.event(EventType.phase_finished, phase=phase)

    async def _hand_back(self) -> None:
        """Leave the execution unfinished and unowned for the next process."""
        left = self._unfinished()
        async with self.change(reads=True) as change:
            await change.event(
                EventType.execution_interrupted,
                reason="the service is stopping; another start resumes it",
                steps_left=left,
            )
            row = await change.repository.get(self.execution_id)
            row.owner, row.lease_expires_at = None, None
        logger.info("execution.handed_back", extra={"steps_left": len(left)})

    async def _finish(self) -> None:
        status, reason = self._final_status()
        result = self._result(status)
        async with self.change(reads=True) as change:
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
            row.owner, row.lease_expires_at = None, None  # after the fenced event
        logger.info(
            "execution.finished",
            extra={"status": status.value, "total_time_ms": result.total_time_ms},
        )

    def _final_status(self) -> tuple[ExecutionStatus, str | None]:
        counts = Counter(self.statuses.values())
        if counts[StepStatus.succeeded] == len(self.steps):
            return ExecutionStatus.succeeded, None  # a late stop changed nothing
        if self._stop is not None:
            return self._stop.status, self._stop.reason
        unsuccessful = len(self.steps) - counts[StepStatus.succeeded]
        reason = self._spent or (
            f"{unsuccessful} of {len(self.steps)} steps did not succeed"
        )
        if counts[StepStatus.succeeded]:
            return ExecutionStatus.partial, reason
        return ExecutionStatus.failed, reason

    def _result(self, status: ExecutionStatus) -> ExecutionResult:
        wall_ms = round((utcnow() - self.began).total_seconds() * 1000)
        agent_ms = sum(r.duration_ms for r in self.records if r.duration_ms is not None)
        usage = usage_totals(self.records)
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
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            cost=usage.cost,
        )

    def _critical_path_taken(self) -> list[str]:
        """The chain of runs that held up the end: last to finish, walked back."""
        finished = {
            record.step_id: record.finished
            for record in sorted(self.records, key=lambda r: r.finished)
        }
        if not finished:
            return []
        path = [max(finished, key=finished.__getitem__)]
        while True:
            deps = [d for d in self.by_id[path[-1]].depends_on if d in finished]
            if not deps:
                return path[::-1]
            path.append(max(deps, key=finished.__getitem__))


async def load_history(change: Change, steps: list[PlannedStep]) -> History:
    """Read back what an execution's steps have done so far."""
    repository = change.repository
    row = await repository.get(change.execution_id)
    statuses = {
        step.step_id: StepStatus(step.status)
        for step in await repository.steps(change.execution_id)
    }
    attempts = {step.id: 0 for step in steps}
    records, outputs, last_error = [], {}, {}
    for run in await repository.runs(change.execution_id):
        attempts[run.step_id] = max(attempts[run.step_id], run.attempt)
        status = RunStatus(run.status)
        if status == RunStatus.succeeded:
            outputs[run.step_id] = run.output
        elif status != RunStatus.running:
            last_error[run.step_id] = (RUN_ENDS_STEP[status], run.error or status.value)
        if run.finished_at is not None:
            usage = _usage_of(run)
            records.append(
                RunRecord(run.step_id, status, run.duration_ms, run.finished_at, usage)
            )
    state = [_entry(state_row) for state_row in await repository.state(row.id)]
    not_before = {}
    for step_id, status in statuses.items():
        if status == StepStatus.retrying:
            waited = await repository.last_event(
                row.id, step_id, EventType.step_retrying.value
            )
            if waited is not None:
                delay = timedelta(milliseconds=waited.data.get("delay_ms", 0))
                not_before[step_id] = waited.created_at + delay
    return History(
        statuses=statuses,
        attempts=attempts,
        records=records,
        outputs=outputs,
        state=state,
        last_error=last_error,
        not_before=not_before,
    )


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
    open_runs = {}
    for run in await repository.runs(change.execution_id):
        if run.status == RunStatus.running:
            await change.finish_run(
                run.id, RunStatus.cancelled, finished_at=utcnow(), error=reason
            )
            open_runs[run.step_id] = run.id
    final: Counter[str] = Counter()
    for step in await repository.steps(change.execution_id):
        before = str(step.status)
        final[before] += 1
        data: dict[str, Any] = {"reason": reason}
        if step.status == StepStatus.running:
            target, event = StepStatus.cancelled, EventType.step_cancelled
            data["run_id"] = open_runs.get(step.step_id)
        elif step.status == StepStatus.retrying:
            target, event = StepStatus.failed, EventType.step_failed
            data["error"] = f"no further attempt: {reason}"
        elif step.status == StepStatus.pending:
            target, event = StepStatus.skipped, EventType.step_skipped
        else:
            continue
        await change.set_step_status(step.step_id, target)
        await change.event(event, step.step_id, **data)
        final[before] -= 1
        final[str(target)] += 1
    if result is not None:
        result.steps_by_status = {key: n for key, n in sorted(final.items()) if n}
    summary = result.model_dump(mode="json") if result else None
    repository.set_status(
        row, status, finished_at=utcnow(), reason=reason, result=summary
    )
    await change.event(
        EventType.execution_finished, status=status.value, reason=reason, result=summary
    )
    row.owner, row.lease_expires_at = None, None  # after the fenced event


def _added(total: Usage, usage: Usage | None) -> Usage:
    """The total with one more run's usage in it."""
    if usage is None:
        return total
    costs = [cost for cost in (total.cost, usage.cost) if cost is not None]
    return Usage(
        input_tokens=total.input_tokens + usage.input_tokens,
        output_tokens=total.output_tokens + usage.output_tokens,
        cost=round(sum(costs), 12) if costs else None,
    )


def usage_totals(records: list[RunRecord]) -> Usage:
    """The usage of all runs; a cost only when some run reported one."""
    used = [record.usage for record in records if record.usage is not None]
    costs = [usage.cost for usage in used if usage.cost is not None]
    return Usage(
        input_tokens=sum(usage.input_tokens for usage in used),
        output_tokens=sum(usage.output_tokens for usage in used),
        cost=round(sum(costs), 12) if costs else None,
    )


def _checked_usage(usage: Any) -> Usage | None:
    """A runner's usage, or RunFailed when it is not whole non-negative counts."""
    if usage is None:
        return None
    if not isinstance(usage, Usage):
        raise RunFailed(f"usage must be a Usage, not {type(usage).__name__}")
    for name in ("input_tokens", "output_tokens"):
        value = getattr(usage, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RunFailed(f"usage {name} must be a whole number")
        if not 0 <= value <= _MAX_TOKENS:
            raise RunFailed(f"usage {name} must be from 0 to {_MAX_TOKENS:,}")
    cost = usage.cost
    is_number = isinstance(cost, int | float) and not isinstance(cost, bool)
    if cost is not None and not (is_number and math.isfinite(cost) and cost >= 0):
        raise RunFailed("usage cost must be a finite number of at least 0")
    if cost is not None:
        # sums of prices per million carry float noise: 0.0012000000000000001
        usage = Usage(usage.input_tokens, usage.output_tokens, round(cost, 12))
    return usage


def _usage_columns(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {}
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": usage.cost,
    }


def _usage_of(run: RunRow) -> Usage | None:
    if run.input_tokens is None and run.output_tokens is None and run.cost is None:
        return None
    return Usage(run.input_tokens or 0, run.output_tokens or 0, run.cost)


def _entry(row: SharedStateRow) -> Entry:
    writers = tuple(
        Writer(w["step_id"], w["run_id"], w["attempt"], datetime.fromisoformat(w["at"]))
        for w in row.writers or []
    )
    writer = Writer(
        row.updated_by_step,
        row.updated_by_run,
        row.updated_by_attempt or 0,
        row.updated_at,
    )
    return Entry(row.key, row.value, row.version, MergeRule(row.merge), writer, writers)
