"""Idempotency-Key: a repeated submit returns the first execution, never a second."""

import asyncio
import json
from collections.abc import Callable

from app.settings import Settings
from tests.api.test_executions import scripted, step
from tests.conftest import Service, start_service

BODY = {"task": "Implement login feature", "config": {"dry_run": False}}


async def post(service: Service, body: dict, key: str | None, **kwargs) -> dict:
    headers = {"Idempotency-Key": key} if key is not None else {}
    response = await service.client.post(
        "/executions", json=body, headers=headers, **kwargs
    )
    return {
        "status": response.status_code,
        "body": response.json(),
        "replayed": response.headers.get("idempotent-replayed"),
    }


async def count_executions(service: Service) -> int:
    return (await service.client.get("/executions")).json()["total"]


def without_status(steps: list[dict]) -> list[dict]:
    return [
        {key: value for key, value in step.items() if key != "status"} for step in steps
    ]


class TestIdempotencyKey:
    async def test_the_same_key_and_body_return_the_first_execution(
        self, service: Service
    ) -> None:
        first = await post(service, BODY, "order-42")
        again = await post(service, BODY, "order-42")
        assert first["status"] == 202
        assert again["status"] == 200
        assert again["replayed"] == "true"
        assert again["body"]["id"] == first["body"]["id"]
        # the execution runs meanwhile: step statuses may have moved on
        assert without_status(again["body"]["plan"]["steps"]) == without_status(
            first["body"]["plan"]["steps"]
        )
        assert await count_executions(service) == 1

    async def test_the_same_request_written_differently_is_the_same_request(
        self, service: Service
    ) -> None:
        first = await post(service, BODY, "k1")
        reordered = json.dumps({"config": {"dry_run": False}, "task": BODY["task"]})
        response = await service.client.post(
            "/executions",
            content=reordered.encode(),
            headers={"Idempotency-Key": "k1", "Content-Type": "application/json"},
        )
        assert response.status_code == 200
        assert response.json()["id"] == first["body"]["id"]

    async def test_the_same_key_with_another_body_is_a_conflict(
        self, service: Service
    ) -> None:
        first = await post(service, BODY, "k2")
        other = await post(service, {"task": "Fix the logout bug"}, "k2")
        assert other["status"] == 409
        error = other["body"]["error"]
        assert error["code"] == "idempotency_key_reused"
        assert "different request" in error["message"]
        assert error["details"]["execution_id"] == first["body"]["id"]
        assert await count_executions(service) == 1

    async def test_requests_racing_with_one_key_make_one_execution(
        self, service: Service
    ) -> None:
        answers = await asyncio.gather(*(post(service, BODY, "race") for _ in range(8)))
        assert sorted(a["status"] for a in answers) == [200] * 7 + [202]
        assert len({a["body"]["id"] for a in answers}) == 1
        assert await count_executions(service) == 1

    async def test_without_a_key_every_submit_is_new(self, service: Service) -> None:
        await post(service, BODY, None)
        await post(service, BODY, None)
        assert await count_executions(service) == 2

    async def test_a_dry_run_is_replayed_too(self, service: Service) -> None:
        preview = {"task": "Implement login", "config": {"dry_run": True}}
        first = await post(service, preview, "preview-1")
        again = await post(service, preview, "preview-1")
        assert (first["status"], again["status"]) == (201, 200)
        assert again["body"]["id"] == first["body"]["id"]

    async def test_a_replay_shows_how_far_the_execution_has_got(
        self, service: Service
    ) -> None:
        body = {"task": "x", **scripted(step("a"))}
        first = await post(service, body, "progress")
        await service.wait_finished(first["body"]["id"])
        again = await post(service, body, "progress")
        assert again["body"]["status"] == "succeeded"

    async def test_keys_that_are_empty_too_long_or_spaced_are_refused(
        self, service: Service
    ) -> None:
        for key in ["", "x" * 201, "has space", "tab\tkey"]:
            answer = await post(service, BODY, key)
            assert answer["status"] == 422, key
            field = answer["body"]["error"]["details"]["errors"][0]["field"]
            assert field == "header.Idempotency-Key"
        assert await count_executions(service) == 0

    async def test_an_invalid_body_stores_no_key(self, service: Service) -> None:
        bad = await post(service, {"task": ""}, "k3")
        assert bad["status"] == 422
        good = await post(service, BODY, "k3")
        assert good["status"] == 202

    async def test_an_expired_key_can_be_used_for_a_new_execution(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # the last request must come within the 2 s after the one before it
        settings = make_settings(idempotency_key_ttl_seconds=2.0)
        async with start_service(settings) as service:
            first = await post(service, BODY, "short-lived")
            await asyncio.sleep(2.2)
            later = await post(service, {"task": "Another task"}, "short-lived")
            assert later["status"] == 202
            assert later["body"]["id"] != first["body"]["id"]
            again = await post(service, {"task": "Another task"}, "short-lived")
            assert again["body"]["id"] == later["body"]["id"]

    async def test_spelling_out_the_server_defaults_is_the_same_request(
        self, service: Service
    ) -> None:
        first = await post(service, {"task": "T"}, "defaults")
        defaults = {
            "max_parallel": 4,
            "profile": "simulated",
            "step_timeout_s": 600.0,
            "execution_timeout_s": 3600.0,
            "mode": "auto",
        }
        again = await post(service, {"task": "T", "config": defaults}, "defaults")
        assert again["status"] == 200
        assert again["body"]["id"] == first["body"]["id"]

    async def test_two_keys_in_one_request_are_refused(self, service: Service) -> None:
        response = await service.client.post(
            "/executions",
            json=BODY,
            headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
        )
        assert response.status_code == 422
        assert "not several" in response.json()["error"]["message"]
        assert await count_executions(service) == 0
