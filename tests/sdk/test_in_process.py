"""The Python API in-process: the service's planner and executor, no server."""

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from parallel_exec import (
    ChainExecutor,
    EventType,
    ExecutionStatus,
    ExecutorConfig,
    ParallelAgentExecutor,
    ParallelExecError,
    RequestRejected,
    StepContext,
    StepResult,
)
from tests.invariants import check_invariants
from tests.serving import free_port

PATIENCE_SECONDS = 60.0  # catches a hang; measures nothing


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


class TestParallelAgentExecutor:
    async def test_the_documented_call_runs_the_task_and_gives_its_figures(
        self, settings: Settings
    ) -> None:
        executor = ParallelAgentExecutor(settings=settings)
        result = await executor.execute(
            task_description="Implement login and register features",
            config=ExecutorConfig(fail_fast=True, enable_parallel=True, dry_run=False),
        )

        assert result.status == ExecutionStatus.succeeded
        assert result.parallel_groups_executed == len(result.plan.phases)
        assert result.total_time_ms > 0
        assert result.estimated_savings_ms == result.plan.estimated_savings_ms > 0
        assert sorted(result.outputs) == sorted(step.id for step in result.plan.steps)
        assert result.critical_path_taken[-1] == result.plan.steps[-1].id
        await check_invariants(settings.database_url)

    async def test_a_dry_run_plans_and_runs_nothing(self, settings: Settings) -> None:
        result = await ParallelAgentExecutor(settings=settings).execute(
            "Implement login feature with UI, backend, and tests",
            ExecutorConfig(dry_run=True),
        )

        assert result.status == ExecutionStatus.planned
        assert result.runs == []
        assert result.total_time_ms == 0 and result.parallel_groups_executed == 0
        assert "Phase 1 (3 steps in parallel):" in result.message
        assert result.estimated_savings_ms == result.plan.estimated_savings_ms > 0

    async def test_events_come_once_each_in_order_from_any_seq(
        self, settings: Settings
    ) -> None:
        async with ParallelAgentExecutor(settings=settings) as executor:
            seen = []
            result = await executor.execute("Fix bug in node X", on_event=seen.append)
            replay = [event async for event in executor.events(result.execution_id)]
            tail = [event async for event in executor.events(result.execution_id, 5)]

        assert [event.seq for event in seen] == list(range(1, len(seen) + 1))
        assert [event.seq for event in replay] == [event.seq for event in seen]
        assert [event.seq for event in tail] == list(range(6, len(seen) + 1))
        assert seen[-1].type == EventType.execution_finished

    async def test_get_list_and_cancel_read_the_same_store(
        self, settings: Settings
    ) -> None:
        slow = settings.model_copy(update={"simulated_time_scale": 5.0})
        async with ParallelAgentExecutor(settings=slow) as executor:
            execution = await executor.submit("Implement login feature")
            assert (await executor.get(execution.id)).status in (
                ExecutionStatus.accepted,
                ExecutionStatus.running,
            )
            cancelled = await executor.cancel(execution.id)
            report = await executor.wait(execution.id)
            page = await executor.list(status="cancelled")

        assert cancelled.id == execution.id
        assert report.status == ExecutionStatus.cancelled
        assert [item.id for item in page.items] == [execution.id]

    async def test_cancelling_the_awaiting_task_cancels_the_execution(
        self, settings: Settings
    ) -> None:
        started = asyncio.Event()

        async def agent(context: StepContext) -> None:
            started.set()
            await asyncio.sleep(PATIENCE_SECONDS)

        async with ParallelAgentExecutor(
            settings=settings, functions={"blocking": agent}
        ) as executor:
            running = asyncio.create_task(
                executor.execute(
                    "Fix bug in node X", ExecutorConfig(profile="blocking")
                )
            )
            await asyncio.wait_for(started.wait(), PATIENCE_SECONDS)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            page = await executor.list()

        assert page.items[0].status == ExecutionStatus.cancelled

    async def test_refusals_carry_the_services_status_and_code(
        self, settings: Settings
    ) -> None:
        executor = ParallelAgentExecutor(settings=settings)
        with pytest.raises(RequestRejected) as unknown:
            await executor.execute("Fix it", ExecutorConfig(profile="no-such"))
        with pytest.raises(RequestRejected) as invalid:
            await executor.execute("Fix it", ExecutorConfig(max_parallel=0))
        with pytest.raises(RequestRejected) as missing:
            await executor.get("no-such-execution")

        assert (unknown.value.status, unknown.value.code) == (422, "profile_not_found")
        assert (invalid.value.status, invalid.value.code) == (422, "invalid_request")
        assert "body.config.max_parallel" in invalid.value.message
        assert (missing.value.status, missing.value.code) == (
            404,
            "execution_not_found",
        )


