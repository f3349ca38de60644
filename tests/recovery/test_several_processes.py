"""Two service processes on one PostgreSQL database share the work and the news."""

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.conftest import _truncate
from tests.recovery.conftest import Processes, plan, serve, step
from tests.runners.processes import read_pid, wait_until_gone

pytestmark = pytest.mark.postgres

QUICK_LEASES = {"PX_LEASE_SECONDS": "2", "PX_HEARTBEAT_SECONDS": "0.5"}
# for tests where nobody dies: a busy machine must not pass for a dead owner
STEADY_LEASES = {"PX_LEASE_SECONDS": "30", "PX_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
async def pair(postgres_url: str, tmp_path: Path) -> AsyncIterator[Processes]:
    await _truncate(postgres_url)
    async for make in serve(postgres_url, tmp_path, QUICK_LEASES):
        yield make


@pytest.fixture
async def steady_pair(postgres_url: str, tmp_path: Path) -> AsyncIterator[Processes]:
    await _truncate(postgres_url)
    async for make in serve(postgres_url, tmp_path, STEADY_LEASES):
        yield make


class TestLiveEventsAcrossProcesses:
    async def test_a_watcher_of_one_process_follows_an_execution_run_by_another(
        self, pair: Processes
    ) -> None:
        # the watcher's process re-reads the table only every 60 s: what it gets
        # before that came through LISTEN/NOTIFY
        runner = await pair().start()
        watcher = await pair(PX_STREAM_POLL_SECONDS="60").start()
        body = plan(
            step("talk", numbered_lines=30),
            step("wait", ["talk"], sleep=3),
            step("talk-more", ["wait"], numbered_lines=30),
        )
        created = await runner.submit(body)
        url = f"{watcher.ws_url}/executions/{created['id']}/stream"
        received, statuses = [], []
        async with connect(url) as websocket:
            async for message in websocket:
                event = json.loads(message)
                received.append(event)
                if event["type"] == "step.log" and event["step_id"] == "talk-more":
                    pass
                elif event["type"] == "step.started" and event["step_id"] == "wait":
                    execution = await watcher.get(f"/executions/{created['id']}")
                    statuses.append(execution["status"])
            code = websocket.close_code
        assert code == 1000
        assert statuses == ["running"], "the event came only after the end"
        stored = await runner.events(created["id"])
        assert [e["seq"] for e in received] == list(range(1, len(stored) + 1))
        assert [e["type"] for e in received] == [e["type"] for e in stored]
        logs = [e for e in received if e["type"] == "step.log"]
        assert len(logs) == 60


class TestSharingTheWork:
    async def test_executions_sent_to_either_process_each_run_every_step_once(
        self, steady_pair: Processes
    ) -> None:
        first, second = await steady_pair().start(), await steady_pair().start()
        body = plan(step("a", numbered_lines=5), step("b"), step("c", ["a", "b"]))
        created = await asyncio.gather(
            *(process.submit(body) for process in [first, second] * 5)
        )
        for execution in created:
            finished = await second.wait_finished(execution["id"])
            assert finished["status"] == "succeeded"
            runs = await first.get(f"/executions/{execution['id']}/runs")
            assert sorted((r["step_id"], r["attempt"]) for r in runs) == [
                ("a", 1),
                ("b", 1),
                ("c", 1),
            ]

    async def test_a_cancel_sent_to_the_other_process_stops_the_execution(
        self, steady_pair: Processes, tmp_path: Path
    ) -> None:
        runner, other = await steady_pair().start(), await steady_pair().start()
        agent_pid = tmp_path / "agent.pid"
        created = await runner.submit(
            plan(step("slow", sleep=120, pid_file=str(agent_pid)))
        )
        pid = await read_pid(agent_pid)
        response = await other.post(f"/executions/{created['id']}/cancel")
        assert response.status_code == 200, response.text
        execution = await other.wait_finished(created["id"])
        assert execution["status"] == "cancelled"
        assert await wait_until_gone(pid)
        runs = await runner.get(f"/executions/{created['id']}/runs")
        assert [r["status"] for r in runs] == ["cancelled"]


class TestTakingOver:
    async def test_the_other_process_takes_over_when_the_owner_is_killed(
        self, pair: Processes, tmp_path: Path
    ) -> None:
        owner, other = await pair().start(), await pair().start()
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("first"),
            step(
                "slow",
                ["first"],
                on_attempt={"1": {"sleep": 120, "pid_file": str(agent_pid)}},
            ),
        )
        created = await owner.submit(body)
        pid = await read_pid(agent_pid)
        owner.kill()
        assert await wait_until_gone(pid)

        execution = await other.wait_finished(created["id"])
        assert execution["status"] == "succeeded"
        runs = await other.get(f"/executions/{created['id']}/runs")
        assert [(r["step_id"], r["attempt"], r["status"]) for r in runs] == [
            ("first", 1, "succeeded"),
            ("slow", 1, "interrupted"),
            ("slow", 2, "succeeded"),
        ]

    async def test_an_owner_that_froze_past_its_lease_loses_it_and_writes_nothing(
        self, pair: Processes, tmp_path: Path
    ) -> None:
        owner, other = await pair().start(), await pair().start()
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("slow", on_attempt={"1": {"sleep": 4, "pid_file": str(agent_pid)}})
        )
        created = await owner.submit(body)
        await read_pid(agent_pid)
        owner.child.send_signal(signal.SIGSTOP)  # alive, but silent: the lease runs out
        try:
            resumed = await other.wait_for_event(created["id"], "execution.resumed")
            assert resumed["data"]["interrupted_runs"]
        finally:
            owner.child.send_signal(signal.SIGCONT)
        execution = await other.wait_finished(created["id"])
        assert execution["status"] == "succeeded"
        await asyncio.sleep(5)  # the woken owner's agent ends and tries to report
        runs = await other.get(f"/executions/{created['id']}/runs")
        assert [(r["attempt"], r["status"]) for r in runs] == [
            (1, "interrupted"),
            (2, "succeeded"),
        ]
        assert "execution.lease_lost" in owner.log
        events = await other.events(created["id"])
        assert events[-1]["type"] == "execution.finished"

    async def test_a_cancel_sent_while_the_owner_is_frozen_holds_after_take_over(
        self, pair: Processes, tmp_path: Path
    ) -> None:
        owner, other = await pair().start(), await pair().start()
        agent_pid = tmp_path / "agent.pid"
        created = await owner.submit(
            plan(step("slow", sleep=120, pid_file=str(agent_pid)), step("next"))
        )
        pid = await read_pid(agent_pid)
        owner.child.send_signal(signal.SIGSTOP)
        try:
            response = await other.post(f"/executions/{created['id']}/cancel")
            assert response.status_code == 200, response.text
            execution = await other.wait_finished(created["id"])
        finally:
            owner.child.send_signal(signal.SIGCONT)
        assert execution["status"] == "cancelled"
        assert execution["reason"] == "cancelled by request"
        assert await wait_until_gone(pid)  # the woken owner stops its agent

    async def test_a_cancel_through_the_other_process_after_the_owner_died(
        self, pair: Processes, tmp_path: Path
    ) -> None:
        slow_beat = {"PX_LEASE_SECONDS": "20", "PX_HEARTBEAT_SECONDS": "5"}
        owner, other = await pair(**slow_beat).start(), await pair(**slow_beat).start()
        agent_pid = tmp_path / "agent.pid"
        created = await owner.submit(
            plan(
                step("slow", sleep=120, pid_file=str(agent_pid)),
                step("next", ["slow"]),
            )
        )
        pid = await read_pid(agent_pid)
        owner.kill()
        assert await wait_until_gone(pid)

        response = await other.post(f"/executions/{created['id']}/cancel")
        assert response.status_code == 200
        execution = await other.wait_finished(created["id"])
        assert execution["status"] == "cancelled"
        assert execution["result"]["steps_by_status"] == {
            "cancelled": 1,
            "skipped": 1,
        }
        events = await other.events(created["id"])
        ended = next(e for e in events if e["type"] == "step.cancelled")
        assert ended["data"]["attempt"] == 1
        assert ended["data"]["outcome"] == "interrupted"
        types = [e["type"] for e in events]
        assert "step.retrying" not in types
        assert types.index("execution.resumed") < types.index("step.cancelled")
