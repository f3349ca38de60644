import json
from typing import Any

import pytest

from tests.conftest import Service


async def refused(service: Service, body: Any, status: int) -> dict:
    response = await service.client.post("/executions", json=body)
    assert response.status_code == status, response.text
    listing = (await service.client.get("/executions")).json()
    assert listing["total"] == 0, "a refused request must store nothing"
    return response.json()["error"]


def plan(*steps: dict) -> dict:
    return {"task": "t", "plan": {"steps": list(steps)}}


def node(step_id: str, *deps: str) -> dict:
    return {"id": step_id, "agent": "builder", "depends_on": list(deps)}


class TestPlanChecks:
    async def test_an_empty_plan_is_refused(self, service: Service) -> None:
        error = await refused(service, plan(), 422)
        assert error["code"] == "plan_invalid"

    async def test_duplicate_ids_are_named(self, service: Service) -> None:
        error = await refused(service, plan(node("a"), node("a")), 422)
        assert error["details"]["duplicate_ids"] == ["a"]

    async def test_unknown_dependencies_are_named(self, service: Service) -> None:
        error = await refused(service, plan(node("a", "ghost")), 422)
        assert error["details"]["unknown_dependencies"] == {"a": ["ghost"]}

    async def test_a_cycle_is_named_in_order(self, service: Service) -> None:
        body = plan(node("a", "c"), node("b", "a"), node("c", "b"))
        error = await refused(service, body, 422)
        cycle = error["details"]["cycle"]
        assert cycle[0] == cycle[-1]
        assert set(cycle) == {"a", "b", "c"}
        assert "a" in error["message"]

    async def test_a_plan_over_the_step_limit_is_too_large(
        self, service: Service
    ) -> None:
        limit = service.app.state.settings.max_plan_steps
        body = plan(*[node(f"s{i}") for i in range(limit + 1)])
        error = await refused(service, body, 413)
        assert error["code"] == "plan_too_large"


