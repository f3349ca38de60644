import asyncio
import json
from datetime import datetime
from typing import Any

from tests.conftest import Service

IMPLEMENT = "Implement login feature with UI, backend, and tests"


def step(step_id: str, deps: list[str] | None = None, **script: Any) -> dict:
    """An explicit plan step for the scripted test agent."""
    return {
        "id": step_id,
        "agent": "builder",
        "depends_on": deps or [],
        "instructions": json.dumps(script),
    }


def scripted(*steps: dict, **config: Any) -> dict:
    return {"plan": {"steps": list(steps)}, "config": {"profile": "scripted", **config}}


async def runs_by_step(service: Service, execution_id: str) -> dict[str, dict]:
    response = await service.client.get(f"/executions/{execution_id}/runs")
    return {run["step_id"]: run for run in response.json()}


async def all_events(service: Service, execution_id: str) -> list[dict]:
    events: list[dict] = []
    while True:
        after_seq = events[-1]["seq"] if events else 0
        response = await service.client.get(
            f"/executions/{execution_id}/events", params={"after_seq": after_seq}
        )
        page = response.json()["items"]
        if not page:
            return events
        events += page


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def max_overlap(runs: list[dict]) -> int:
    edges = sorted(
        [(at(r["started_at"]), 1) for r in runs]
        + [(at(r["finished_at"]), -1) for r in runs]
    )
    current = peak = 0
    for _, change in edges:
        current += change
        peak = max(peak, current)
    return peak


class TestDryRun:
    async def test_a_dry_run_returns_the_plan_and_runs_nothing(
        self, service: Service
    ) -> None:
        response = await service.client.post(
            "/executions", json={"task": IMPLEMENT, "config": {"dry_run": True}}
        )
        assert response.status_code == 201
        execution = response.json()
        assert execution["status"] == "planned"
        plan = execution["plan"]
        assert plan["phases"][0] == [
            "explore-domain",
            "explore-tests",
            "explore-patterns",
        ]
        assert "Phase 1" in plan["description"]
        assert plan["estimated_savings_ms"] == execution["estimated_savings_ms"] > 0
        assert await runs_by_step(service, execution["id"]) == {}

    async def test_the_stored_plan_reads_back_the_same(self, service: Service) -> None:
        created = await service.submit(IMPLEMENT, config={"dry_run": True})
        stored = (await service.client.get(f"/executions/{created['id']}/plan")).json()
        assert stored["steps"] == created["plan"]["steps"]
        assert {s["status"] for s in stored["steps"]} == {"pending"}

    async def test_a_dry_run_ends_its_event_log_with_a_final_event(
        self, service: Service
    ) -> None:
        created = await service.submit(IMPLEMENT, config={"dry_run": True})
        events = await all_events(service, created["id"])
        assert [e["type"] for e in events] == [
            "execution.accepted",
            "execution.planned",
            "execution.finished",
        ]


class TestRun:
    async def test_a_simulated_run_succeeds_with_honest_figures(
        self, service: Service
    ) -> None:
        execution = await service.run(IMPLEMENT)
        assert execution["status"] == "succeeded"
        result = execution["result"]
        plan = (await service.client.get(f"/executions/{execution['id']}/plan")).json()
        assert result["parallel_groups_executed"] == len(plan["phases"])
        assert result["steps_by_status"] == {"succeeded": len(plan["steps"])}
        assert result["runs_by_status"] == {"succeeded": len(plan["steps"])}
        assert result["measured_savings_ms"] == (
            result["agent_time_ms"] - result["total_time_ms"]
        )
        assert result["critical_path_taken"][-1] == plan["phases"][-1][-1]
        assert result["estimated_savings_ms"] == plan["estimated_savings_ms"]

    async def test_events_are_numbered_from_one_without_gaps(
        self, service: Service
    ) -> None:
        execution = await service.run(IMPLEMENT)
        events = await all_events(service, execution["id"])
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["type"] == "execution.finished"
        assert execution["last_seq"] == len(events)
        started = [e["step_id"] for e in events if e["type"] == "step.started"]
        succeeded = [e["step_id"] for e in events if e["type"] == "step.succeeded"]
        assert sorted(started) == sorted(succeeded)

    async def test_phases_are_not_barriers(self, service: Service) -> None:
        body = scripted(
            step("a1", sleep=1.0),
            step("a2", ["a1"], sleep=0.1),
            step("b1", sleep=0.1),
            step("b2", ["b1"], sleep=1.0),
        )
        execution = await service.run("two branches", **body)
        runs = await runs_by_step(service, execution["id"])
        assert execution["status"] == "succeeded"
        assert at(runs["b2"]["started_at"]) < at(runs["a1"]["finished_at"])

    async def test_each_step_receives_its_upstream_outputs_and_shared_state(
        self, service: Service
    ) -> None:
        body = scripted(
            step("design", state={"schema": "users(id, email)"}),
            step("build", ["design"]),
        )
        execution = await service.run("Build it", **body)
        runs = await runs_by_step(service, execution["id"])
        output = runs["build"]["output"]
        assert output["upstream"]["design"]["step"] == "design"
        assert output["state_seen"] == {"schema": "users(id, email)"}
        assert output["env_step"] == "build"
        events = await all_events(service, execution["id"])
        updates = [e for e in events if e["type"] == "state.updated"]
        assert [(u["data"]["key"], u["data"]["version"]) for u in updates] == [
            ("schema", 1)
        ]

    async def test_stdout_lines_become_log_events(self, service: Service) -> None:
        body = scripted(step("talk", lines=["reading the code", "writing tests"]))
        execution = await service.run("Talk", **body)
        events = await all_events(service, execution["id"])
        logs = [e["data"]["line"] for e in events if e["type"] == "step.log"]
        assert logs == ["reading the code", "writing tests"]


