"""The Python API against a real service process on 127.0.0.1."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from parallel_exec import (
    ChainExecutor,
    EventRead,
    ExecutionStatus,
    ExecutorConfig,
    ParallelAgentExecutor,
    RequestRejected,
    ServiceUnreachable,
)
from tests.proxy import CuttableProxy
from tests.serving import ServiceProcess, free_port

API_KEY = "sdk-test-key"


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(
        database_url,
        tmp_path,
        settings={"PX_API_KEY": API_KEY, "PX_SIMULATED_TIME_SCALE": "0.05"},
    )
    await process.start()
    try:
        yield process
    finally:
        process.stop()


def chain_plan(steps: int, estimate_ms: int) -> list[dict]:
    return [
        {
            "id": f"step-{n}",
            "agent": "builder",
            "estimate_ms": estimate_ms,
            "depends_on": [f"step-{n - 1}"] if n > 1 else [],
        }
        for n in range(1, steps + 1)
    ]


async def stored_events(served: ServiceProcess, execution_id: str) -> list[dict]:
    events: list[dict] = []
    async with httpx.AsyncClient(headers={"X-API-Key": API_KEY}) as client:
        while True:
            response = await client.get(
                f"{served.url}/executions/{execution_id}/events",
                params={"after_seq": len(events)},
            )
            page = response.json()
            events += page["items"]
            if page["finished"] or not page["items"]:
                return events


class TestRemoteExecutor:
    async def test_the_documented_call_runs_on_the_service(
        self, served: ServiceProcess
    ) -> None:
        executor = ParallelAgentExecutor(served.url, api_key=API_KEY)
        result = await executor.execute(
            task_description="Implement login and register features",
            config=ExecutorConfig(fail_fast=True, enable_parallel=True, dry_run=False),
        )

        stored = await served.get(
            f"/executions/{result.execution_id}", headers={"X-API-Key": API_KEY}
        )
        assert result.status == ExecutionStatus.succeeded == stored["status"]
        assert result.parallel_groups_executed == len(result.plan.phases)
        assert result.total_time_ms == stored["result"]["total_time_ms"] > 0
        assert result.estimated_savings_ms == stored["estimated_savings_ms"] > 0
        assert len(result.runs) == len(result.plan.steps)

    async def test_an_explicit_plan_and_every_config_field_reach_the_service(
        self, served: ServiceProcess
    ) -> None:
        config = ExecutorConfig(
            fail_fast=False,
            enable_parallel=True,
            mode="decompose",
            max_parallel=2,
            step_timeout_s=30,
            execution_timeout_s=60,
            profile="simulated",
            retry={"max_attempts": 2, "retry_on": ["failed"]},
            max_tokens=5000,
            max_cost=2.5,
            state_merge={"findings": "append"},
        )
        async with ParallelAgentExecutor(served.url, api_key=API_KEY) as executor:
            execution = await executor.submit(
                "Build it", config, plan=chain_plan(3, 100), idempotency_key="k-1"
            )
            again = await executor.submit(
                "Build it", config, plan=chain_plan(3, 100), idempotency_key="k-1"
            )
            report = await executor.wait(execution.id)

        assert again.id == execution.id
        assert report.execution.config.model_dump(mode="json") == {
            "mode": "decompose",
            "parallel": True,
            "dry_run": False,
            "fail_fast": False,
            "max_parallel": 2,
            "step_timeout_s": 30.0,
            "execution_timeout_s": 60.0,
            "profile": "simulated",
            "retry": report.execution.config.retry.model_dump(mode="json"),
            "budget": {"max_tokens": 5000, "max_cost": 2.5},
            "state_merge": {"findings": "append"},
        }
        assert report.execution.config.retry.max_attempts == 2
        assert report.execution.config.retry.retry_on == ["failed"]
        assert [step.id for step in report.plan.steps] == ["step-1", "step-2", "step-3"]
        assert report.status == ExecutionStatus.succeeded

    async def test_get_plan_runs_list_and_cancel(self, served: ServiceProcess) -> None:
        async with ParallelAgentExecutor(served.url, api_key=API_KEY) as executor:
            execution = await executor.submit(
                "Build it", plan=chain_plan(3, 60_000), config=ExecutorConfig()
            )
            plan = await executor.plan(execution.id)
            cancelled = await executor.cancel(execution.id)
            report = await executor.wait(execution.id)
            page = await executor.list(status=ExecutionStatus.cancelled)
            with pytest.raises(RequestRejected) as finished:
                await executor.cancel(execution.id)

        assert [step.id for step in plan.steps] == ["step-1", "step-2", "step-3"]
        assert cancelled.id == execution.id
        assert report.status == ExecutionStatus.cancelled
        assert execution.id in [item.id for item in page.items]
        assert finished.value.status == 409

    async def test_refusals_say_what_is_wrong(self, served: ServiceProcess) -> None:
        executor = ParallelAgentExecutor(served.url, api_key=API_KEY)
        with pytest.raises(RequestRejected) as unknown:
            await executor.execute("Fix it", ExecutorConfig(profile="no-such"))
        with pytest.raises(RequestRejected) as missing:
            await executor.get("no-such-execution")
        with pytest.raises(RequestRejected) as stream_missing:
            [event async for event in executor.events("no-such-execution")]
        with pytest.raises(RequestRejected) as wrong_key:
            await ParallelAgentExecutor(served.url, api_key="wrong").list()

        assert (unknown.value.status, unknown.value.code) == (422, "profile_not_found")
        assert "no-such" in unknown.value.message
        assert (missing.value.status, missing.value.code) == (
            404,
            "execution_not_found",
        )
        assert stream_missing.value.status == 404
        assert (wrong_key.value.status, wrong_key.value.code) == (401, "unauthorized")

    async def test_a_misspelt_key_is_refused_before_it_is_sent(
        self, served: ServiceProcess
    ) -> None:
        executor = ParallelAgentExecutor(served.url, api_key=API_KEY)
        plan = chain_plan(2, 100)
        plan[1]["depend_on"] = plan[1].pop("depends_on")
        with pytest.raises(RequestRejected) as misspelt:
            await executor.submit("Build it", plan=plan)
        with pytest.raises(RequestRejected) as key:
            await executor.submit("Build it", idempotency_key="clé")

        assert (misspelt.value.status, misspelt.value.code) == (422, "invalid_request")
        assert "body.plan.steps.1.depend_on" in misspelt.value.message
        assert (key.value.status, key.value.code) == (422, "invalid_request")
        assert (await executor.list()).total == 0

    async def test_events_after_the_last_of_a_finished_execution_end_at_once(
        self, served: ServiceProcess
    ) -> None:
        async with ParallelAgentExecutor(served.url, api_key=API_KEY) as executor:
            done = await executor.execute("Fix bug in node X")
            last = done.execution.last_seq
            async with asyncio.timeout(30):
                after_last = [e async for e in executor.events(done.execution_id, last)]
                after_one = [
                    e async for e in executor.events(done.execution_id, last - 1)
                ]

        assert after_last == []
        assert [event.seq for event in after_one] == [last]

    async def test_a_closed_port_is_reported_as_unreachable(self) -> None:
        executor = ParallelAgentExecutor(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(ServiceUnreachable, match="cannot reach"):
            await executor.list()

    async def test_chain_executor_with_a_profile_name_runs_remotely(
        self, served: ServiceProcess
    ) -> None:
        executor = ChainExecutor(
            "simulated", enable_parallel=True, base_url=served.url, api_key=API_KEY
        )
        planned = await executor.execute(
            description="Implement login feature", parallel=True, dry_run=True
        )
        ran = await executor.execute("Fix bug in node X", parallel=False)

        assert "Phase 1 (3 steps in parallel):" in planned.message
        assert planned.runs == []
        assert ran.status == ExecutionStatus.succeeded
        assert ran.execution.config.max_parallel == 1
        assert "Phase 1 (2 steps, one at a time):" in ran.message


class TestEventsThroughDrops:
    async def test_a_dropped_websocket_is_resumed_with_no_gap_or_duplicate(
        self, served: ServiceProcess
    ) -> None:
        async with (
            CuttableProxy(served.port) as proxy,
            ParallelAgentExecutor(proxy.url, api_key=API_KEY) as executor,
        ):
            execution = await executor.submit(
                "Build it", plan=chain_plan(8, 2_000), config=ExecutorConfig()
            )
            events: list[EventRead] = []
            dropped = []
            async for event in executor.events(execution.id):
                events.append(event)
                if event.seq in (4, 9, 15):
                    dropped.append(proxy.cut())
            report = await executor.report(execution.id)

        stored = await stored_events(served, execution.id)
        assert len(dropped) == 3 and min(dropped) >= 1, "each cut dropped the stream"
        assert proxy.connections >= 4, "the iterator reconnected after each cut"
        assert [event.seq for event in events] == list(range(1, len(stored) + 1))
        assert [(e.seq, e.type) for e in events] == [
            (e["seq"], e["type"]) for e in stored
        ]
        assert report.status == ExecutionStatus.succeeded

    async def test_the_iterator_waits_out_a_service_restart(
        self, served: ServiceProcess
    ) -> None:
        executor = ParallelAgentExecutor(served.url, api_key=API_KEY)
        execution = await executor.submit(
            "Build it", plan=chain_plan(6, 4_000), config=ExecutorConfig()
        )
        events: list[EventRead] = []
        restarted = False
        async for event in executor.events(execution.id):
            events.append(event)
            if event.type == "step.succeeded" and not restarted:
                restarted = True
                # uvicorn re-raises SIGTERM after a clean shutdown
                assert await served.terminate() in (0, -signal.SIGTERM)
                await served.start()

        assert restarted
        assert [event.seq for event in events] == list(range(1, len(events) + 1))
        assert "execution.resumed" in [event.type for event in events]
        assert events[-1].data["status"] == "succeeded"

    async def test_an_unreachable_service_ends_the_iterator_after_the_timeout(
        self, served: ServiceProcess
    ) -> None:
        seen: list[EventRead] = []
        async with CuttableProxy(served.port) as proxy:
            executor = ParallelAgentExecutor(
                proxy.url, api_key=API_KEY, reconnect_timeout_s=0.5
            )
            execution = await executor.submit(
                "Build it", plan=chain_plan(3, 60_000), config=ExecutorConfig()
            )
            events = executor.events(execution.id)
            seen.append(await anext(events))
        # the proxy is gone: nothing listens on its port any more
        with pytest.raises(ServiceUnreachable, match="could not reconnect"):
            async with asyncio.timeout(30):
                async for event in events:
                    seen.append(event)
        async with httpx.AsyncClient(headers={"X-API-Key": API_KEY}) as client:
            await client.post(f"{served.url}/executions/{execution.id}/cancel")
        assert [event.seq for event in seen] == list(range(1, len(seen) + 1))
