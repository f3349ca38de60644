"""The parallel-exec console script, run as a user runs it: in-process or remote.

Every command is the real script in a child process. In-process, it works on
its own SQLite file; remotely (``--server``), on a real service process on
127.0.0.1 with a database of its own. Both offer the profiles of
``write_profiles``: ``failing`` (the builder agent exits 3, the rest are
simulated), ``gated`` (every agent waits until the test opens a gate) and
``missing`` (its command does not exist) and ``spending`` (every agent reports
500 tokens costing 0.5).
"""

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.invariants import check_invariants
from tests.runners.processes import PATIENCE_SECONDS, is_running
from tests.serving import ServiceProcess

PARALLEL_EXEC = Path(sys.executable).parent / "parallel-exec"
AGENT = Path(__file__).parent / "agent.py"
ANSI = re.compile(r"\x1b[\[\]]")
LOGIN_TASK = "Implement login feature with UI, backend, and tests"
LOGIN_STEPS = [
    "explore-domain",
    "explore-tests",
    "explore-patterns",
    "architect-design",
    "builder-backend",
    "ui-frontend",
    "docs-update",
    "quality-backend",
    "quality-ui",
    "reviewer-final",
]
BUG_TASK = "Fix bug in node X"
BUG_STEPS = [
    "explore-cause",
    "explore-tests",
    "builder-fix",
    "quality-fix",
    "reviewer-final",
]
# a command that does not exist, named with what rich would read as markup
MISSING_AGENT = "[/]no-such-agent"
# variables that would make rich draw for a terminal, or point the CLI elsewhere
OUTSIDE_VARIABLES = {"FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "COLUMNS", "LINES"}


@dataclass
class Outcome:
    """How a command ended: its exit code and what it printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def step_lines(self, what: str) -> dict[str, str]:
        """The plain progress lines saying ``what`` (e.g. succeeded), by step id."""
        lines = {}
        for line in self.out.splitlines():
            words = line.split("] ", 1)[-1].split()
            if (
                line.startswith("[")
                and words[0] != "execution"
                and words[1:2] == [what]
            ):
                lines[words[0]] = line
        return lines


@dataclass
class Agents:
    """Where the gated agents wait, and the gate a test opens to let them finish."""

    folder: Path

    @property
    def gate(self) -> Path:
        return self.folder / "gate"

    @property
    def running(self) -> Path:
        return self.folder / "running"

    def open_gate(self) -> None:
        self.gate.touch()

    def pids(self) -> list[int]:
        """The agents that started and have not finished by themselves."""
        return [int(marker.name) for marker in self.running.iterdir()]

    async def wait_until_running(self, count: int) -> None:
        """Wait until ``count`` agents wait at the gate."""
        async with asyncio.timeout(PATIENCE_SECONDS):
            while sum(is_running(pid) for pid in self.pids()) < count:
                await asyncio.sleep(0.02)


@dataclass
class Running:
    """A command still running; its output read a line at a time."""

    child: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    async def read_until(self, text: str) -> str:
        """Read output lines until one holds ``text``; that line."""
        assert self.child.stdout is not None
        async with asyncio.timeout(PATIENCE_SECONDS):
            while True:
                line = (await self.child.stdout.readline()).decode()
                assert line, f"the command ended before printing {text!r}:\n" + (
                    "".join(self.lines)
                )
                self.lines.append(line)
                if text in line:
                    return line

    async def finish(self) -> Outcome:
        """Wait for the command to end by itself; everything it printed."""
        async with asyncio.timeout(PATIENCE_SECONDS):
            out, err = await self.child.communicate()
        code = self.child.returncode
        assert code is not None
        printed = "".join(self.lines) + (out or b"").decode()
        return Outcome(code, printed, err.decode())

    async def stop(self) -> None:
        """End the command if it still runs (test clean-up)."""
        if self.child.returncode is None:
            self.child.kill()
        await self.child.communicate()


@dataclass
class Cli:
    """The console script with the environment of one test, in-process or remote."""

    folder: Path
    env: dict[str, str]
    server: str | None = None
    started: list[Running] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        return [
            str(PARALLEL_EXEC),
            *args,
            *(["--server", self.server] if self.server else []),
        ]

    async def __call__(self, *args: str) -> Outcome:
        """Run a command to its end."""
        return await (await self.start(*args)).finish()

    async def start(self, *args: str, stdout: int = asyncio.subprocess.PIPE) -> Running:
        """Start a command and return at once."""
        child = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.folder,
            preexec_fn=interruptible,
        )
        running = Running(child)
        self.started.append(running)
        return running

    async def start_unread(self, *args: str) -> Running:
        """Start a command whose output no one reads: its reader has gone."""
        reading, writing = os.pipe()
        os.close(reading)
        try:
            return await self.start(*args, stdout=writing)
        finally:
            os.close(writing)

    async def json(self, *args: str) -> Any:
        """Run a command with --json, expecting it to succeed; what it printed."""
        outcome = await self(*args, "--json")
        assert outcome.code == 0, outcome
        return outcome.json()


def interruptible() -> None:
    """In a child before it starts: Ctrl-C (SIGINT) works as in a terminal.

    A shell starts a background job with SIGINT ignored, and children inherit
    that; a test suite run that way would otherwise see no Ctrl-C arrive.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def gated_run(cli: Cli, agents: Agents) -> tuple[str, Running]:
    """A run whose first two steps wait at the gate; its id and its command."""
    run = await cli.start(BUG_TASK, "--profile", "gated")
    execution_id = (await run.read_until(" accepted")).split()[1]
    await agents.wait_until_running(2)
    return execution_id, run


def write_profiles(folder: Path, agents: Agents) -> Path:
    """The profiles file of the CLI tests (see the module docstring)."""
    agent = [sys.executable, str(AGENT)]
    gated = {
        "CLI_TEST_GATE": str(agents.gate),
        "CLI_TEST_RUNNING": str(agents.running),
    }
    path = folder / "profiles.toml"
    path.write_text(
        "[profiles.failing]\n"
        'runner = "simulated"\n'
        "[profiles.failing.agents.builder]\n"
        'runner = "command"\n'
        f"command = {json.dumps(agent)}\n"
        'env = { CLI_TEST_EXIT = "3" }\n'
        "\n"
        "[profiles.gated]\n"
        'runner = "command"\n'
        f"command = {json.dumps(agent)}\n"
        f"env = {_inline_table(gated)}\n"
        "\n"
        "[profiles.missing]\n"
        'runner = "command"\n'
        f"command = {json.dumps([str(folder / MISSING_AGENT)])}\n"
        "\n"
        "[profiles.spending]\n"
        'runner = "command"\n'
        f"command = {json.dumps(agent)}\n"
        'env = { CLI_TEST_USAGE = "1" }\n'
    )
    return path


def _inline_table(values: dict[str, str]) -> str:
    pairs = ", ".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    return "{ " + pairs + " }"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def cli_env(folder: Path, profiles: Path, **settings: str) -> dict[str, str]:
    """The environment of an in-process CLI: its own database, quick steps."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PX_") and name not in OUTSIDE_VARIABLES
    }
    return env | {
        "PX_DATABASE_URL": sqlite_url(folder / "cli.db"),
        "PX_PROFILES_PATH": str(profiles),
        "PX_WORKDIR_ROOT": str(folder / "cli-runs"),
        "PX_SIMULATED_TIME_SCALE": "0.01",
        "PX_LOG_LEVEL": "WARNING",
        **settings,
    }


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    made = Agents(tmp_path / "agents")
    made.running.mkdir(parents=True)
    yield made
    made.open_gate()  # no agent waits on after its test


@pytest.fixture
def profiles(tmp_path: Path, agents: Agents) -> Path:
    return write_profiles(tmp_path, agents)


@pytest.fixture
async def local(tmp_path: Path, profiles: Path) -> AsyncIterator[Cli]:
    """The CLI in-process, on a SQLite file of its own."""
    cli = Cli(tmp_path, cli_env(tmp_path, profiles))
    yield cli
    for running in cli.started:
        await running.stop()
    if (tmp_path / "cli.db").exists():
        await check_invariants(cli.env["PX_DATABASE_URL"])


@pytest.fixture
async def service_process(
    tmp_path: Path, profiles: Path, agents: Agents
) -> AsyncIterator[ServiceProcess]:
    """A real service process on 127.0.0.1 with the test profiles."""
    database_url = sqlite_url(tmp_path / "service.db")
    process = ServiceProcess(
        database_url, tmp_path, {"PX_PROFILES_PATH": str(profiles)}
    )
    try:
        yield await process.start()
        agents.open_gate()
        await process.terminate()
    finally:
        process.stop()
    await check_invariants(database_url)


@pytest.fixture
def remote(local: Cli, service_process: ServiceProcess) -> Cli:
    """The CLI with --server pointing at the service process."""
    return Cli(local.folder, local.env, service_process.url, local.started)


@pytest.fixture(params=["in-process", "remote"])
def cli(request: pytest.FixtureRequest) -> Cli:
    """Each test that takes this runs once in-process and once against a service."""
    return request.getfixturevalue(
        "local" if request.param == "in-process" else "remote"
    )
