"""What the CLI draws: plain lines into a pipe, progress bars on a terminal."""

import asyncio
import os
import pty
import re
import select
import subprocess
import termios
import time

from tests.cli.conftest import (
    ANSI,
    BUG_TASK,
    LOGIN_STEPS,
    LOGIN_TASK,
    MISSING_AGENT,
    Cli,
)
from tests.runners.processes import PATIENCE_SECONDS

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TERMINAL_SIZE = (50, 200)  # rows, columns: wide enough that no figure wraps


def run_in_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    """Run a command on a pseudo-terminal; its exit code and all it wrote."""
    leader, follower = pty.openpty()
    termios.tcsetwinsize(follower, TERMINAL_SIZE)
    child = subprocess.Popen(
        cli.argv(*args),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=cli.env | {"TERM": "xterm-256color"},
        cwd=cli.folder,
    )
    os.close(follower)
    written = bytearray()
    deadline = time.monotonic() + PATIENCE_SECONDS
    try:
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command has ended and closed the terminal
                break
            if not chunk:
                break
            written += chunk
        else:
            raise AssertionError(f"the command did not end:\n{written.decode()}")
        return child.wait(timeout=PATIENCE_SECONDS), written.decode()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)


def as_seen(drawn: str) -> str:
    """The terminal output without its escape codes and carriage returns."""
    return ESCAPE.sub("", drawn).replace("\r", "")


class TestPlainOutput:
    async def test_nothing_written_to_a_pipe_holds_escape_codes(self, cli: Cli) -> None:
        run = await cli(LOGIN_TASK)
        execution_id = run.out.split()[1]
        outcomes = [
            run,
            await cli(LOGIN_TASK, "--dry-run"),
            await cli(LOGIN_TASK, "--profile", "failing"),
            await cli("list"),
            await cli("show", execution_id),
            await cli("watch", execution_id),
            await cli("show", "no-such-id"),
        ]

        for outcome in outcomes:
            assert not ANSI.search(outcome.out + outcome.err), outcome

    async def test_each_step_line_gives_the_seconds_since_the_start(
        self, cli: Cli
    ) -> None:
        outcome = await cli(LOGIN_TASK)

        started = outcome.step_lines("started")
        succeeded = outcome.step_lines("succeeded")
        for step in LOGIN_STEPS:
            assert re.fullmatch(rf"\[ *\d+\.\d\ds\] {step} +started", started[step])
            assert re.fullmatch(
                rf"\[ *\d+\.\d\ds\] {step} +succeeded  \d+\.\d\d s", succeeded[step]
            )


class TestTerminalOutput:
    async def test_a_run_draws_a_bar_per_phase_and_ends_with_the_figures(
        self, cli: Cli
    ) -> None:
        code, drawn = await asyncio.to_thread(run_in_terminal, cli, LOGIN_TASK)
        seen = as_seen(drawn)

        assert code == 0, seen
        assert ESCAPE.search(drawn), "nothing was drawn for a terminal"
        last_bars = seen[seen.rindex("Phase 1 ") :]
        for bar in (
            "Phase 1 (3 steps in parallel)",
            "3/3",
            "Phase 2 ",
            "1/1",
            "Phase 3 (3 steps in parallel)",
            "Phase 4 (2 steps in parallel)",
            "2/2",
            "Phase 5 ",
        ):
            assert bar in last_bars, bar
        assert "0/" not in last_bars
        assert "✓ explore-domain" in seen
        figures = seen.rstrip().splitlines()[-4:]
        assert figures[0] == "Status: succeeded"
        assert figures[-1].startswith("Critical path taken: ")
        assert "Traceback" not in seen

    async def test_watch_draws_the_bars_of_a_finished_execution(self, cli: Cli) -> None:
        execution_id = (await cli.json(BUG_TASK, "--parallel", "false"))["execution"][
            "id"
        ]

        code, drawn = await asyncio.to_thread(
            run_in_terminal, cli, "watch", execution_id
        )
        seen = as_seen(drawn)

        assert code == 0, seen
        assert "Phase 1 (2 steps, one at a time)" in seen
        assert seen.rstrip().splitlines()[-1].startswith("Critical path taken: ")

    async def test_an_agent_error_with_brackets_is_shown_as_written(
        self, cli: Cli
    ) -> None:
        code, drawn = await asyncio.to_thread(
            run_in_terminal, cli, BUG_TASK, "--profile", "missing"
        )
        seen = as_seen(drawn)

        assert code == 1, seen
        assert f"command not found: {cli.folder / MISSING_AGENT}" in seen
        assert "Traceback" not in seen
        assert re.search(r"Status: failed \(step explore-\w+ failed\)", seen)
