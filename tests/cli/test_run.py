"""parallel-exec "TASK" [options]: plan a task, run it, and say how it went."""

from datetime import datetime

import pytest

from tests.cli.conftest import BUG_STEPS, BUG_TASK, LOGIN_STEPS, LOGIN_TASK, Cli

FIGURES = (
    "Status: succeeded",
    "Wall time ",
    "Parallel groups executed: ",
    "estimated savings 2,100 ms",
    "Critical path taken: ",
)


def accepted_id(out: str) -> str:
    """The execution id from the first line of a run's output."""
    first = out.splitlines()[0].split()
    assert first[0] == "execution" and first[2] in ("accepted", "planned"), out
    return first[1]


def most_at_once(runs: list[dict]) -> int:
    """The largest number of runs that were running at the same moment."""
    moments = sorted(
        [(datetime.fromisoformat(run["started_at"]), 1) for run in runs]
        + [(datetime.fromisoformat(run["finished_at"]), -1) for run in runs]
    )
    running = most = 0
    for _, change in moments:  # at equal times an end sorts before a start
        running += change
        most = max(most, running)
    return most


class TestDocumentedInvocations:
    async def test_a_dry_run_shows_every_step_with_estimates_and_runs_nothing(
        self, cli: Cli
    ) -> None:
        outcome = await cli(LOGIN_TASK, "--dry_run", "true")

        assert outcome.code == 0, outcome
        assert "planned (dry run)" in outcome.out
        assert "Plan (implement task, mode chain): 10 steps in 5 phases" in outcome.out
        for step in LOGIN_STEPS:
            assert step in outcome.out
        assert "1 (3 steps in parallel)   explore-domain     explore       400 ms" in (
            outcome.out
        )
        assert "Critical path (2,400 ms): explore-domain -> architect-design" in (
            outcome.out
        )
        assert "sequential 4,500 ms, parallel 2,400 ms, savings 2,100 ms" in (
            outcome.out
        )
        assert not outcome.step_lines("started")
        report = await cli.json("show", accepted_id(outcome.out))
        assert report["execution"]["status"] == "planned"
        assert report["runs"] == []

    async def test_a_parallel_run_prints_a_line_per_step_and_the_figures(
        self, cli: Cli
    ) -> None:
        outcome = await cli(LOGIN_TASK, "--parallel", "true")

        assert outcome.code == 0, outcome
        assert set(outcome.step_lines("started")) == set(LOGIN_STEPS)
        assert set(outcome.step_lines("succeeded")) == set(LOGIN_STEPS)
        figures = outcome.out.split("execution succeeded\n", 1)[1]
        for figure in FIGURES:
            assert figure in figures
        assert outcome.out.rstrip().splitlines()[-1].startswith("Critical path taken")
        assert outcome.err == ""

    async def test_a_run_without_parallelism_runs_one_step_at_a_time(
        self, cli: Cli
    ) -> None:
        outcome = await cli(BUG_TASK, "--parallel", "false")
        report = await cli.json("show", accepted_id(outcome.out))

        assert outcome.code == 0, outcome
        assert set(outcome.step_lines("succeeded")) == set(BUG_STEPS)
        assert report["execution"]["config"]["parallel"] is False
        assert report["plan"]["max_parallel"] == 1
        assert len(report["runs"]) == len(BUG_STEPS)
        assert most_at_once(report["runs"]) == 1

    async def test_run_may_be_written_out(self, cli: Cli) -> None:
        outcome = await cli("run", BUG_TASK, "--dry_run", "true")

        assert outcome.code == 0, outcome
        assert "planned (dry run)" in outcome.out


