"""The CLI among other processes: serve, signals, closed pipes, keys, a lost service."""

import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cli.conftest import (
    BUG_TASK,
    PARALLEL_EXEC,
    Agents,
    Cli,
    cli_env,
    gated_run,
    interruptible,
    sqlite_url,
)
from tests.runners.processes import wait_until_gone
from tests.serving import ServiceProcess, free_port

API_KEY = "cli-test-key"


@pytest.fixture
async def served(tmp_path: Path, profiles: Path) -> AsyncIterator[ServiceProcess]:
    """`parallel-exec serve` on a free port of 127.0.0.1, ready for requests."""
    service = ServiceProcess(sqlite_url(tmp_path / "served.db"), tmp_path)
    env = cli_env(tmp_path, profiles, PX_LOG_LEVEL="INFO")
    with open(tmp_path / f"service-{service.port}.log", "wb") as log:
        service.child = subprocess.Popen(
            [
                str(PARALLEL_EXEC),
                "serve",
                "--port",
                str(service.port),
                "--host",
                "127.0.0.1",
                "--database-url",
                service.database_url,
            ],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=interruptible,
        )
    try:
        await service.ready()
        yield service
    finally:
        service.stop()


@pytest.fixture
async def keyed_service(
    tmp_path: Path, profiles: Path
) -> AsyncIterator[ServiceProcess]:
    """A service process that wants the API key on every request."""
    service = ServiceProcess(
        sqlite_url(tmp_path / "keyed.db"),
        tmp_path,
        {"PX_PROFILES_PATH": str(profiles), "PX_API_KEY": API_KEY},
    )
    try:
        yield await service.start()
        await service.terminate()
    finally:
        service.stop()


class TestServe:
    async def test_serve_answers_requests_and_exits_0_on_sigterm(
        self, served: ServiceProcess, local: Cli
    ) -> None:
        assert await served.get("/readyz") == {"status": "ready", "database": "ok"}
        remote = Cli(local.folder, local.env, served.url)
        assert (await remote.json(BUG_TASK))["execution"]["status"] == "succeeded"

        assert await served.terminate() == 0, served.log
        assert "service.stopped" in served.log
        assert "Traceback" not in served.log

    async def test_the_database_url_option_wins_over_the_environment(
        self, served: ServiceProcess, tmp_path: Path
    ) -> None:
        assert await served.terminate() == 0, served.log

        assert (tmp_path / "served.db").exists()
        assert not (tmp_path / "cli.db").exists()  # PX_DATABASE_URL of the env

    async def test_ctrl_c_stops_serve_with_exit_code_130_and_no_traceback(
        self, served: ServiceProcess
    ) -> None:
        assert served.child is not None
        served.child.send_signal(signal.SIGINT)

        assert served.child.wait(timeout=60) == 130, served.log
        assert "service.stopped" in served.log
        assert "Traceback" not in served.log

    async def test_serve_refuses_arguments_it_does_not_know(self, local: Cli) -> None:
        outcome = await local("serve", "--workers", "2")

        assert outcome.code == 2, outcome
        assert "unrecognized arguments: --workers 2" in outcome.err


class TestCtrlC:
    async def test_ctrl_c_cancels_the_in_process_run_and_exits_130(
        self, local: Cli, agents: Agents
    ) -> None:
        execution_id, run = await gated_run(local, agents)

        run.child.send_signal(signal.SIGINT)
        outcome = await run.finish()

        assert outcome.code == 130, outcome
        assert outcome.err == "parallel-exec: interrupted\n"
        for pid in agents.pids():
            assert await wait_until_gone(pid), f"agent {pid} outlived the CLI"
        report = await local.json("show", execution_id)
        assert report["execution"]["status"] == "cancelled"
        assert {step["status"] for step in report["plan"]["steps"]} == {
            "cancelled",
            "skipped",
        }
        assert (await local("watch", execution_id)).code == 3

    async def test_ctrl_c_of_a_remote_run_cancels_it_on_the_service(
        self, remote: Cli, agents: Agents, service_process: ServiceProcess
    ) -> None:
        execution_id, run = await gated_run(remote, agents)

        run.child.send_signal(signal.SIGINT)
        outcome = await run.finish()

        assert outcome.code == 130, outcome
        assert outcome.err == "parallel-exec: interrupted\n"
        execution = await service_process.wait_finished(execution_id)
        assert execution["status"] == "cancelled"

    async def test_ctrl_c_of_watch_leaves_the_execution_running(
        self, remote: Cli, agents: Agents, service_process: ServiceProcess
    ) -> None:
        execution_id, run = await gated_run(remote, agents)
        watch = await remote.start("watch", execution_id)
        await watch.read_until("explore-tests   started")

        watch.child.send_signal(signal.SIGINT)
        watched = await watch.finish()

        assert watched.code == 130, watched
        assert (await service_process.get(f"/executions/{execution_id}"))["status"] == (
            "running"
        )
        agents.open_gate()
        assert (await run.finish()).code == 0


