"""Retries: each attempt its own run, with its own events and a stable id."""

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.execution.loop import attempt_id
from app.planning.models import RetryPolicy
from tests.api.test_executions import all_events, scripted, step
from tests.conftest import Service

NO_WAIT = {"backoff_s": 0.0}


async def runs_of(service: Service, execution_id: str) -> list[dict]:
    response = await service.client.get(f"/executions/{execution_id}/runs")
    return response.json()


class TestRetryPolicy:
    def test_the_wait_grows_by_the_multiplier_up_to_the_cap(self) -> None:
        policy = RetryPolicy(backoff_s=1.0, backoff_multiplier=3.0, backoff_max_s=5.0)
        assert [policy.delay_s(n, 0.0) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]

    def test_jitter_shortens_a_wait_by_up_to_its_share(self) -> None:
        policy = RetryPolicy(backoff_s=2.0, jitter=0.5)
        assert policy.delay_s(1, 0.0) == 2.0
        assert policy.delay_s(1, 0.999) == pytest.approx(1.001)
        assert RetryPolicy(backoff_s=2.0, jitter=0.0).delay_s(1, 0.999) == 2.0

    def test_only_the_listed_outcomes_are_retried_and_only_while_attempts_last(
        self,
    ) -> None:
        policy = RetryPolicy(max_attempts=2, retry_on=["failed"])
        assert policy.allows("failed", 1)
        assert not policy.allows("failed", 2)
        assert not policy.allows("timed_out", 1)
        assert not policy.allows("cancelled", 1)

    def test_a_cancel_cannot_be_made_retryable(self) -> None:
        with pytest.raises(ValidationError):
            RetryPolicy(retry_on=["cancelled"])  # type: ignore[list-item]