class TestOptionSpellings:
    async def test_kebab_forms_mean_the_same_as_snake_forms(self, cli: Cli) -> None:
        options = {
            "dry_run": "true",
            "max_parallel": "2",
            "fail_fast": "false",
            "step_timeout": "30",
            "execution_timeout": "90",
        }
        snake = [
            part for name, value in options.items() for part in (f"--{name}", value)
        ]
        kebab = [part.replace("_", "-") for part in snake]

        by_snake = await cli.json(BUG_TASK, *snake)
        by_kebab = await cli.json(BUG_TASK, *kebab)

        assert by_snake["execution"]["config"] == by_kebab["execution"]["config"]
        config = by_kebab["execution"]["config"]
        assert config["dry_run"] is True
        assert config["max_parallel"] == 2
        assert config["fail_fast"] is False
        assert config["step_timeout_s"] == 30
        assert config["execution_timeout_s"] == 90

    async def test_a_flag_without_a_value_means_true(self, cli: Cli) -> None:
        report = await cli.json(BUG_TASK, "--dry-run", "--fail-fast", "--parallel")

        assert report["execution"]["status"] == "planned"
        assert report["execution"]["config"]["fail_fast"] is True
        assert report["execution"]["config"]["parallel"] is True

    async def test_a_flag_without_a_value_may_come_before_the_task(
        self, cli: Cli
    ) -> None:
        report = await cli.json("--dry-run", BUG_TASK)

        assert report["execution"]["status"] == "planned"
        assert report["execution"]["task"] == BUG_TASK

    @pytest.mark.parametrize("word", ["false", "no", "off", "0", "FALSE"])
    async def test_a_flag_given_a_false_word_is_off(
        self, local: Cli, word: str
    ) -> None:
        report = await local.json(BUG_TASK, "--dry_run", word)

        assert report["execution"]["status"] == "succeeded"
        assert report["execution"]["dry_run"] is False

    @pytest.mark.parametrize(
        ("mode", "builder"),
        [("chain", "builder-backend"), ("decompose", "builder-login")],
    )
    async def test_the_mode_chooses_how_the_task_is_planned(
        self, cli: Cli, mode: str, builder: str
    ) -> None:
        report = await cli.json(LOGIN_TASK, "--mode", mode, "--dry-run")

        assert report["plan"]["mode"] == mode
        assert builder in [step["id"] for step in report["plan"]["steps"]]

    async def test_max_parallel_bounds_the_steps_running_at_once(
        self, cli: Cli
    ) -> None:
        outcome = await cli(LOGIN_TASK, "--max-parallel", "2")
        report = await cli.json("show", accepted_id(outcome.out))

        assert outcome.code == 0, outcome
        assert report["plan"]["max_parallel"] == 2
        assert len(report["runs"]) == len(LOGIN_STEPS)
        assert most_at_once(report["runs"]) <= 2


class TestBudgets:
    async def test_a_token_budget_stops_the_run_and_the_figures_show_the_tokens(
        self, cli: Cli
    ) -> None:
        outcome = await cli(
            BUG_TASK,
            "--profile",
            "spending",
            "--parallel",
            "false",
            "--max-tokens",
            "600",
        )

        assert outcome.code == 1, outcome
        reason = "budget exceeded: 1,000 tokens used of 600"
        assert f"execution stops starting steps: {reason}" in outcome.out
        assert f"execution partial: {reason}" in outcome.out
        assert "Tokens: 800 in, 200 out; cost 1" in outcome.out
        assert set(outcome.step_lines("succeeded")) == set(BUG_STEPS[:2])
        assert set(outcome.step_lines("skipped")) == set(BUG_STEPS[2:])

    async def test_the_budget_reaches_the_execution_config(self, cli: Cli) -> None:
        report = await cli.json(
            BUG_TASK, "--dry-run", "--max-tokens", "5000", "--max-cost", "2.5"
        )

        assert report["execution"]["config"]["budget"] == {
            "max_tokens": 5000,
            "max_cost": 2.5,
        }


class TestHelp:
    async def test_help_lists_the_commands(self, local: Cli) -> None:
        outcome = await local("--help")

        assert outcome.code == 0, outcome
        for command in ("run", "list", "show", "watch", "cancel", "serve"):
            assert f"    {command} " in outcome.out

    async def test_help_of_run_names_each_spelling_of_an_option_once(
        self, local: Cli
    ) -> None:
        outcome = await local("run", "--help")

        assert outcome.code == 0, outcome
        assert "--dry_run [true|false], --dry-run [true|false]" in outcome.out
        assert "--max_parallel N, --max-parallel N" in outcome.out
        assert "--parallel [true|false], --parallel" not in outcome.out
        assert "--mode {auto,chain,decompose}" in outcome.out

    async def test_version_names_the_program_and_its_version(self, local: Cli) -> None:
        outcome = await local("--version")

        assert outcome.code == 0, outcome
        assert outcome.out.startswith("parallel-exec ")