class TestStopSignals:
    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
    async def test_a_stop_signal_cancels_the_run_and_exits_128_plus_its_number(
        self, cli: Cli, agents: Agents, signum: signal.Signals
    ) -> None:
        execution_id, run = await gated_run(cli, agents)

        run.child.send_signal(signum)
        outcome = await run.finish()

        assert outcome.code == 128 + signum, outcome
        assert outcome.err == f"parallel-exec: stopped by {signum.name}\n"
        report = await cli.json("show", execution_id)
        assert report["execution"]["status"] == "cancelled"


class TestClosedOutput:
    async def test_a_run_no_one_reads_is_cancelled_and_ends_with_141(
        self, cli: Cli, agents: Agents
    ) -> None:
        outcome = await (
            await cli.start_unread(BUG_TASK, "--profile", "gated")
        ).finish()

        assert outcome.code == 141, outcome
        assert outcome.err == ""
        (execution,) = (await cli.json("list"))["items"]
        assert execution["status"] == "cancelled"
        for pid in agents.pids():
            assert await wait_until_gone(pid), f"agent {pid} outlived the CLI"

    @pytest.mark.parametrize("json", [[], ["--json"]])
    async def test_watch_no_one_reads_ends_with_141_leaving_the_execution_be(
        self, remote: Cli, agents: Agents, json: list[str]
    ) -> None:
        execution_id, run = await gated_run(remote, agents)

        watch = await remote.start_unread("watch", execution_id, *json)
        outcome = await watch.finish()

        assert outcome.code == 141, outcome
        assert outcome.err == ""
        agents.open_gate()
        assert (await run.finish()).code == 0

    @pytest.mark.parametrize(
        "command", [["watch"], ["watch", "--json"], ["show"], ["show", "--json"]]
    )
    async def test_a_command_no_one_reads_ends_with_141_and_says_nothing(
        self, cli: Cli, command: list[str]
    ) -> None:
        execution_id = (await cli.json(BUG_TASK))["execution"]["id"]

        running = await cli.start_unread(command[0], execution_id, *command[1:])
        outcome = await running.finish()

        assert outcome.code == 141, outcome
        assert outcome.err == ""


class TestUnreachableService:
    @pytest.mark.parametrize(
        "command",
        [[BUG_TASK], [BUG_TASK, "--dry-run"], ["list"], ["show", "x"], ["watch", "x"]]
        + [["cancel", "x"]],
    )
    async def test_a_closed_port_exits_4_with_one_line_and_no_traceback(
        self, local: Cli, command: list[str]
    ) -> None:
        closed = f"http://127.0.0.1:{free_port()}"

        outcome = await Cli(local.folder, local.env, closed)(*command)

        assert outcome.code == 4, outcome
        assert outcome.err.startswith(
            f"parallel-exec: cannot reach the service at {closed}: "
        )
        assert outcome.err.count("\n") == 1
        assert outcome.out == ""

    async def test_the_service_may_be_named_by_px_server(
        self, local: Cli, service_process: ServiceProcess
    ) -> None:
        cli = Cli(local.folder, local.env | {"PX_SERVER": service_process.url})

        report = await cli.json(BUG_TASK, "--dry-run")

        execution = await service_process.get(
            f"/executions/{report['execution']['id']}"
        )
        assert execution["status"] == "planned"
        assert not (local.folder / "cli.db").exists()


class TestDatabaseInUse:
    async def test_a_second_in_process_command_exits_4_while_a_run_holds_sqlite(
        self, local: Cli, agents: Agents
    ) -> None:
        _, run = await gated_run(local, agents)

        outcome = await local("list")

        assert outcome.code == 4, outcome
        assert "is in use by another parallel-exec process" in outcome.err
        assert "Traceback" not in outcome.err
        agents.open_gate()
        assert (await run.finish()).code == 0


class TestApiKey:
    async def test_a_command_without_the_key_is_refused_with_exit_code_1(
        self, local: Cli, keyed_service: ServiceProcess
    ) -> None:
        cli = Cli(local.folder, local.env, keyed_service.url)

        for arguments in (["list"], ["list", "--api-key", "wrong"]):
            outcome = await cli(*arguments)
            assert outcome.code == 1, outcome
            assert outcome.err == (
                "parallel-exec: missing or wrong X-API-Key header (unauthorized)\n"
            )

    async def test_the_key_may_be_given_as_an_option_or_by_px_api_key(
        self, local: Cli, keyed_service: ServiceProcess
    ) -> None:
        by_option = Cli(local.folder, local.env, keyed_service.url)
        by_env = Cli(
            local.folder, local.env | {"PX_API_KEY": API_KEY}, by_option.server
        )

        first = await by_option(BUG_TASK, "--api-key", API_KEY)
        second = await by_env(BUG_TASK)
        watched = await by_env("watch", first.out.split()[1])

        for outcome in (first, second, watched):
            assert outcome.code == 0, outcome
            assert "Status: succeeded" in outcome.out
