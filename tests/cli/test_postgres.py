"""In-process commands on PostgreSQL: several CLI processes share one database."""

from collections.abc import AsyncIterator

import pytest

from tests.cli.conftest import BUG_STEPS, BUG_TASK, Agents, Cli, gated_run
from tests.invariants import check_invariants


@pytest.fixture
async def shared(local: Cli, database_url: str) -> AsyncIterator[Cli]:
    """The in-process CLI on the test PostgreSQL database."""
    yield Cli(local.folder, local.env | {"PX_DATABASE_URL": database_url})
    await check_invariants(database_url)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
class TestSharedDatabase:
    async def test_another_command_may_cancel_a_run_in_process_elsewhere(
        self, shared: Cli, agents: Agents
    ) -> None:
        execution_id, run = await gated_run(shared, agents)

        listed = await shared.json("list", "--status", "running")
        cancelled = await shared("cancel", execution_id)
        outcome = await run.finish()

        assert [item["id"] for item in listed["items"]] == [execution_id]
        assert cancelled.code == 0, cancelled
        assert outcome.code == 3, outcome
        assert "Status: cancelled (cancelled by request)" in outcome.out

    async def test_another_command_may_watch_a_run_in_process_elsewhere(
        self, shared: Cli, agents: Agents
    ) -> None:
        execution_id, run = await gated_run(shared, agents)

        watch = await shared.start("watch", execution_id)
        await watch.read_until("explore-tests   started")
        agents.open_gate()
        watched = await watch.finish()

        assert watched.code == 0, watched
        assert set(watched.step_lines("succeeded")) == set(BUG_STEPS)
        assert (await run.finish()).code == 0
        assert (await shared.json("show", execution_id))["execution"]["status"] == (
            "succeeded"
        )

    async def test_a_run_and_its_report_work_as_on_sqlite(self, shared: Cli) -> None:
        report = await shared.json(BUG_TASK, "--parallel", "false")

        assert report["execution"]["status"] == "succeeded"
        assert await shared.json("show", report["execution"]["id"]) == report
