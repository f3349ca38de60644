"""The command runner's result formats, with a stand-in coding-agent CLI."""

import asyncio
import hashlib
import json
import sys
from pathlib import Path

import pytest

from app.runners.base import RunFailed, Usage
from app.runners.command import CommandRunner
from tests.runners.processes import PATIENCE_SECONDS

CLI_SCRIPT = Path(__file__).parent / "agents" / "coding_agent_cli.py"
CLI_PROGRESS = ["wrote cli-work.txt", "finished"]


@pytest.fixture
def workdir_root(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def make_cli_runner(workdir_root):
    """Build a runner that reads the stand-in CLI's result; args go to the CLI."""

    def make(*cli_args: str, argv=None, **overrides) -> CommandRunner:
        options = {
            "workdir_root": workdir_root,
            "max_output_bytes": 256 * 1024,
            "max_log_line_bytes": 4096,
            "kill_grace_seconds": 1.0,
            "result_format": "claude",
            **overrides,
        }
        argv = argv or [sys.executable, str(CLI_SCRIPT), *cli_args]
        return CommandRunner(argv, **options)

    return make


@pytest.fixture
def run_cli(make_cli_runner, make_context, progress):
    """Run one step through the stand-in CLI, failing the test if it hangs."""

    async def run(*cli_args: str, **overrides):
        runner = make_cli_runner(*cli_args, **overrides)
        async with asyncio.timeout(PATIENCE_SECONDS):
            return await runner.run(make_context("Add a login endpoint"), progress)

    return run


def result_line(**fields) -> str:
    return json.dumps({"type": "result", "subtype": "success", **fields})


class TestResultFormatOption:
    def test_an_unknown_format_is_refused_naming_the_known_ones(self, workdir_root):
        with pytest.raises(ValueError, match="one of parallel-exec, claude, not 'x'"):
            CommandRunner(
                ["agent"],
                workdir_root=workdir_root,
                max_output_bytes=1024,
                max_log_line_bytes=1024,
                kill_grace_seconds=1.0,
                result_format="x",
            )

    def test_the_default_format_is_the_service_protocol(self, workdir_root):
        runner = CommandRunner(
            ["agent"],
            workdir_root=workdir_root,
            max_output_bytes=1024,
            max_log_line_bytes=1024,
            kill_grace_seconds=1.0,
        )

        assert runner.result_format == "parallel-exec"


class TestClaudeResult:
    async def test_the_result_text_is_the_output(self, run_cli):
        result = await run_cli("--result", "Added POST /login with tests.")

        assert result.output == "Added POST /login with tests."
        assert result.state_updates == {}

    async def test_the_tokens_and_the_cost_are_the_usage(self, run_cli):
        result = await run_cli(
            "--input-tokens", "1500", "--output-tokens", "320", "--cost", "0.0456"
        )

        assert result.usage == Usage(input_tokens=1500, output_tokens=320, cost=0.0456)

    async def test_cache_writes_and_reads_count_as_input_tokens(self, run_cli):
        result = await run_cli(
            "--input-tokens",
            "100",
            "--cache-creation-tokens",
            "2000",
            "--cache-read-tokens",
            "30000",
        )

        assert result.usage.input_tokens == 32100
        assert result.usage.output_tokens == 45

    async def test_a_result_without_usage_or_cost_has_no_usage(self, run_cli):
        result = await run_cli("--no-usage")

        assert result.usage is None
        assert result.output.startswith("Done.")

    async def test_a_pretty_printed_result_after_progress_lines_is_read(
        self, run_cli, progress
    ):
        result = await run_cli("--pretty", "--result", "pretty done")

        assert result.output == "pretty done"
        assert result.usage == Usage(input_tokens=120, output_tokens=45, cost=0.0123)
        assert progress.lines[3] == "{"

    async def test_a_pretty_printed_result_that_is_all_of_stdout_is_read(
        self, run_cli, progress
    ):
        result = await run_cli("--pretty", "--quiet", "--result", "pretty done")

        assert result.output == "pretty done"
        assert progress.lines[0] == "{"

    async def test_a_result_object_that_is_all_of_stdout_is_read(self, run_cli):
        text = '{"type": "result",\n "subtype": "success",\n "result": "spread"}\n'
        argv = [sys.executable, "-c", f"import sys; sys.stdout.write({text!r})"]

        result = await run_cli(argv=argv)

        assert result.output == "spread"

    async def test_lines_after_the_result_line_do_not_hide_it(self, run_cli):
        result = await run_cli(
            "--result",
            "found it",
            "--after",
            "bye",
            "--after",
            json.dumps({"type": "system", "subtype": "shutdown"}),
        )

        assert result.output == "found it"

    async def test_the_last_of_two_result_lines_is_the_result(self, run_cli):
        second = result_line(is_error=False, result="second")

        result = await run_cli("--result", "first", "--after", second)

        assert result.output == "second"
        assert result.usage is None

    async def test_the_result_file_is_not_read(self, run_cli):
        script = (
            """echo '{"output": "from the file"}' > "$PX_RESULT_FILE"\n"""
            f"echo '{result_line(is_error=False, result='from stdout')}'"
        )

        result = await run_cli(argv=["/bin/sh", "-c", script])

        assert result.output == "from stdout"


class TestClaudeFailures:
    async def test_is_error_fails_the_run_with_the_result_text(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--fail", "--result", "API Error: 529 overloaded")

        assert failure.value.message == "API Error: 529 overloaded"
        assert failure.value.usage == Usage(
            input_tokens=120, output_tokens=45, cost=0.0123
        )
        assert failure.value.details["subtype"] == "success"
        assert failure.value.details["session_id"]

    async def test_an_error_subtype_fails_the_run_naming_it(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--subtype", "error_max_turns", "--no-text")

        assert failure.value.message == "error_max_turns"
        assert failure.value.details["subtype"] == "error_max_turns"
        assert failure.value.usage.output_tokens == 45

    async def test_an_error_result_before_a_non_zero_exit_gives_the_message(
        self, run_cli
    ):
        with pytest.raises(RunFailed) as failure:
            await run_cli(
                "--fail", "--result", "gave up", "--exit-code", "1", "--stderr", "boom"
            )

        assert failure.value.message == "gave up"
        assert failure.value.details["exit_code"] == 1
        assert failure.value.details["stderr_tail"] == "boom\n"
        assert failure.value.usage.input_tokens == 120

    async def test_a_non_zero_exit_after_a_success_result_still_fails(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--exit-code", "2")

        assert failure.value.message == "command exited with code 2"
        assert failure.value.details["exit_code"] == 2
        assert failure.value.usage.cost == 0.0123

    async def test_a_non_zero_exit_without_a_result_fails_with_its_code(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli(
                "--no-result", "--exit-code", "3", "--stderr", "not logged in"
            )

        assert failure.value.message == "command exited with code 3"
        assert failure.value.details["stderr_tail"] == "not logged in\n"
        assert failure.value.usage is None

    async def test_a_cli_that_exits_0_without_a_result_fails(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--no-result", "--stderr", "no session")

        assert failure.value.message == "the CLI printed no JSON result"
        assert failure.value.details["stderr_tail"] == "no session\n"

    @pytest.mark.parametrize("quiet", [[], ["--quiet"]])
    async def test_a_json_object_of_another_type_is_no_result(self, run_cli, quiet):
        # with --quiet the object is all of stdout, as a pretty one would be
        other = json.dumps({"type": "assistant", "result": "not the result"})

        with pytest.raises(RunFailed, match="the CLI printed no JSON result"):
            await run_cli("--no-result", *quiet, "--after", other)

    async def test_a_bad_token_count_fails_the_run_naming_it(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--bad-count", "-5")

        assert failure.value.message == (
            "CLI result 'usage.input_tokens' is not a non-negative integer: -5"
        )

    async def test_a_bad_cost_fails_the_run_naming_it(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--cost", "-1")

        assert failure.value.message == (
            "CLI result 'total_cost_usd' is not a non-negative number: -1.0"
        )

    async def test_a_result_that_is_not_text_fails_the_run(self, run_cli):
        with pytest.raises(RunFailed) as failure:
            await run_cli("--raw-result", '{"files": 2}')

        assert failure.value.message == "CLI result has no 'result' text"
        assert failure.value.usage.output_tokens == 45


class TestClaudeRun:
    async def test_stdout_lines_are_reported_as_progress(
        self, run_cli, make_context, progress
    ):
        prompt_bytes = len(make_context("Add a login endpoint").prompt().encode())

        await run_cli()

        assert progress.lines[:3] == [
            f"reading the prompt ({prompt_bytes} bytes)",
            *CLI_PROGRESS,
        ]
        assert json.loads(progress.lines[3])["type"] == "result"
        assert len(progress.lines) == 4

    async def test_the_prompt_arrives_on_stdin(self, run_cli, make_context):
        prompt = make_context("Add a login endpoint").prompt()
        digest = hashlib.sha256(prompt.encode()).hexdigest()

        result = await run_cli()

        assert result.output == f"Done. prompt sha256:{digest}"

    async def test_the_cli_works_in_the_run_folder(
        self, run_cli, make_context, workdir_root
    ):
        await run_cli()

        work = workdir_root / "exec-1" / "build-api-1" / "cli-work.txt"
        assert work.read_text() == make_context("Add a login endpoint").prompt()

    async def test_a_result_line_longer_than_a_progress_line_is_read_whole(
        self, run_cli, progress
    ):
        text = "r" * 1000

        result = await run_cli("--result", text, max_log_line_bytes=128)

        assert result.output == text
        assert progress.lines[-1].endswith("[line cut at 128 bytes]")

    async def test_cancelling_the_run_stops_the_cli(
        self, make_cli_runner, make_context, progress
    ):
        runner = make_cli_runner("--sleep", "3600")
        run = asyncio.create_task(runner.run(make_context("slow"), progress))
        await progress.wait_for_line("wrote cli-work.txt")

        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(PATIENCE_SECONDS):
                await run

        assert "finished" not in progress.lines
