"""parallel-exec list, show, watch and cancel: in-process and against a service."""

import json
import re

import pytest

from tests.cli.conftest import (
    BUG_STEPS,
    BUG_TASK,
    LOGIN_TASK,
    Agents,
    Cli,
    Outcome,
    gated_run,
)
from tests.runners.processes import wait_until_gone

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def three_executions(cli: Cli) -> list[str]:
    """A dry run, a run that succeeds and one that fails; their ids, oldest first."""
    planned = await cli.json(LOGIN_TASK, "--dry-run")
    succeeded = await cli.json(BUG_TASK)
    failed = await cli(LOGIN_TASK, "--profile", "failing", "--json")
    assert failed.code == 1, failed
    return [report["execution"]["id"] for report in (planned, succeeded, failed.json())]


class TestList:
    async def test_list_shows_the_executions_newest_first(self, cli: Cli) -> None:
        ids = await three_executions(cli)

        outcome = await cli("list")

        assert outcome.code == 0, outcome
        rows = [line.split() for line in outcome.out.splitlines() if UUID.search(line)]
        assert [row[0] for row in rows] == ids[::-1]
        assert [row[1] for row in rows] == ["failed", "succeeded", "planned"]
        assert outcome.out.rstrip().endswith("1-3 of 3")

    async def test_list_in_json_filters_by_status(self, cli: Cli) -> None:
        ids = await three_executions(cli)

        page = await cli.json("list", "--status", "failed")

        assert [item["id"] for item in page["items"]] == [ids[2]]
        assert page["total"] == 1

    async def test_list_in_json_pages_with_limit_and_offset(self, cli: Cli) -> None:
        ids = await three_executions(cli)

        page = await cli.json("list", "--limit", "1", "--offset", "1")

        assert [item["id"] for item in page["items"]] == [ids[1]]
        assert page["total"] == 3

    async def test_an_empty_list_says_none_of_none(self, cli: Cli) -> None:
        outcome = await cli("list")

        assert outcome.code == 0, outcome
        assert outcome.out.rstrip().endswith("0 of 0")

    async def test_a_task_with_brackets_is_listed_as_written(self, cli: Cli) -> None:
        task = "Fix [/] bug [b]X[/b]"
        await cli.json(task, "--dry-run")

        outcome = await cli("list")

        assert outcome.code == 0, outcome
        assert task in outcome.out

    async def test_control_characters_of_a_task_never_reach_the_terminal(
        self, cli: Cli
    ) -> None:
        await cli.json("Fix \x1b[31mred\x1b[0m bug\nnext line\r", "--dry-run")

        listed = await cli("list")
        shown = await cli("show", (await cli.json("list"))["items"][0]["id"])

        for outcome in (listed, shown):
            assert outcome.code == 0, outcome
            assert "\x1b" not in outcome.out and "\r" not in outcome.out
            assert "Fix \ufffd[31mred\ufffd[0m bug next line" in outcome.out

    async def test_options_may_come_before_the_subcommand(self, cli: Cli) -> None:
        await cli.json(BUG_TASK, "--dry-run")

        outcome = await cli("--json", "list", "--limit", "5")

        assert outcome.code == 0, outcome
        assert [item["task"] for item in outcome.json()["items"]] == [BUG_TASK]

    @pytest.mark.parametrize(
        ("arguments", "problem"),
        [
            (["--limit", "0"], "expected a positive number, got '0'"),
            (["--offset", "-1"], "expected 0 or more, got '-1'"),
            (["--status", "sleeping"], "invalid choice: 'sleeping'"),
        ],
    )
    async def test_a_bad_option_exits_2_naming_the_problem(
        self, local: Cli, arguments: list[str], problem: str
    ) -> None:
        outcome = await local("list", *arguments)

        assert outcome.code == 2, outcome
        assert problem in outcome.err


class TestShow:
    async def test_show_prints_the_plan_with_step_statuses_and_the_figures(
        self, cli: Cli
    ) -> None:
        execution_id = (await cli.json(BUG_TASK))["execution"]["id"]

        outcome = await cli("show", execution_id)

        assert outcome.code == 0, outcome
        lines = outcome.out.splitlines()
        assert lines[0] == f"execution {execution_id} succeeded"
        assert lines[1] == f"task: {BUG_TASK}"
        assert lines[2].startswith("profile simulated; created ")
        for step in BUG_STEPS:
            assert re.search(rf"{step} .* succeeded", outcome.out), step
        assert "Status: succeeded" in outcome.out
        assert "Wall time " in outcome.out

    async def test_show_of_a_dry_run_has_pending_steps_and_no_figures(
        self, cli: Cli
    ) -> None:
        execution_id = (await cli.json(BUG_TASK, "--dry-run"))["execution"]["id"]

        outcome = await cli("show", execution_id)

        assert outcome.code == 0, outcome
        assert outcome.out.splitlines()[0] == f"execution {execution_id} planned"
        assert "reason: dry run" in outcome.out
        for step in BUG_STEPS:
            assert re.search(rf"{step} .* pending", outcome.out), step
        assert "Wall time" not in outcome.out

    async def test_show_in_json_is_the_report_the_run_printed(self, cli: Cli) -> None:
        report = await cli.json(BUG_TASK)

        assert await cli.json("show", report["execution"]["id"]) == report

    @pytest.mark.parametrize("command", ["show", "watch", "cancel"])
    async def test_an_unknown_execution_exits_2_naming_it(
        self, cli: Cli, command: str
    ) -> None:
        outcome = await cli(command, "no-such-id")

        assert outcome.code == 2, outcome
        assert outcome.err == (
            "parallel-exec: no execution with id 'no-such-id' (execution_not_found)\n"
        )