class TestRetries:
    async def test_a_failed_attempt_is_run_again_with_its_own_run_and_events(
        self, service: Service, tmp_path: Path
    ) -> None:
        log = tmp_path / "attempts.log"
        flaky = step("flaky", attempt_log=str(log), on_attempt={"1": {"exit": 3}})
        body = scripted(
            flaky, retry={"max_attempts": 3, "retry_on": ["failed"], **NO_WAIT}
        )
        execution = await service.run("x", **body)
        assert execution["status"] == "succeeded"
        assert execution["result"]["runs_by_status"] == {"failed": 1, "succeeded": 1}

        runs = await runs_of(service, execution["id"])
        assert [(r["attempt"], r["status"]) for r in runs] == [
            (1, "failed"),
            (2, "succeeded"),
        ]
        assert [r["id"] for r in runs] == [
            attempt_id(execution["id"], "flaky", n) for n in (1, 2)
        ]
        assert log.read_text().split() == ["1", runs[0]["id"], "2", runs[1]["id"]]

        events = await all_events(service, execution["id"])
        of_first = [e for e in events if e["data"].get("run_id") == runs[0]["id"]]
        assert [e["type"] for e in of_first] == ["step.started", "step.retrying"]
        assert of_first[1]["data"]["outcome"] == "failed"
        assert of_first[1]["data"]["next_attempt"] == 2
        assert "exited with code 3" in of_first[1]["data"]["error"]

    async def test_by_default_a_failure_is_not_retried(self, service: Service) -> None:
        execution = await service.run("x", **scripted(step("bad", exit=1)))
        assert execution["status"] == "failed"
        runs = await runs_of(service, execution["id"])
        assert [(r["attempt"], r["status"]) for r in runs] == [(1, "failed")]

    async def test_when_attempts_run_out_the_step_fails_with_the_last_error(
        self, service: Service
    ) -> None:
        body = scripted(
            step("bad", exit=4),
            retry={"max_attempts": 3, "retry_on": ["failed"], **NO_WAIT},
        )
        execution = await service.run("x", **body)
        assert execution["status"] == "failed"
        runs = await runs_of(service, execution["id"])
        assert [r["status"] for r in runs] == ["failed"] * 3
        events = await all_events(service, execution["id"])
        ends = [e["type"] for e in events if e["step_id"] == "bad"]
        assert ends.count("step.retrying") == 2
        assert ends[-1] == "step.failed"

    async def test_a_timeout_is_retried_when_the_policy_says_so(
        self, service: Service
    ) -> None:
        slow_once = step("slow", on_attempt={"1": {"sleep": 30}})
        slow_once["timeout_s"] = 2.0
        slow_once["retry"] = {"max_attempts": 2, "retry_on": ["timed_out"], **NO_WAIT}
        execution = await service.run("x", **scripted(slow_once))
        assert execution["status"] == "succeeded"
        runs = await runs_of(service, execution["id"])
        assert [r["status"] for r in runs] == ["timed_out", "succeeded"]

    async def test_a_step_policy_overrides_the_execution_default(
        self, service: Service
    ) -> None:
        once = step("once", on_attempt={"1": {"exit": 1}})
        once["retry"] = {"max_attempts": 1}
        body = scripted(
            once, retry={"max_attempts": 3, "retry_on": ["failed"], **NO_WAIT}
        )
        execution = await service.run("x", **body)
        assert execution["status"] == "failed"
        assert len(await runs_of(service, execution["id"])) == 1

    async def test_a_cancel_during_the_wait_ends_the_step_without_another_attempt(
        self, service: Service
    ) -> None:
        body = scripted(
            step("bad", exit=1),
            retry={"max_attempts": 5, "retry_on": ["failed"], "backoff_s": 60.0},
        )
        created = await service.submit("x", **body)
        while not any(
            e["type"] == "step.retrying"
            for e in await all_events(service, created["id"])
        ):
            await asyncio.sleep(0.02)
        response = await service.client.post(f"/executions/{created['id']}/cancel")
        assert response.status_code == 200
        execution = await service.wait_finished(created["id"])
        assert execution["status"] == "cancelled"
        runs = await runs_of(service, created["id"])
        assert [r["status"] for r in runs] == ["failed"]
        events = await all_events(service, created["id"])
        last_of_step = [e for e in events if e["step_id"] == "bad"][-1]
        assert last_of_step["type"] == "step.failed"
        assert "no further attempt" in last_of_step["data"]["error"]

    async def test_a_cancelled_run_is_never_retried(self, service: Service) -> None:
        body = scripted(
            step("long", sleep=60),
            retry={"max_attempts": 5, "retry_on": ["failed", "timed_out"]},
        )
        created = await service.submit("x", **body)
        while not any(
            e["type"] == "step.started"
            for e in await all_events(service, created["id"])
        ):
            await asyncio.sleep(0.02)
        await service.client.post(f"/executions/{created['id']}/cancel")
        execution = await service.wait_finished(created["id"])
        assert execution["status"] == "cancelled"
        runs = await runs_of(service, created["id"])
        assert [r["status"] for r in runs] == ["cancelled"]

    async def test_attempts_above_the_server_limit_are_refused(
        self, service: Service
    ) -> None:
        body = scripted(step("a"), retry={"max_attempts": 11})
        response = await service.client.post("/executions", json={"task": "x", **body})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["details"]["errors"][0]["field"] == (
            "body.config.retry.max_attempts"
        )
        assert error["details"]["limit"] == 10


class TestRetryPolicyInRequests:
    async def test_an_outcome_named_twice_or_a_wait_that_is_not_a_number_is_a_422(
        self, service: Service
    ) -> None:
        for retry in [
            '{"retry_on": ["failed", "failed"]}',
            '{"backoff_s": NaN}',
            '{"backoff_max_s": Infinity}',
        ]:
            content = '{"task": "x", "config": {"retry": ' + retry + "}}"
            response = await service.client.post(
                "/executions",
                content=content.encode(),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 422, (retry, response.text)
            field = response.json()["error"]["details"]["errors"][0]["field"]
            assert field.startswith("body.config.retry"), field

    async def test_a_null_policy_means_the_server_default(
        self, service: Service
    ) -> None:
        execution = await service.submit("x", config={"retry": None})
        assert execution["config"]["retry"]["max_attempts"] == 3
        assert execution["config"]["retry"]["retry_on"] == ["interrupted"]