class TestRequestChecks:
    async def test_a_task_over_the_length_limit_is_refused(
        self, service: Service
    ) -> None:
        limit = service.app.state.settings.max_task_chars
        error = await refused(service, {"task": "x" * (limit + 1)}, 422)
        assert error["code"] == "task_too_long"

    async def test_an_unknown_profile_is_refused(self, service: Service) -> None:
        body = {"task": "t", "config": {"profile": "nope"}}
        error = await refused(service, body, 422)
        assert error["code"] == "profile_not_found"

    async def test_a_wrong_field_names_the_field(self, service: Service) -> None:
        body = {"task": "t", "config": {"max_parallel": 0}}
        error = await refused(service, body, 422)
        assert error["code"] == "invalid_request"
        assert error["details"]["errors"][0]["field"] == "body.config.max_parallel"

    async def test_an_unknown_config_key_is_refused(self, service: Service) -> None:
        body = {"task": "t", "config": {"dryrun": True}}
        error = await refused(service, body, 422)
        assert "dryrun" in error["message"]

    async def test_a_command_line_cannot_be_sent(self, service: Service) -> None:
        body = {"task": "t", "config": {"command": ["rm", "-rf", "/"]}}
        await refused(service, body, 422)

    async def test_max_parallel_above_the_server_limit_is_refused(
        self, service: Service
    ) -> None:
        limit = service.app.state.settings.max_parallel_limit
        body = {"task": "t", "config": {"max_parallel": limit + 1}}
        error = await refused(service, body, 422)
        assert str(limit) in error["message"]

    async def test_malformed_json_is_a_clear_422(self, service: Service) -> None:
        response = await service.client.post(
            "/executions",
            content=b'{"task": ',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"

    @pytest.mark.parametrize("chunked", [False, True])
    async def test_a_body_over_the_size_limit_is_too_large(
        self, service: Service, chunked: bool
    ) -> None:
        limit = service.app.state.settings.max_body_bytes
        payload = b'{"task": "' + b"x" * limit + b'"}'

        async def chunks():  # no content-length: the cap is counted as it arrives
            for start in range(0, len(payload), 65536):
                yield payload[start : start + 65536]

        response = await service.client.post(
            "/executions",
            content=chunks() if chunked else payload,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "body_too_large"
        assert error["details"]["limit"] == limit


class TestNotFound:
    @pytest.mark.parametrize("suffix", ["", "/plan", "/runs", "/events"])
    async def test_an_unknown_execution_is_a_404_with_the_error_body(
        self, service: Service, suffix: str
    ) -> None:
        response = await service.client.get(f"/executions/nope{suffix}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "execution_not_found"

    async def test_cancelling_an_unknown_execution_is_a_404(
        self, service: Service
    ) -> None:
        response = await service.client.post("/executions/nope/cancel")
        assert response.status_code == 404

    async def test_an_unknown_route_uses_the_same_body(self, service: Service) -> None:
        response = await service.client.get("/nothing-here")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


class TestUnstorableText:
    @pytest.mark.parametrize("bad", ["nul \u0000 inside", "lone \ud800 surrogate"])
    async def test_text_no_database_can_store_is_refused(
        self, service: Service, bad: str
    ) -> None:
        content = json.dumps({"task": bad}).encode()  # ASCII escapes survive encoding
        response = await service.client.post(
            "/executions", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert (await service.client.get("/executions")).json()["total"] == 0

    async def test_nul_in_step_instructions_is_refused(self, service: Service) -> None:
        step = node("a") | {"instructions": "x\u0000y"}
        error = await refused(service, plan(step), 422)
        assert "NUL" in error["message"]

    async def test_emoji_and_other_scripts_are_kept(self, service: Service) -> None:
        task = "Implement 登录 feature 🚀 with UI"
        created = await service.submit(task, config={"dry_run": True})
        stored = await service.client.get(f"/executions/{created['id']}")
        assert stored.json()["task"] == task


class TestOutOfRangeNumbers:
    @pytest.mark.parametrize(
        "query", ["after_seq=99999999999", "after_seq=-1", "limit=0", "limit=1e3"]
    )
    async def test_event_paging_out_of_range_is_a_422(
        self, service: Service, query: str
    ) -> None:
        created = await service.submit("x", config={"dry_run": True})
        response = await service.client.get(
            f"/executions/{created['id']}/events?{query}"
        )
        assert response.status_code == 422

    async def test_a_huge_offset_is_a_422(self, service: Service) -> None:
        response = await service.client.get("/executions?offset=99999999999999999999")
        assert response.status_code == 422

    async def test_an_id_that_is_no_uuid_is_simply_not_found(
        self, service: Service
    ) -> None:
        response = await service.client.get("/executions/%00abc")
        assert response.status_code == 404


class TestStrictTypes:
    @pytest.mark.parametrize(
        "config",
        [
            {"dry_run": "yes"},
            {"dry_run": 1},
            {"max_parallel": "4"},
            {"max_parallel": True},
            {"step_timeout_s": "10"},
            {"profile": ""},
        ],
    )
    async def test_values_of_the_wrong_type_are_refused_not_coerced(
        self, service: Service, config: dict
    ) -> None:
        error = await refused(service, {"task": "t", "config": config}, 422)
        field = next(iter(config))
        assert error["details"]["errors"][0]["field"] == f"body.config.{field}"

    async def test_a_blank_task_is_refused(self, service: Service) -> None:
        error = await refused(service, {"task": "  \n\t "}, 422)
        assert "blank" in error["message"]


class TestBodyProblems:
    async def test_malformed_json_names_the_body_and_the_position(
        self, service: Service
    ) -> None:
        response = await service.client.post(
            "/executions",
            content=b'{"task": ',
            headers={"content-type": "application/json"},
        )
        problem = response.json()["error"]["details"]["errors"][0]
        assert problem["field"] == "body"
        assert "not valid JSON" in problem["problem"]

    async def test_a_body_without_a_json_content_type_says_so(
        self, service: Service
    ) -> None:
        response = await service.client.post(
            "/executions",
            content=b'{"task": "t"}',
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 422
        assert "Content-Type: application/json" in response.json()["error"]["message"]

    async def test_invalid_utf8_is_a_4xx_with_the_error_body(
        self, service: Service
    ) -> None:
        response = await service.client.post(
            "/executions",
            content=b'{"task": "\xff\xfe"}',
            headers={"content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500
        assert response.json()["error"]["code"] in {"bad_request", "invalid_request"}

    async def test_a_body_nested_too_deeply_says_so(self, service: Service) -> None:
        depth = 100_000
        response = await service.client.post(
            "/executions",
            content=b'{"task": "t", "config": ' + b"[" * depth + b"]" * depth + b"}",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
        problem = response.json()["error"]["details"]["errors"][0]
        assert problem["field"] == "body"
        assert "nested too deeply" in problem["problem"]

    async def test_a_limit_refusal_names_its_field(self, service: Service) -> None:
        limit = service.app.state.settings.step_timeout_max_seconds
        body = {"task": "t", "config": {"step_timeout_s": limit + 1}}
        error = await refused(service, body, 422)
        assert error["details"]["errors"][0]["field"] == "body.config.step_timeout_s"


class TestDependencyIds:
    async def test_a_dependency_that_is_no_step_id_is_a_422(
        self, service: Service
    ) -> None:
        content = b'{"task": "t", "plan": {"steps": [{"id": "a", "agent": "builder", '
        content += b'"depends_on": ["\\ud800"]}]}}'
        response = await service.client.post(
            "/executions", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"