class TestJsonOutput:
    async def test_a_run_prints_its_execution_plan_and_runs_as_one_document(
        self, cli: Cli
    ) -> None:
        report = await cli.json(LOGIN_TASK)

        assert set(report) == {"execution", "plan", "runs"}
        execution = report["execution"]
        assert execution["status"] == "succeeded"
        assert execution["task"] == LOGIN_TASK
        assert execution["result"]["steps_by_status"] == {"succeeded": 10}
        assert execution["result"]["estimated_savings_ms"] == 2100
        assert report["plan"]["execution_id"] == execution["id"]
        assert [step["status"] for step in report["plan"]["steps"]] == [
            "succeeded"
        ] * len(LOGIN_STEPS)
        assert sorted(run["step_id"] for run in report["runs"]) == sorted(LOGIN_STEPS)

    async def test_a_dry_run_prints_the_plan_and_no_runs(self, cli: Cli) -> None:
        report = await cli.json(LOGIN_TASK, "--dry_run", "true")

        assert report["execution"]["status"] == "planned"
        assert report["execution"]["estimated_savings_ms"] == 2100
        assert len(report["plan"]["steps"]) == len(LOGIN_STEPS)
        assert report["plan"]["critical_path_ms"] == 2400
        assert report["runs"] == []


class TestExitCodes:
    async def test_a_failed_step_fails_the_run_with_exit_code_1(self, cli: Cli) -> None:
        outcome = await cli(LOGIN_TASK, "--profile", "failing")

        assert outcome.code == 1, outcome
        failed = outcome.step_lines("failed")
        assert list(failed) == ["builder-backend"]
        assert "command exited with code 3" in failed["builder-backend"]
        assert {"quality-backend", "reviewer-final"} <= set(
            outcome.step_lines("skipped")
        )
        assert "Status: failed (step builder-backend failed)" in outcome.out

    async def test_a_failed_run_in_json_exits_1_too(self, cli: Cli) -> None:
        outcome = await cli(LOGIN_TASK, "--profile", "failing", "--json")

        assert outcome.code == 1, outcome
        assert outcome.json()["execution"]["status"] == "failed"

    async def test_a_step_past_its_timeout_fails_the_run_with_exit_code_1(
        self, cli: Cli
    ) -> None:
        outcome = await cli(BUG_TASK, "--profile", "gated", "--step_timeout", "0.5")

        assert outcome.code == 1, outcome
        assert "step timed out after 0.5 s" in outcome.out
        assert "Status: failed" in outcome.out

    async def test_a_run_past_its_timeout_exits_1_as_timed_out(self, cli: Cli) -> None:
        outcome = await cli(
            BUG_TASK, "--profile", "gated", "--execution-timeout", "0.5"
        )

        assert outcome.code == 1, outcome
        assert "Status: timed_out (execution timed out after 0.5 s)" in outcome.out


class TestBadArguments:
    @pytest.mark.parametrize(
        ("arguments", "problem"),
        [
            (["--dry_run", "maybe"], "expected true or false, got 'maybe'"),
            (["--parallel", "sometimes"], "expected true or false, got 'sometimes'"),
            (
                ["--max-parallel", "0"],
                "--max_parallel/--max-parallel: expected a positive number, got '0'",
            ),
            (["--max_parallel", "two"], "expected a positive number, got 'two'"),
            (["--mode", "sideways"], "invalid choice: 'sideways'"),
            (["--step_timeout", "-1"], "expected a positive number, got '-1'"),
            (["--execution-timeout", "nan"], "expected a positive number, got 'nan'"),
            (["--colour"], "unrecognized arguments: --colour"),
        ],
    )
    async def test_a_bad_option_exits_2_naming_the_problem(
        self, local: Cli, arguments: list[str], problem: str
    ) -> None:
        outcome = await local(BUG_TASK, *arguments)

        assert outcome.code == 2, outcome
        assert problem in outcome.err
        assert outcome.err.startswith("usage: parallel-exec")
        assert outcome.out == ""
        assert not (local.folder / "cli.db").exists()  # nothing was stored

    async def test_a_missing_task_exits_2_asking_for_it(self, local: Cli) -> None:
        outcome = await local()

        assert outcome.code == 2, outcome
        assert "the following arguments are required: task" in outcome.err

    async def test_an_unknown_profile_is_refused_with_exit_code_2(
        self, cli: Cli
    ) -> None:
        outcome = await cli(BUG_TASK, "--profile", "nosuch")

        assert outcome.code == 2, outcome
        assert outcome.err == (
            "parallel-exec: unknown profile 'nosuch' (profile_not_found)\n"
        )
        assert (await cli.json("list"))["total"] == 0

    async def test_a_limit_of_the_service_is_refused_with_exit_code_2(
        self, cli: Cli
    ) -> None:
        outcome = await cli(BUG_TASK, "--max-parallel", "1000")

        assert outcome.code == 2, outcome
        assert "1000 is above the server's limit of 64" in outcome.err
        assert "Traceback" not in outcome.err
