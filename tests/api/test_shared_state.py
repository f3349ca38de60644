"""Shared state through the service: merge rules, conflicts and writers."""

import asyncio
from pathlib import Path

import pytest

from tests.api.test_executions import all_events, scripted, step
from tests.conftest import Service


async def wait_for_step_end(service: Service, execution_id: str, step_id: str) -> None:
    async with asyncio.timeout(60):
        while True:
            events = await all_events(service, execution_id)
            if any(
                e["type"] == "step.succeeded" and e["step_id"] == step_id
                for e in events
            ):
                return
            await asyncio.sleep(0.05)


async def get_state(service: Service, execution_id: str) -> dict[str, dict]:
    response = await service.client.get(f"/executions/{execution_id}/state")
    assert response.status_code == 200, response.text
    return {entry["key"]: entry for entry in response.json()}


class TestAppendKeys:
    async def test_parallel_writes_to_an_append_key_are_all_kept_with_writers(
        self, service: Service
    ) -> None:
        body = scripted(
            step("explore-a", state={"findings": "a"}, sleep=0.2),
            step("explore-b", state={"findings": "b"}),
            step("explore-c", state={"findings": "c"}, sleep=0.4),
            step("summary", ["explore-a", "explore-b", "explore-c"]),
            state_merge={"findings": "append"},
            fail_fast=False,
        )

        execution = await service.run("Explore", **body)

        assert execution["status"] == "succeeded"
        entry = (await get_state(service, execution["id"]))["findings"]
        assert sorted(entry["value"]) == ["a", "b", "c"]
        assert entry["merge"] == "append"
        assert entry["version"] == 3
        writers = [writer["step_id"] for writer in entry["writers"]]
        assert writers == [f"explore-{item}" for item in entry["value"]]
        assert all(writer["attempt"] == 1 for writer in entry["writers"])
        events = await all_events(service, execution["id"])
        assert not [e for e in events if e["type"] == "state.conflict"]
        runs = (await service.client.get(f"/executions/{execution['id']}/runs")).json()
        summary = next(run for run in runs if run["step_id"] == "summary")
        assert sorted(summary["output"]["state_seen"]["findings"]) == ["a", "b", "c"]


class TestReplaceConflicts:
    @pytest.mark.parametrize("first_to_finish", ["api", "ui"])
    async def test_the_later_step_in_the_plan_wins_and_the_conflict_is_an_event(
        self, service: Service, first_to_finish: str, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        second = {"api": "ui", "ui": "api"}[first_to_finish]
        waits = {first_to_finish: {}, second: {"wait_for_file": str(gate)}}
        body = scripted(
            step("api", state={"port": "api"}, **waits["api"]),
            step("ui", state={"port": "ui"}, **waits["ui"]),
        )

        created = await service.submit("Build", **body)
        await wait_for_step_end(service, created["id"], first_to_finish)
        gate.touch()
        execution = await service.wait_finished(created["id"])

        assert execution["status"] == "succeeded"
        entry = (await get_state(service, execution["id"]))["port"]
        assert entry["value"] == "ui"
        assert entry["updated_by_step"] == "ui"
        assert entry["updated_by_attempt"] == 1
        events = await all_events(service, execution["id"])
        [conflict] = [e for e in events if e["type"] == "state.conflict"]
        assert conflict["data"]["key"] == "port"
        assert conflict["data"]["kept_step"] == "ui"
        assert conflict["data"]["discarded_step"] == "api"
        assert conflict["data"]["seen_version"] == 0
        assert conflict["step_id"] != first_to_finish
        assert entry["version"] == (2 if first_to_finish == "api" else 1)

    async def test_a_step_that_saw_the_last_write_replaces_it_without_conflict(
        self, service: Service
    ) -> None:
        body = scripted(
            step("ui", state={"port": "ui"}),
            step("api", ["ui"], state={"port": "api"}),
        )

        execution = await service.run("Build", **body)

        entry = (await get_state(service, execution["id"]))["port"]
        assert (entry["value"], entry["version"]) == ("api", 2)
        assert entry["writers"] is None
        events = await all_events(service, execution["id"])
        assert not [e for e in events if e["type"] == "state.conflict"]
        updates = [e["data"] for e in events if e["type"] == "state.updated"]
        assert updates == [
            {"key": "port", "version": 1, "merge": "replace"},
            {"key": "port", "version": 2, "merge": "replace"},
        ]


class TestMergeRulesAreChecked:
    async def test_null_rules_mean_none(self, service: Service) -> None:
        response = await service.client.post(
            "/executions",
            json={"task": "Build it", "config": {"dry_run": True, "state_merge": None}},
        )

        assert response.status_code == 201, response.text
        assert response.json()["config"]["state_merge"] == {}

    @pytest.mark.parametrize(
        "state_merge",
        [{"notes": "prepend"}, {"": "append"}, {"x" * 201: "append"}, ["append"]],
    )
    async def test_a_bad_rule_is_a_422_that_names_the_field(
        self, service: Service, state_merge: object
    ) -> None:
        response = await service.client.post(
            "/executions",
            json={"task": "Build it", "config": {"state_merge": state_merge}},
        )

        assert response.status_code == 422
        assert "state_merge" in response.text
        listed = (await service.client.get("/executions")).json()
        assert listed["total"] == 0
