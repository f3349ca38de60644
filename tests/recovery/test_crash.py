"""A real service process killed with SIGKILL, started again: nothing is lost."""

import time
from datetime import datetime
from pathlib import Path

from app.execution.loop import attempt_id
from tests.recovery.conftest import Processes, plan, step
from tests.runners.processes import read_pid, wait_until_gone
from tests.serving import ServiceProcess


async def killed_and_restarted(
    processes: Processes, body: dict, agent_pid: Path
) -> tuple[dict, ServiceProcess]:
    """Submit, SIGKILL the service once the agent runs, start a new process."""
    service = await processes().start()
    created = await service.submit(body)
    pid = await read_pid(agent_pid)
    service.kill()
    assert await wait_until_gone(pid), "the agent outlived the killed service"
    return created, await processes().start()


class TestSigkill:
    async def test_a_killed_service_resumes_its_execution_at_the_next_start(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        agent_pid, log = tmp_path / "agent.pid", tmp_path / "attempts.log"
        body = plan(
            step("first"),
            step(
                "slow",
                ["first"],
                attempt_log=str(log),
                on_attempt={"1": {"sleep": 120, "pid_file": str(agent_pid)}},
            ),
            step("last", ["slow"]),
        )
        service = await processes().start()
        created = await service.submit(body)
        await service.wait_for_event(created["id"], "step.started", "slow")
        pid = await read_pid(agent_pid)

        service.kill()
        assert await wait_until_gone(pid), "the agent outlived the killed service"

        restarted = time.monotonic()
        again = await processes().start()
        resumed = await again.wait_for_event(created["id"], "execution.resumed")
        execution = await again.wait_finished(created["id"])
        recovery_s = time.monotonic() - restarted

        assert execution["status"] == "succeeded", execution
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert [(r["step_id"], r["attempt"], r["status"]) for r in runs] == [
            ("first", 1, "succeeded"),
            ("slow", 1, "interrupted"),
            ("slow", 2, "succeeded"),
            ("last", 1, "succeeded"),
        ]
        assert resumed["data"]["interrupted_runs"] == [runs[1]["id"]]
        assert resumed["data"]["succeeded_steps"] == ["first"]
        # each attempt got its own stable id, the one the runs table shows
        lines = log.read_text().split()
        assert lines == ["1", runs[1]["id"], "2", runs[2]["id"]]
        assert runs[2]["id"] == attempt_id(created["id"], "slow", 2)

        events = await again.events(created["id"])
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        interrupted = [e for e in events if e["data"].get("run_id") == runs[1]["id"]]
        assert [e["type"] for e in interrupted] == ["step.started", "step.retrying"]
        assert interrupted[1]["data"]["outcome"] == "interrupted"
        assert events[-1]["type"] == "execution.finished"
        assert recovery_s < 60  # a bound against hanging, not a speed claim

    async def test_an_interrupted_step_without_attempts_left_fails_the_execution(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("slow", sleep=120, pid_file=str(agent_pid)),
            retry={"max_attempts": 1},
        )
        created, again = await killed_and_restarted(processes, body, agent_pid)
        execution = await again.wait_finished(created["id"])
        assert execution["status"] == "failed"
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert [(r["attempt"], r["status"]) for r in runs] == [(1, "interrupted")]
        events = await again.events(created["id"])
        failed = next(e for e in events if e["type"] == "step.failed")
        assert failed["data"]["outcome"] == "interrupted"
        assert failed["data"]["run_id"] == runs[0]["id"]

    async def test_a_step_still_waiting_at_the_kill_runs_after_the_restart(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        # max_parallel 1 keeps the second step waiting when the kill comes
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("slow", on_attempt={"1": {"sleep": 120, "pid_file": str(agent_pid)}}),
            step("waiting"),
            max_parallel=1,
        )
        created, again = await killed_and_restarted(processes, body, agent_pid)
        execution = await again.wait_finished(created["id"])
        assert execution["status"] == "succeeded"
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert sorted((r["step_id"], r["attempt"]) for r in runs) == [
            ("slow", 1),
            ("slow", 2),
            ("waiting", 1),
        ]


class TestResumeKeepsStateAndUsage:
    async def test_shared_state_tokens_and_the_budget_carry_over_a_kill(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        agent_pid = tmp_path / "agent.pid"
        used = {"input_tokens": 300, "output_tokens": 100}
        body = plan(
            step("first", state={"notes": "first"}, usage=used),
            step(
                "slow",
                ["first"],
                state={"notes": "slow"},
                usage=used,
                on_attempt={"1": {"sleep": 120, "pid_file": str(agent_pid)}},
            ),
            step("last", ["slow"], usage=used),
            state_merge={"notes": "append"},
            budget={"max_tokens": 700},
            fail_fast=False,
        )

        created, again = await killed_and_restarted(processes, body, agent_pid)
        execution = await again.wait_finished(created["id"])

        # 400 tokens before the kill and 400 after: over 700 after "slow"
        assert execution["status"] == "partial", execution
        assert execution["reason"] == "budget exceeded: 800 tokens used of 700"
        assert execution["result"]["total_tokens"] == 800
        [notes] = await again.get(f"/executions/{created['id']}/state")
        assert notes["value"] == ["first", "slow"]
        assert notes["version"] == 2
        assert [w["step_id"] for w in notes["writers"]] == ["first", "slow"]
        assert notes["writers"][1]["attempt"] == 2


class TestResumeKeepsItsWord:
    async def test_a_retry_wait_cut_by_a_kill_is_waited_out_after_the_restart(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        body = plan(
            step("flaky", on_attempt={"1": {"exit": 1}}),
            retry={"retry_on": ["failed"], "backoff_s": 3.0, "jitter": 0.0},
        )
        service = await processes().start()
        created = await service.submit(body)
        retrying = await service.wait_for_event(created["id"], "step.retrying")
        service.kill()

        again = await processes().start()
        execution = await again.wait_finished(created["id"])
        assert execution["status"] == "succeeded"
        events = await again.events(created["id"])
        second = next(
            e
            for e in events
            if e["type"] == "step.started" and e["data"]["attempt"] == 2
        )
        waited = datetime.fromisoformat(second["created_at"]) - datetime.fromisoformat(
            retrying["created_at"]
        )
        assert retrying["data"]["delay_ms"] == 3000
        # the announced wait, not less (a timer may fire a hair early)
        assert waited.total_seconds() >= 2.95

    async def test_under_fail_fast_the_steps_below_a_failed_resume_are_skipped(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("slow", sleep=120, pid_file=str(agent_pid)),
            step("below", ["slow"]),
            retry={"max_attempts": 1},
        )
        created, again = await killed_and_restarted(processes, body, agent_pid)
        execution = await again.wait_finished(created["id"])
        assert execution["status"] == "failed"
        assert execution["result"]["steps_by_status"] == {"failed": 1, "skipped": 1}
        assert execution["result"]["runs_by_status"] == {"interrupted": 1}
        events = await again.events(created["id"])
        types = [e["type"] for e in events]
        assert types.index("execution.resumed") < types.index("step.failed")
        assert "step.skipped" in types

    async def test_a_cancel_the_owner_had_not_finished_holds_after_a_kill(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        # the agent ignores SIGTERM, so the owner is still stopping it when killed
        agent_pid = tmp_path / "agent.pid"
        slow_to_stop = {"PX_KILL_GRACE_SECONDS": "3", "PX_CANCEL_WAIT_SECONDS": "0.5"}
        body = plan(
            step("stubborn", sleep=120, ignore_sigterm=True, pid_file=str(agent_pid)),
            step("below", ["stubborn"]),
            fail_fast=False,
        )
        service = await processes(**slow_to_stop).start()
        created = await service.submit(body)
        pid = await read_pid(agent_pid)
        answer = await service.post(f"/executions/{created['id']}/cancel")
        assert answer.status_code == 200
        assert answer.json()["status"] == "running"  # still stopping
        service.kill()
        assert await wait_until_gone(pid)

        again = await processes().start()
        execution = await again.wait_finished(created["id"])
        assert execution["status"] == "cancelled"
        assert execution["reason"] == "cancelled by request"
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert [(r["step_id"], r["status"]) for r in runs] == [
            ("stubborn", "interrupted")
        ]
        assert execution["result"]["steps_by_status"] == {
            "cancelled": 1,
            "skipped": 1,
        }