class TestWatch:
    async def test_watch_of_a_finished_execution_prints_its_steps_and_figures(
        self, cli: Cli
    ) -> None:
        execution_id = (await cli.json(BUG_TASK))["execution"]["id"]

        outcome = await cli("watch", execution_id)

        assert outcome.code == 0, outcome
        assert list(outcome.step_lines("started")) == BUG_STEPS
        assert set(outcome.step_lines("succeeded")) == set(BUG_STEPS)
        assert "execution succeeded" in outcome.out
        assert "Status: succeeded" in outcome.out

    async def test_a_replay_times_each_line_as_the_run_did(self, cli: Cli) -> None:
        ran = await cli(BUG_TASK, "--parallel", "false")
        execution_id = (await cli.json("list"))["items"][0]["id"]

        replayed = await cli("watch", execution_id)

        def seconds(outcome: Outcome) -> list[float]:
            lines = outcome.step_lines("succeeded").values()
            return [float(line[1:].split("s]")[0]) for line in lines]

        assert len(seconds(ran)) == len(BUG_STEPS)
        assert seconds(replayed) == seconds(ran)

    async def test_watch_in_json_prints_each_event_once_on_its_own_line(
        self, cli: Cli
    ) -> None:
        execution_id = (await cli.json(BUG_TASK))["execution"]["id"]

        outcome = await cli("watch", execution_id, "--json")

        assert outcome.code == 0, outcome
        events = [json.loads(line) for line in outcome.out.splitlines()]
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert {event["execution_id"] for event in events} == {execution_id}
        assert events[-1]["type"] == "execution.finished"
        assert events[-1]["data"]["status"] == "succeeded"

    async def test_watch_of_a_failed_execution_exits_1(self, cli: Cli) -> None:
        failed = await cli(LOGIN_TASK, "--profile", "failing", "--json")

        outcome = await cli("watch", failed.json()["execution"]["id"])

        assert outcome.code == 1, outcome
        assert "Status: failed (step builder-backend failed)" in outcome.out

    async def test_watch_follows_a_running_execution_to_its_end(
        self, remote: Cli, agents: Agents
    ) -> None:
        execution_id, run = await gated_run(remote, agents)

        watch = await remote.start("watch", execution_id)
        await watch.read_until("explore-cause   started")
        agents.open_gate()
        watched = await watch.finish()

        assert watched.code == 0, watched
        assert set(watched.step_lines("succeeded")) == set(BUG_STEPS)
        assert watched.out.rstrip().splitlines()[-1].startswith("Critical path taken")
        assert "Status: succeeded" in watched.out
        assert (await run.finish()).code == 0


class TestCancel:
    async def test_cancel_stops_a_running_execution_and_its_agents(
        self, remote: Cli, agents: Agents
    ) -> None:
        execution_id, run = await gated_run(remote, agents)

        outcome = await remote("cancel", execution_id)

        assert outcome.code == 0, outcome
        assert outcome.out == f"execution {execution_id} cancelled\n"
        for pid in agents.pids():
            assert await wait_until_gone(pid), f"agent {pid} outlived the cancel"
        assert not agents.gate.exists()

    async def test_the_run_that_was_cancelled_elsewhere_exits_3(
        self, remote: Cli, agents: Agents
    ) -> None:
        execution_id, run = await gated_run(remote, agents)

        cancelled = await remote.json("cancel", execution_id)
        outcome = await run.finish()

        assert cancelled["id"] == execution_id
        assert cancelled["status"] == "cancelled"
        assert outcome.code == 3, outcome
        assert set(outcome.step_lines("cancelled")) == {
            "explore-cause",
            "explore-tests",
        }
        assert "Status: cancelled (cancelled by request)" in outcome.out

    async def test_watch_of_a_cancelled_execution_exits_3(
        self, remote: Cli, agents: Agents
    ) -> None:
        execution_id, _ = await gated_run(remote, agents)
        await remote.json("cancel", execution_id)

        plain = await remote("watch", execution_id)
        as_json = await remote("watch", execution_id, "--json")

        assert plain.code == 3, plain
        assert "Status: cancelled (cancelled by request)" in plain.out
        assert as_json.code == 3, as_json
        assert json.loads(as_json.out.splitlines()[-1])["data"]["status"] == (
            "cancelled"
        )

    async def test_cancel_of_a_finished_execution_is_refused_with_exit_code_1(
        self, cli: Cli
    ) -> None:
        execution_id = (await cli.json(BUG_TASK, "--dry-run"))["execution"]["id"]

        outcome = await cli("cancel", execution_id)

        assert outcome.code == 1, outcome
        assert "only an accepted or running execution can be cancelled" in outcome.err
        assert "(execution_conflict)" in outcome.err