class TestChainExecutor:
    async def test_a_dry_run_message_lists_each_phase_and_what_runs_in_parallel(
        self, settings: Settings
    ) -> None:
        executor = ChainExecutor("simulated", enable_parallel=True, settings=settings)
        parallel = await executor.execute(
            description="Implement login feature", parallel=True, dry_run=True
        )
        serial = await executor.execute(
            description="Implement login feature", parallel=False, dry_run=True
        )

        assert parallel.status == ExecutionStatus.planned
        assert "Phase 1 (3 steps in parallel):" in parallel.message
        assert "Phase 2 (1 step):" in parallel.message
        assert "explore-domain" in parallel.message
        assert "Phase 1 (3 steps, one at a time):" in serial.message
        assert "in parallel" not in serial.message
        assert serial.estimated_savings_ms == 0 < parallel.estimated_savings_ms

    async def test_an_async_function_carries_out_every_step_with_its_context(
        self, settings: Settings
    ) -> None:
        contexts: list[StepContext] = []

        async def orchestrator(context: StepContext) -> StepResult:
            contexts.append(context)
            return StepResult(
                output=f"{context.agent} did {context.step_id}",
                state_updates={f"seen.{context.step_id}": sorted(context.upstream)},
            )

        result = await ChainExecutor(orchestrator, settings=settings).execute(
            description="Fix bug in node X", parallel=True
        )

        assert result.status == ExecutionStatus.succeeded
        by_id = {step.id: step for step in result.plan.steps}
        assert result.outputs == {
            step_id: f"{step.agent} did {step_id}" for step_id, step in by_id.items()
        }
        for context in contexts:
            assert context.task == "Fix bug in node X"
            assert sorted(context.upstream) == sorted(by_id[context.step_id].depends_on)
        assert result.execution.profile.startswith("python.")

    async def test_a_plain_function_runs_off_the_event_loop(
        self, settings: Settings
    ) -> None:
        threads: set[int] = set()

        def orchestrator(context: StepContext) -> dict[str, Any]:
            threads.add(threading.get_ident())
            return {"step": context.step_id}

        result = await ChainExecutor(orchestrator, settings=settings).execute(
            "Fix bug in node X"
        )

        assert result.status == ExecutionStatus.succeeded
        assert threading.get_ident() not in threads
        assert result.outputs["reviewer-final"] == {"step": "reviewer-final"}

    async def test_an_exception_fails_the_step_with_its_message(
        self, settings: Settings
    ) -> None:
        async def orchestrator(context: StepContext) -> str:
            if context.agent == "builder":
                raise ValueError("the build broke")
            return "fine"

        result = await ChainExecutor(orchestrator, settings=settings).execute(
            "Fix bug in node X"
        )

        assert result.status == ExecutionStatus.failed
        failed = [run for run in result.runs if run.status == "failed"]
        assert [run.step_id for run in failed] == ["builder-fix"]
        assert "the build broke" in (failed[0].error or "")
        assert result.steps_by_status["skipped"] > 0

    async def test_sequential_runs_never_overlap(self, settings: Settings) -> None:
        running = 0
        most = 0

        async def orchestrator(context: StepContext) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

        executor = ChainExecutor(orchestrator, enable_parallel=True, settings=settings)
        serial = await executor.execute("Implement login feature", parallel=False)
        assert (serial.status, most) == (ExecutionStatus.succeeded, 1)

        most = 0
        await executor.execute("Implement login feature", parallel=True)
        assert most > 1

    def test_a_function_cannot_be_sent_to_a_remote_service(self) -> None:
        with pytest.raises(TypeError, match="in this process"):
            ChainExecutor(lambda context: None, base_url="http://127.0.0.1:9")
        with pytest.raises(TypeError, match="profile name or a function"):
            ChainExecutor(42)  # type: ignore[arg-type]


