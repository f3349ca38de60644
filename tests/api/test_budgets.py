"""Tokens and cost per run and per execution, and budgets that stop new starts."""

import asyncio
from pathlib import Path

import pytest

from tests.api.test_executions import all_events, runs_by_step, scripted, step
from tests.conftest import Service


async def wait_for_event(service: Service, execution_id: str, type_: str) -> None:
    async with asyncio.timeout(60):
        while not any(
            e["type"] == type_ for e in await all_events(service, execution_id)
        ):
            await asyncio.sleep(0.05)


USED = {"input_tokens": 400, "output_tokens": 200, "cost": 0.25}


class TestUsage:
    async def test_runs_carry_their_usage_and_the_result_sums_it(
        self, service: Service
    ) -> None:
        body = scripted(
            step("explore", usage=USED),
            step("build", ["explore"], usage={"input_tokens": 10, "output_tokens": 5}),
            step("docs", ["explore"]),
        )

        execution = await service.run("Build", **body)

        runs = await runs_by_step(service, execution["id"])
        assert (runs["explore"]["input_tokens"], runs["explore"]["output_tokens"]) == (
            400,
            200,
        )
        assert runs["explore"]["cost"] == 0.25
        assert runs["build"]["cost"] is None
        assert runs["docs"]["input_tokens"] is None
        result = execution["result"]
        assert (result["input_tokens"], result["output_tokens"]) == (410, 205)
        assert result["total_tokens"] == 615
        assert result["cost"] == 0.25

    async def test_costs_add_up_without_float_noise(self, service: Service) -> None:
        body = scripted(
            step("a", usage={"cost": 0.1}),
            step("b", usage={"cost": 0.2}),
            step("c", usage={"cost": 0.0012000000000000001}),
        )

        execution = await service.run("Build", **body)

        runs = await runs_by_step(service, execution["id"])
        assert runs["c"]["cost"] == 0.0012
        assert execution["result"]["cost"] == 0.3012

    async def test_without_usage_the_totals_are_zero_and_the_cost_null(
        self, service: Service
    ) -> None:
        execution = await service.run("Build", **scripted(step("only")))

        result = execution["result"]
        assert (result["total_tokens"], result["cost"]) == (0, None)

    @pytest.mark.parametrize(
        ("usage", "field"),
        [
            ({"input_tokens": -3}, "input_tokens"),
            ({"output_tokens": 10**16}, "output_tokens"),
        ],
    )
    async def test_a_bad_usage_fails_the_run_and_says_why(
        self, service: Service, usage: dict, field: str
    ) -> None:
        body = scripted(step("bad", usage=usage))

        execution = await service.run("Build", **body)

        runs = await runs_by_step(service, execution["id"])
        assert execution["status"] == "failed"
        assert field in runs["bad"]["error"]
        assert runs["bad"]["input_tokens"] is None


