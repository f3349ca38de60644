"""The executions this process runs, the server-wide cap, and the heartbeat.

``Executor`` starts a loop (``app/execution/loop.py``) for each execution this
process owns. Its heartbeat renews the leases of those executions, stops the
ones another process was asked to cancel, and takes over executions that no live
process owns: left by a process that crashed, was killed, or stopped gracefully.
A taken-over execution resumes where it was: steps that succeeded are kept, runs
that were cut off end ``interrupted`` and are re-attempted if the step's retry
policy allows it.

On shutdown every loop drains (no new step starts), running steps get
``shutdown_grace_seconds`` to finish, and then the rest are interrupted and
handed back, unowned, so that the next start of any process resumes them.
"""

import asyncio
import logging
import time
from typing import Any

from app.execution.leases import Leases
from app.execution.limits import Slots
from app.execution.loop import ExecutionLoop, LoopConfig
from app.execution.recorder import Recorder
from app.execution.schemas import ExecutionConfig
from app.execution.status import ExecutionStatus
from app.planning.models import PlannedStep, RetryPolicy
from app.runners.profiles import ProfileRegistry
from app.settings import Settings
from app.storage.models import PlanStepRow
from app.storage.repository import ExecutionRepository

logger = logging.getLogger(__name__)


def loop_config(config: ExecutionConfig, estimated_savings_ms: int) -> LoopConfig:
    """The limits a loop runs with, from an execution's resolved config."""
    assert config.max_parallel and config.step_timeout_s and config.execution_timeout_s
    assert config.profile
    return LoopConfig(
        max_parallel=config.max_parallel,
        fail_fast=config.fail_fast,
        step_timeout_s=config.step_timeout_s,
        execution_timeout_s=config.execution_timeout_s,
        profile=config.profile,
        estimated_savings_ms=estimated_savings_ms,
        retry=config.retry or RetryPolicy(),
        budget=config.budget,
        state_merge=dict(config.state_merge),
    )


def planned_step(row: PlanStepRow) -> PlannedStep:
    return PlannedStep(
        id=row.step_id,
        agent=row.agent,
        title=row.title,
        instructions=row.instructions,
        depends_on=row.depends_on,
        estimate_ms=row.estimate_ms,
        timeout_s=row.timeout_s,
        retry=RetryPolicy.model_validate(row.retry) if row.retry else None,
        phase=row.phase,
    )