DYING_SCRIPT = """
import asyncio, os, signal, sys
from parallel_exec import ChainExecutor

async def agent(context):
    if context.agent == "builder":
        os.kill(os.getpid(), signal.SIGKILL)
    return "done"

asyncio.run(ChainExecutor(agent, database_url=sys.argv[1]).execute("Fix bug in node X"))
"""


class TestLeftOverExecutions:
    async def test_watching_one_whose_function_died_with_its_process_ends_it_clearly(
        self, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'px.db'}"
        died = subprocess.run(
            [sys.executable, "-c", DYING_SCRIPT, url], timeout=PATIENCE_SECONDS
        )
        assert died.returncode == -signal.SIGKILL

        async with ParallelAgentExecutor(database_url=url) as executor:
            (left,) = (await executor.list()).items
            assert left.status == ExecutionStatus.running
            report = await executor.wait(left.id)

        assert report.status == ExecutionStatus.failed
        assert "unknown profile 'python.agent'" in (report.reason or "")
        assert set(report.steps_by_status) <= {"succeeded", "failed", "skipped"}
        assert report.steps_by_status["succeeded"] == 2
        await check_invariants(url)


class TestMisuse:
    async def test_submit_outside_an_open_executor_is_refused(
        self, settings: Settings
    ) -> None:
        executor = ParallelAgentExecutor(settings=settings)
        with pytest.raises(RuntimeError, match="async with"):
            await executor.submit("Fix bug in node X")
        planned = await executor.submit(
            "Fix bug in node X", ExecutorConfig(dry_run=True)
        )
        assert planned.status == ExecutionStatus.planned

    async def test_an_on_event_that_raises_cancels_the_execution(
        self, settings: Settings
    ) -> None:
        def fussy(event: Any) -> None:
            if event.type == EventType.step_started:
                raise ValueError("I do not like this step")

        slow = settings.model_copy(update={"simulated_time_scale": 5.0})
        async with ParallelAgentExecutor(settings=slow) as executor:
            with pytest.raises(ValueError, match="do not like"):
                await executor.execute("Fix bug in node X", on_event=fussy)
            (execution,) = (await executor.list()).items
            report = await executor.wait(execution.id)

        assert report.status == ExecutionStatus.cancelled

    async def test_bad_settings_and_a_database_out_of_reach_say_so(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PX_MAX_PARALLEL_DEFAULT", "abc")
        with pytest.raises(ParallelExecError, match="PX_MAX_PARALLEL_DEFAULT"):
            ParallelAgentExecutor(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
        monkeypatch.delenv("PX_MAX_PARALLEL_DEFAULT")

        closed = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/px"
        with pytest.raises(ParallelExecError, match="cannot open the database"):
            await ParallelAgentExecutor(database_url=closed).list()

    async def test_ids_and_seqs_of_the_wrong_kind_are_refused(
        self, settings: Settings
    ) -> None:
        executor = ParallelAgentExecutor(settings=settings)
        with pytest.raises(TypeError, match="execution id"):
            await executor.get(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="after_seq"):
            [event async for event in executor.events("some-id", after_seq=-1)]
        with pytest.raises(TypeError, match="for in-process use"):
            ParallelAgentExecutor("http://127.0.0.1:9", database_url="sqlite://")