class TestBudgets:
    async def test_a_spent_token_budget_stops_new_starts_with_a_clear_reason(
        self, service: Service
    ) -> None:
        body = scripted(
            step("one", usage=USED),
            step("two", ["one"], usage=USED),
            step("three", ["two"], usage=USED),
            budget={"max_tokens": 1000},
            fail_fast=False,
        )

        execution = await service.run("Build", **body)

        assert execution["status"] == "partial"
        assert execution["reason"] == "budget exceeded: 1,200 tokens used of 1,000"
        runs = await runs_by_step(service, execution["id"])
        assert sorted(runs) == ["one", "two"]
        events = await all_events(service, execution["id"])
        [spent] = [e for e in events if e["type"] == "execution.budget_exceeded"]
        assert spent["step_id"] == "two"
        [skipped] = [e for e in events if e["type"] == "step.skipped"]
        assert skipped["step_id"] == "three"
        assert skipped["data"]["reason"] == execution["reason"]
        assert execution["result"]["total_tokens"] == 1200
        assert execution["result"]["steps_by_status"] == {
            "succeeded": 2,
            "skipped": 1,
        }

    async def test_running_steps_finish_when_the_budget_is_spent(
        self, service: Service, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        body = scripted(
            step("cheap", usage={"input_tokens": 1, "output_tokens": 1, "cost": 2.0}),
            step("slow", wait_for_file=str(gate), usage={"input_tokens": 1}),
            step("after", ["cheap"]),
            budget={"max_cost": 1.5},
            fail_fast=False,
        )

        created = await service.submit("Build", **body)
        await wait_for_event(service, created["id"], "execution.budget_exceeded")
        gate.touch()
        execution = await service.wait_finished(created["id"])

        runs = await runs_by_step(service, execution["id"])
        assert runs["slow"]["status"] == "succeeded"
        assert "after" not in runs
        assert execution["reason"] == "budget exceeded: cost 2 of 1.5"
        assert execution["result"]["cost"] == 2.0

    async def test_the_tokens_of_a_failed_run_count_against_the_budget(
        self, service: Service
    ) -> None:
        body = scripted(
            step("broke", exit=3, usage=USED),
            step("next", ["broke"]),
            step("other"),
            step("after-other", ["other"]),
            budget={"max_tokens": 500},
            fail_fast=False,
            max_parallel=1,
        )

        execution = await service.run("Build", **body)

        runs = await runs_by_step(service, execution["id"])
        assert runs["broke"]["status"] == "failed"
        assert runs["broke"]["input_tokens"] == 400
        assert execution["result"]["total_tokens"] == 600
        assert execution["reason"] == "budget exceeded: 600 tokens used of 500"
        assert "after-other" not in runs

    async def test_a_budget_not_reached_changes_nothing(self, service: Service) -> None:
        body = scripted(
            step("one", usage=USED),
            step("two", ["one"], usage=USED),
            budget={"max_tokens": 1200, "max_cost": 1.0},
        )

        execution = await service.run("Build", **body)

        assert execution["status"] == "succeeded"
        assert execution["reason"] is None

    async def test_a_step_waiting_to_retry_gives_up_at_once(
        self, service: Service, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        body = scripted(
            step("flaky", exit=1),
            step("spender", wait_for_file=str(gate), usage=USED),
            budget={"max_tokens": 100},
            retry={"max_attempts": 3, "retry_on": ["failed"], "backoff_s": 600.0},
            fail_fast=False,
        )

        created = await service.submit("Build", **body)
        await wait_for_event(service, created["id"], "step.retrying")
        gate.touch()
        execution = await service.wait_finished(created["id"])

        runs = await runs_by_step(service, execution["id"])
        assert runs["flaky"]["attempt"] == 1
        assert execution["status"] == "partial"
        assert execution["reason"] == "budget exceeded: 600 tokens used of 100"
        events = await all_events(service, execution["id"])
        [failed] = [e for e in events if e["type"] == "step.failed"]
        assert failed["step_id"] == "flaky"
        assert failed["data"]["error"].endswith(
            "no further attempt: budget exceeded: 600 tokens used of 100"
        )

    @pytest.mark.parametrize(
        "budget",
        [{}, {"max_tokens": 0}, {"max_cost": -1.0}, {"max_tokens": "many"}, {"x": 1}],
    )
    async def test_a_bad_budget_is_a_422(self, service: Service, budget: dict) -> None:
        response = await service.client.post(
            "/executions", json={"task": "Build it", "config": {"budget": budget}}
        )

        assert response.status_code == 422
        assert "budget" in response.text


class TestBudgetsWithFailFast:
    async def test_a_step_given_up_for_the_budget_lets_running_steps_finish(
        self, service: Service, tmp_path: Path
    ) -> None:
        """fail_fast (the default) is for steps that fail, not for the budget."""
        costly_gate, slow_gate = tmp_path / "costly", tmp_path / "slow"
        body = scripted(
            step("flaky", exit=3),  # fails, then waits 30 s for its next attempt
            step("costly", wait_for_file=str(costly_gate), usage=USED),
            step("slow", wait_for_file=str(slow_gate)),
            step("after", ["costly"]),
            budget={"max_tokens": 500},
            retry={"max_attempts": 3, "retry_on": ["failed"], "backoff_s": 30},
        )

        created = await service.submit("Build", **body)
        await wait_for_event(service, created["id"], "step.retrying")
        costly_gate.touch()
        await wait_for_event(service, created["id"], "execution.budget_exceeded")
        slow_gate.touch()
        execution = await service.wait_finished(created["id"])

        assert execution["status"] == "partial"
        assert execution["reason"] == "budget exceeded: 600 tokens used of 500"
        runs = await runs_by_step(service, execution["id"])
        assert runs["slow"]["status"] == "succeeded"
        assert runs["costly"]["status"] == "succeeded"
        assert "after" not in runs
        events = await all_events(service, execution["id"])
        [flaky_end] = [
            e for e in events if e["step_id"] == "flaky" and e["type"] == "step.failed"
        ]
        assert "no further attempt: budget exceeded" in flaky_end["data"]["error"]
        assert not [e for e in events if e["type"] == "step.cancelled"]