class TestLimits:
    async def test_parallel_false_runs_one_step_at_a_time(
        self, service: Service
    ) -> None:
        steps = [step(f"s{i}", sleep=0.2) for i in range(3)]
        execution = await service.run("x", **scripted(*steps, parallel=False))
        runs = await runs_by_step(service, execution["id"])
        assert max_overlap(list(runs.values())) == 1

    async def test_max_parallel_caps_steps_at_once(self, service: Service) -> None:
        steps = [step(f"s{i}", sleep=0.3) for i in range(5)]
        execution = await service.run("x", **scripted(*steps, max_parallel=2))
        runs = await runs_by_step(service, execution["id"])
        assert max_overlap(list(runs.values())) == 2

    async def test_the_longest_remaining_path_starts_first_when_capped(
        self, service: Service
    ) -> None:
        body = scripted(
            step("short", sleep=0.05),
            step("head", sleep=0.05),
            step("tail", ["head"], sleep=0.05),
            parallel=False,
        )
        execution = await service.run("x", **body)
        runs = await runs_by_step(service, execution["id"])
        order = sorted(runs, key=lambda s: at(runs[s]["started_at"]))
        assert order[0] == "head"


class TestFailure:
    async def test_fail_fast_cancels_running_steps_and_skips_the_rest(
        self, service: Service
    ) -> None:
        body = scripted(
            step("broken", exit=3, stderr="cannot compile"),
            step("slow", sleep=30),
            step("after", ["broken"]),
            fail_fast=True,
        )
        execution = await service.run("x", **body)
        assert execution["status"] == "failed"
        assert "broken" in execution["reason"]
        runs = await runs_by_step(service, execution["id"])
        assert runs["broken"]["status"] == "failed"
        assert runs["broken"]["details"]["exit_code"] == 3
        assert "cannot compile" in runs["broken"]["details"]["stderr_tail"]
        assert runs["slow"]["status"] == "cancelled"
        assert "after" not in runs
        plan = (await service.client.get(f"/executions/{execution['id']}/plan")).json()
        statuses = {s["id"]: s["status"] for s in plan["steps"]}
        assert statuses == {"broken": "failed", "slow": "cancelled", "after": "skipped"}

    async def test_without_fail_fast_independent_branches_go_on(
        self, service: Service
    ) -> None:
        body = scripted(
            step("broken", exit=1),
            step("after", ["broken"]),
            step("later", ["after"]),
            step("fine", sleep=0.2),
            fail_fast=False,
        )
        execution = await service.run("x", **body)
        assert execution["status"] == "partial"
        assert execution["result"]["steps_by_status"] == {
            "failed": 1,
            "skipped": 2,
            "succeeded": 1,
        }
        events = await all_events(service, execution["id"])
        skipped = [e["step_id"] for e in events if e["type"] == "step.skipped"]
        assert skipped == ["after", "later"]

    async def test_an_execution_where_nothing_succeeded_has_failed(
        self, service: Service
    ) -> None:
        execution = await service.run(
            "x", **scripted(step("a", exit=1), fail_fast=False)
        )
        assert execution["status"] == "failed"

    async def test_a_step_past_its_timeout_is_timed_out(self, service: Service) -> None:
        slow = step("slow", sleep=30) | {"timeout_s": 0.5}
        execution = await service.run(
            "x", **scripted(slow, step("ok"), fail_fast=False)
        )
        runs = await runs_by_step(service, execution["id"])
        assert runs["slow"]["status"] == "timed_out"
        assert runs["ok"]["status"] == "succeeded"
        assert execution["status"] == "partial"

    async def test_an_execution_past_its_timeout_is_timed_out(
        self, service: Service
    ) -> None:
        body = scripted(step("slow", sleep=30), execution_timeout_s=0.5)
        execution = await service.run("x", **body)
        assert execution["status"] == "timed_out"
        runs = await runs_by_step(service, execution["id"])
        assert runs["slow"]["status"] == "cancelled"

    async def test_every_run_reaches_exactly_one_terminal_event(
        self, service: Service
    ) -> None:
        body = scripted(
            step("broken", exit=1),
            *[step(f"s{i}", sleep=0.2) for i in range(4)],
            step("tail", ["s0", "broken"]),
            max_parallel=3,
        )
        execution = await service.run("x", **body)
        events = await all_events(service, execution["id"])
        terminal = {"step.succeeded", "step.failed", "step.timed_out", "step.cancelled"}
        ended = [e["data"]["run_id"] for e in events if e["type"] in terminal]
        runs = await runs_by_step(service, execution["id"])
        assert sorted(ended) == sorted(r["id"] for r in runs.values())
        assert all(r["status"] != "running" for r in runs.values())