class Executor:
    """The executions running in this process, and the server-wide cap."""

    def __init__(
        self,
        recorder: Recorder,
        registry: ProfileRegistry,
        settings: Settings,
        leases: Leases,
        *,
        adopt_orphans: bool = True,
    ) -> None:
        self.recorder = recorder
        self.adopt_orphans = adopt_orphans
        self.registry = registry
        self.settings = settings
        self.leases = leases
        self.slots = Slots(settings.server_max_parallel)
        self._loops: dict[str, tuple[ExecutionLoop, asyncio.Task[None]]] = {}
        self._accepting = True
        self._draining_since: float | None = None

    @property
    def owner(self) -> str:
        return self.leases.owner

    @property
    def accepting(self) -> bool:
        return self._accepting

    def start(
        self,
        execution_id: str,
        task: str,
        steps: list[PlannedStep],
        config: LoopConfig,
        *,
        resume: bool = False,
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
            owner=self.owner,
            resume=resume,
        )
        if not self._accepting:
            loop.drain()  # accepted just before the stop: handed back at once
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
        if entry is not None:
            entry[0].stop(status, reason)
            await self.wait(execution_id, wait_s)

    # taking over

    async def take_over_orphans(self) -> list[str]:
        """Resume every execution no live process owns; their ids."""
        taken = []
        for execution_id in await self.leases.orphans():
            if not self._accepting:
                break
            if await self.take_over(execution_id):
                taken.append(execution_id)
        return taken

    async def take_over(self, execution_id: str) -> bool:
        """Resume one execution if no live process owns it; whether it did."""
        previous = await self.leases.take(execution_id)
        if previous is None:
            return False
        try:
            await self._resume(execution_id)
        except Exception:
            logger.exception("execution.not_resumed", extra={"id": execution_id})
            await self.leases.release(execution_id)
            return False
        logger.info(
            "execution.taken_over",
            extra={"execution_id": execution_id, "previous_owner": previous},
        )
        return True

    async def wait(self, execution_id: str, wait_s: float) -> None:
        """Wait up to wait_s for this process's loop of an execution to end."""
        entry = self._loops.get(execution_id)
        if entry is not None:
            await asyncio.wait({entry[1]}, timeout=wait_s)

    async def _resume(self, execution_id: str) -> None:
        async with self.recorder.database.reader() as session:
            repository = ExecutionRepository(session)
            row = await repository.get(execution_id)
            steps = [planned_step(step) for step in await repository.steps(row.id)]
        config = ExecutionConfig.model_validate(row.config)
        savings = row.plan_figures["estimated_savings_ms"]
        self.start(
            execution_id, row.task, steps, loop_config(config, savings), resume=True
        )

    # the heartbeat

    async def heartbeat(self) -> None:
        """Renew leases, act on cancels asked elsewhere, take over orphans."""
        running = {key: loop for key, (loop, _) in self._loops.items()}
        renewal = await self.leases.renew()
        for execution_id, loop in running.items():
            if execution_id in renewal.held or loop.stopping or loop.closing:
                continue
            # a loop may have ended, or handed its execution back, meanwhile
            if await self.leases.holder(execution_id) != self.owner:
                if execution_id in self._loops and not loop.closing:
                    logger.warning("execution.lease_lost", extra={"id": execution_id})
                    loop.lose()
        for execution_id, reason in renewal.cancels.items():
            self.cancel_asked(execution_id, reason)
        if self.adopt_orphans:
            await self.take_over_orphans()

    def cancel_asked(self, execution_id: str, reason: str) -> None:
        """Another process was asked to cancel an execution this one runs."""
        entry = self._loops.get(execution_id)
        if entry is not None:
            entry[0].stop(ExecutionStatus.cancelled, reason)

    # shutdown

    def begin_shutdown(self) -> None:
        """Take no more work and start no new step; a second call interrupts now.

        Called as soon as the process is told to stop, before the server has
        finished its open requests, so that a submit still under way is refused
        and no new step starts while the server winds down.
        """
        if self._draining_since is not None:
            for loop, _ in self._loops.values():
                loop.interrupt()  # asked twice: do not wait for the grace period
            return
        self._drain()

    def _drain(self) -> None:
        if self._draining_since is None:
            self._accepting = False
            self._draining_since = time.monotonic()
        for loop, _ in self._loops.values():
            loop.drain()

    async def shutdown(self, grace_s: float, wait_s: float) -> None:
        """Let running steps finish for grace_s, then interrupt and hand back the rest.

        The grace period counts from ``begin_shutdown``. A loop that outlasts
        wait_s after that is cut off: its execution keeps its lease until it runs
        out, and then another process resumes it.
        """
        self._drain()
        assert self._draining_since is not None
        loops = dict(self._loops)
        if not loops:
            return
        tasks: set[asyncio.Task[Any]] = {task for _, task in loops.values()}
        grace_left = grace_s - (time.monotonic() - self._draining_since)
        _, late = await asyncio.wait(tasks, timeout=max(grace_left, 0))
        for execution_id, (loop, task) in loops.items():
            if task in late:
                logger.info("execution.interrupting", extra={"id": execution_id})
                loop.interrupt()
        if late:
            _, cut_off = await asyncio.wait(late, timeout=wait_s)
            for task in cut_off:
                task.cancel()
            await asyncio.gather(*cut_off, return_exceptions=True)
