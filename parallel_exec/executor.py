"""ParallelAgentExecutor and ChainExecutor: plan a task and run its agents.

Given a service's URL, an executor sends everything to that service through the
generated httpx client and follows events over its WebSocket stream. Without
one it runs the service's own planner and executor in this process, on the
embedded SQLite database (``PX_DATABASE_URL``, by default
``./data/parallel-exec.db``), with no server.

An executor used as ``async with`` keeps its connection (or in-process runtime)
open until the block ends; otherwise each call opens and closes its own.
Cancelling a task that awaits ``execute`` cancels the execution it started.
"""

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from app.events.types import EventRead
from app.execution.schemas import ExecutionPage, ExecutionRead, PlanRead, RunRead
from app.execution.status import ExecutionStatus
from app.planning.models import Mode, StepSpec
from app.runners.python import StepFunction
from app.settings import Settings
from parallel_exec.backends import Backend, LocalBackend, RemoteBackend
from parallel_exec.config import ExecutorConfig
from parallel_exec.errors import ParallelExecError
from parallel_exec.results import ExecutionReport

EventHandler = Callable[[EventRead], Awaitable[None] | None]
_PROFILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ParallelAgentExecutor:
    """Plans tasks and runs their agents in parallel, remotely or in-process.

    ``base_url`` (and ``api_key``) select a remote service. In-process,
    ``settings`` or ``database_url`` choose the database, and ``functions``
    adds profiles whose every step is carried out by a Python function taking
    the step's ``StepContext`` (pick one with ``ExecutorConfig(profile=...)``).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        settings: Settings | None = None,
        database_url: str | None = None,
        functions: Mapping[str, StepFunction] | None = None,
        timeout_s: float = 30.0,
        reconnect_timeout_s: float = 60.0,
    ) -> None:
        self._backend: Backend
        if base_url is not None:
            if functions:
                raise TypeError(
                    "functions run in this process; a remote service runs the "
                    "profiles its operator defined"
                )
            if settings is not None or database_url is not None:
                raise TypeError(
                    "settings and database_url are for in-process use; a remote "
                    "service has its own"
                )
            self._backend = RemoteBackend(
                base_url,
                api_key,
                timeout_s=timeout_s,
                reconnect_timeout_s=reconnect_timeout_s,
            )
        else:
            if settings is None:
                settings = _settings(database_url)
            self._backend = LocalBackend(settings, functions or {})
        self.remote = base_url is not None
        self._users = 0
        self._opening = asyncio.Lock()

    # the session: open on first use, closed by the last

    async def __aenter__(self) -> Self:
        await self._enter()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._leave()

    async def aclose(self) -> None:
        """Close the connection or the in-process runtime if it is open."""
        self._users = 0
        await self._backend.aclose()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Backend]:
        await self._enter()
        try:
            yield self._backend
        finally:
            await self._leave()

    async def _enter(self) -> None:
        async with self._opening:
            if self._users == 0:
                await self._backend.open()
            self._users += 1

    async def _leave(self) -> None:
        async with self._opening:
            self._users -= 1
            if self._users == 0:
                await self._backend.aclose()

    # running

    async def execute(
        self,
        task_description: str,
        config: ExecutorConfig | None = None,
        *,
        plan: Sequence[StepSpec | Mapping[str, Any]] | None = None,
        idempotency_key: str | None = None,
        on_event: EventHandler | None = None,
    ) -> ExecutionReport:
        """Plan the task, run it to the end (unless a dry run), and report."""
        async with self._session():
            execution = await self.submit(
                task_description, config, plan=plan, idempotency_key=idempotency_key
            )
            if not execution.dry_run:
                await self._follow(execution.id, on_event, cancel_if_abandoned=True)
            return await self.report(execution.id)

    async def submit(
        self,
        task_description: str,
        config: ExecutorConfig | None = None,
        *,
        plan: Sequence[StepSpec | Mapping[str, Any]] | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionRead:
        """Plan the task and start it without waiting; the execution with its plan."""
        body: dict[str, Any] = {
            "task": task_description,
            "config": (config or ExecutorConfig()).request_config(),
        }
        if plan is not None:
            body["plan"] = {"steps": [_step_body(step) for step in plan]}
        dry_run = (config or ExecutorConfig()).dry_run
        if not self.remote and not dry_run and self._users == 0:
            raise RuntimeError(
                "in-process, an execution runs only while the executor is open: "
                "call submit inside 'async with ParallelAgentExecutor() as "
                "executor:', or use execute"
            )
        async with self._session() as backend:
            return await backend.submit(body, idempotency_key)

    async def wait(
        self,
        execution_id: str,
        on_event: EventHandler | None = None,
        *,
        cancel_if_abandoned: bool = False,
    ) -> ExecutionReport:
        """Follow an execution to its end and report it.

        With ``cancel_if_abandoned``, cancelling the waiting task also cancels
        the execution; otherwise the execution goes on.
        """
        async with self._session():
            await self._follow(execution_id, on_event, cancel_if_abandoned)
            return await self.report(execution_id)

    async def _follow(
        self,
        execution_id: str,
        on_event: EventHandler | None,
        cancel_if_abandoned: bool,
    ) -> None:
        try:
            # closed here, not by the event loop later, when on_event raises
            async with aclosing(self.events(execution_id)) as events:
                async for event in events:
                    outcome = on_event(event) if on_event is not None else None
                    if inspect.isawaitable(outcome):
                        await outcome
        except BaseException:
            # abandoned: cancelled, or on_event raised
            if cancel_if_abandoned:
                await asyncio.shield(self._cancel_quietly(execution_id))
            raise

    async def _cancel_quietly(self, execution_id: str) -> None:
        try:
            await self._backend.cancel(execution_id)
        except ParallelExecError:
            pass  # finished meanwhile, or the service is gone

    async def events(
        self, execution_id: str, after_seq: int = 0
    ) -> AsyncIterator[EventRead]:
        """The execution's events after ``after_seq``, each once, to the last.

        Remotely, a dropped connection is resumed from the last event seen.
        """
        _check_id(execution_id)
        if not isinstance(after_seq, int) or after_seq < 0:
            raise ValueError(f"after_seq must be an integer >= 0, not {after_seq!r}")
        async with self._session() as backend:
            async for event in backend.events(execution_id, after_seq):
                yield event

    # reading and cancelling

    async def get(self, execution_id: str) -> ExecutionRead:
        """One execution, with its result figures once it has finished."""
        _check_id(execution_id)
        async with self._session() as backend:
            return await backend.get(execution_id)

    async def plan(self, execution_id: str) -> PlanRead:
        """An execution's plan, each step with its status."""
        _check_id(execution_id)
        async with self._session() as backend:
            return await backend.plan(execution_id)

    async def runs(self, execution_id: str) -> list[RunRead]:
        """Every run of an execution's steps, in start order."""
        _check_id(execution_id)
        async with self._session() as backend:
            return await backend.runs(execution_id)

    async def list(
        self,
        status: ExecutionStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ExecutionPage:
        """Executions, newest first, optionally only those with one status."""
        wanted = ExecutionStatus(status) if status is not None else None
        async with self._session() as backend:
            return await backend.page(wanted, limit, offset)

    async def cancel(self, execution_id: str) -> ExecutionRead:
        """Stop a running execution: running steps cancelled, the rest skipped."""
        _check_id(execution_id)
        async with self._session() as backend:
            return await backend.cancel(execution_id)

    async def report(self, execution_id: str) -> ExecutionReport:
        """The execution with its plan and runs, as ``execute`` returns it."""
        async with self._session() as backend:
            execution, plan, runs = await asyncio.gather(
                backend.get(execution_id),
                backend.plan(execution_id),
                backend.runs(execution_id),
            )
        return ExecutionReport(execution, plan, runs)


class ChainExecutor:
    """Runs a task's chain of agents through one orchestrator.

    ``orchestrator`` is what launches the agents: a profile name, or a function
    (async or not) taking the step's ``StepContext``, which runs in this
    process. ``enable_parallel=False`` runs every step one at a time whatever
    ``execute`` is asked.
    """

    def __init__(
        self,
        orchestrator: str | StepFunction | None = None,
        enable_parallel: bool = True,
        *,
        mode: Mode | str = Mode.chain,
        fail_fast: bool = True,
        max_parallel: int | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        database_url: str | None = None,
    ) -> None:
        functions: dict[str, StepFunction] = {}
        if orchestrator is None or isinstance(orchestrator, str):
            self.profile = orchestrator
        elif callable(orchestrator):
            self.profile = _function_profile_name(orchestrator)
            functions[self.profile] = orchestrator
        else:
            raise TypeError(
                "orchestrator must be a profile name or a function taking the "
                f"step context, not {type(orchestrator).__name__}"
            )
        self.enable_parallel = enable_parallel
        self.mode = mode
        self.fail_fast = fail_fast
        self.max_parallel = max_parallel
        self.executor = ParallelAgentExecutor(
            base_url,
            api_key,
            settings=settings,
            database_url=database_url,
            functions=functions,
        )

    async def __aenter__(self) -> Self:
        await self.executor.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.executor.__aexit__(*exc_info)

    async def execute(
        self,
        description: str,
        parallel: bool | None = None,
        dry_run: bool = False,
        *,
        mode: Mode | str | None = None,
        step_timeout_s: float | None = None,
        execution_timeout_s: float | None = None,
        on_event: EventHandler | None = None,
    ) -> ExecutionReport:
        """Plan the task and run it; ``message`` shows the plan phase by phase."""
        config = ExecutorConfig(
            fail_fast=self.fail_fast,
            enable_parallel=self.enable_parallel and parallel is not False,
            dry_run=dry_run,
            mode=mode or self.mode,
            max_parallel=self.max_parallel,
            step_timeout_s=step_timeout_s,
            execution_timeout_s=execution_timeout_s,
            profile=self.profile,
        )
        return await self.executor.execute(description, config, on_event=on_event)


def _settings(database_url: str | None) -> Settings:
    overrides = {"database_url": database_url} if database_url else {}
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"PX_{'_'.join(map(str, item['loc'])).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise ParallelExecError(f"invalid settings: {problems}") from None


def _check_id(execution_id: str) -> None:
    if not isinstance(execution_id, str) or not execution_id:
        raise TypeError(f"an execution id is a non-empty str, not {execution_id!r}")


def _step_body(step: StepSpec | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(step, StepSpec):
        return step.model_dump(mode="json", exclude_none=True)
    return dict(step)


def _function_profile_name(function: StepFunction) -> str:
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return ("python." + _PROFILE_UNSAFE.sub("-", name))[:64]
