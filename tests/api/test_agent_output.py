"""What agents return that a database or a reader could choke on."""

import asyncio

from tests.api.test_executions import all_events, runs_by_step, scripted, step
from tests.conftest import Service

TERMINAL = {"step.succeeded", "step.failed", "step.timed_out", "step.cancelled"}


async def assert_readable(service: Service, execution_id: str) -> None:
    for suffix in ("", "/plan", "/runs", "/events", "/state"):
        response = await service.client.get(f"/executions/{execution_id}{suffix}")
        assert response.status_code == 200, (suffix, response.text)


class TestAwkwardValues:
    async def test_non_finite_numbers_are_stored_as_null(
        self, service: Service
    ) -> None:
        raw = '{"output": {"n": NaN, "ok": 1}, "state": {"i": Infinity}}'
        body = scripted(step("odd", raw_result=raw), step("next", ["odd"]))
        execution = await service.run("x", **body)
        assert execution["status"] == "succeeded"
        runs = await runs_by_step(service, execution["id"])
        assert runs["odd"]["output"] == {"n": None, "ok": 1}
        assert runs["next"]["output"]["upstream"]["odd"] == {"n": None, "ok": 1}
        await assert_readable(service, execution["id"])

    async def test_lone_surrogates_become_replacement_characters(
        self, service: Service
    ) -> None:
        raw = '{"output": "half \\udbff pair", "state": {"k": "v\\ud800"}}'
        body = scripted(step("odd", raw_result=raw), step("next", ["odd"]))
        execution = await service.run("x", **body)
        assert execution["status"] == "succeeded"
        runs = await runs_by_step(service, execution["id"])
        assert runs["odd"]["output"] == "half \ufffd pair"
        state = (
            await service.client.get(f"/executions/{execution['id']}/state")
        ).json()
        assert state[0]["value"] == "v\ufffd"
        await assert_readable(service, execution["id"])


class TestStateLimits:
    async def test_a_state_key_over_200_characters_fails_the_step(
        self, service: Service
    ) -> None:
        body = scripted(step("wide", state={"k" * 201: 1}), fail_fast=False)
        execution = await service.run("x", **body)
        runs = await runs_by_step(service, execution["id"])
        assert runs["wide"]["status"] == "failed"
        assert "1 to 200 characters" in runs["wide"]["error"]
        await assert_readable(service, execution["id"])

    async def test_too_many_state_updates_fail_the_step(self, service: Service) -> None:
        limit = service.app.state.settings.max_state_updates_per_run
        updates = {f"key{i}": i for i in range(limit + 1)}
        execution = await service.run("x", **scripted(step("many", state=updates)))
        runs = await runs_by_step(service, execution["id"])
        assert runs["many"]["status"] == "failed"
        assert str(limit) in runs["many"]["error"]


class TestCancelWhileLogging:
    async def test_cancels_during_heavy_logging_leave_no_run_open(
        self, service: Service
    ) -> None:
        loud = scripted(
            step("loud", numbered_lines=3000), step("also", numbered_lines=3000)
        )
        for delay_s in (0.05, 0.2, 0.4, 0.8):
            created = await service.submit("x", **loud)
            await asyncio.sleep(delay_s)
            await service.client.post(f"/executions/{created['id']}/cancel")
            execution = await service.wait_finished(created["id"])
            runs = await runs_by_step(service, created["id"])
            assert all(run["status"] != "running" for run in runs.values())
            events = await all_events(service, created["id"])
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert events[-1]["type"] == "execution.finished", execution
            ended = [e["data"]["run_id"] for e in events if e["type"] in TERMINAL]
            assert sorted(ended) == sorted(run["id"] for run in runs.values())
        after = await service.run("Fix bug in node X")
        assert after["status"] == "succeeded"