class TestCancel:
    async def test_cancel_ends_running_steps_promptly(self, service: Service) -> None:
        body = scripted(step("slow", sleep=60), step("next", ["slow"]))
        created = await service.submit("x", **body)
        await _wait_for_event(service, created["id"], "step.started")
        response = await service.client.post(f"/executions/{created['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        runs = await runs_by_step(service, created["id"])
        assert runs["slow"]["status"] == "cancelled"

    async def test_cancelling_a_finished_execution_is_a_conflict(
        self, service: Service
    ) -> None:
        execution = await service.run("x", **scripted(step("quick")))
        response = await service.client.post(f"/executions/{execution['id']}/cancel")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "execution_conflict"

    async def test_cancelling_a_dry_run_is_a_conflict(self, service: Service) -> None:
        created = await service.submit(IMPLEMENT, config={"dry_run": True})
        response = await service.client.post(f"/executions/{created['id']}/cancel")
        assert response.status_code == 409


async def _wait_for_event(service: Service, execution_id: str, type_: str) -> None:
    import asyncio

    for _ in range(500):
        if any(e["type"] == type_ for e in await all_events(service, execution_id)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {type_} event")


class TestTextPreview:
    async def test_a_dry_run_can_answer_as_a_readable_listing(
        self, service: Service
    ) -> None:
        response = await service.client.post(
            "/executions",
            json={"task": IMPLEMENT, "config": {"dry_run": True}},
            headers={"Accept": "text/plain"},
        )
        assert response.status_code == 201
        assert response.headers["content-type"].startswith("text/plain")
        assert "planned" in response.text.splitlines()[0]
        assert "Phase 1 (3 steps in parallel)" in response.text
        assert response.text.endswith("\n") and not response.text.endswith("\n\n")


class TestCancelRace:
    async def test_a_cancel_racing_the_end_is_either_taken_or_a_conflict(
        self, service: Service
    ) -> None:
        body = {
            "plan": {"steps": [{"id": "a", "agent": "builder", "estimate_ms": 5000}]}
        }
        outcomes: set[int] = set()
        delay_s = 0.0
        while outcomes != {200, 409} and delay_s < 5:  # the step takes about 50 ms
            created = await service.submit("x", **body)
            await asyncio.sleep(delay_s)
            response = await service.client.post(f"/executions/{created['id']}/cancel")
            execution = await service.wait_finished(created["id"])
            steps = execution["result"]["steps_by_status"]
            if response.status_code == 200:
                assert execution["status"] == "cancelled"
                assert steps != {"succeeded": 1}
            else:
                assert response.status_code == 409
                assert execution["status"] == "succeeded"
            outcomes.add(response.status_code)
            delay_s = delay_s * 1.3 + 0.004
        assert outcomes == {200, 409}


class TestSharedState:
    async def test_the_state_shows_each_value_its_version_and_its_writer(
        self, service: Service
    ) -> None:
        body = scripted(
            step("first", state={"api": "/v1/login", "owner": "first"}),
            step("second", ["first"], state={"api": "/v2/login"}),
        )
        execution = await service.run("x", **body)
        runs = await runs_by_step(service, execution["id"])
        state = (
            await service.client.get(f"/executions/{execution['id']}/state")
        ).json()
        by_key = {entry["key"]: entry for entry in state}
        assert by_key["api"]["value"] == "/v2/login"
        assert by_key["api"]["version"] == 2
        assert by_key["api"]["updated_by_step"] == "second"
        assert by_key["api"]["updated_by_run"] == runs["second"]["id"]
        assert by_key["owner"]["version"] == 1
