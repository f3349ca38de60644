import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from app.runners.base import RunFailed, Usage
from app.runners.command import STDERR_TAIL_BYTES, CommandRunner
from tests.runners.processes import (
    PATIENCE_SECONDS,
    read_pid,
    wait_until_gone,
)

STAND_IN_SERVICE = Path(__file__).parent / "stand_in_service.py"
PROJECT_ROOT = Path(__file__).parents[2]


@pytest.fixture
def workdir_root(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def make_runner(agent_script, workdir_root):
    """Build a command runner of the test agent, with limits that can be changed."""

    def make(argv=None, **overrides) -> CommandRunner:
        options = {
            "workdir_root": workdir_root,
            "env": None,
            "max_output_bytes": 256 * 1024,
            "max_log_line_bytes": 4096,
            "kill_grace_seconds": 1.0,
            **overrides,
        }
        return CommandRunner(argv or [sys.executable, str(agent_script)], **options)

    return make


async def start_stand_in_service(
    tmp_path: Path, instructions: str
) -> asyncio.subprocess.Process:
    """Start a separate process that runs one step of the test agent, from tmp_path."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(STAND_IN_SERVICE),
        str(tmp_path / "runs"),
        "0.2",
        instructions,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
    )


async def run_agent(make_runner, make_context, progress, instructions, **overrides):
    """Run the test agent with these instructions, failing the test if it hangs."""
    runner = make_runner(**overrides)
    async with asyncio.timeout(PATIENCE_SECONDS):
        return await runner.run(make_context(instructions), progress)


class TestWorkingDirectory:
    async def test_each_run_runs_in_its_own_folder_under_the_workdir_root(
        self, make_runner, make_context, progress, workdir_root
    ):
        context = make_context("echo-cwd -", execution_id="exec-7", attempt=2)

        async with asyncio.timeout(PATIENCE_SECONDS):
            await make_runner().run(context, progress)

        expected = workdir_root.resolve() / "exec-7" / "build-api-2"
        assert progress.lines == [str(expected)]

    async def test_the_folder_holds_the_step_context_as_json(
        self, make_runner, make_context, progress, workdir_root
    ):
        context = make_context("echo done", upstream={"explore": {"files": 3}})

        async with asyncio.timeout(PATIENCE_SECONDS):
            await make_runner().run(context, progress)

        written = workdir_root / "exec-1" / "build-api-1" / "context.json"
        assert json.loads(written.read_text()) == context.as_dict()

    async def test_ids_cannot_lead_the_folder_outside_the_root(
        self, make_runner, make_context, progress, workdir_root
    ):
        context = make_context("echo-cwd -", execution_id="../../escape")

        async with asyncio.timeout(PATIENCE_SECONDS):
            await make_runner().run(context, progress)

        assert Path(progress.lines[0]).parent.parent == workdir_root.resolve()


class TestEnvironment:
    async def test_the_child_gets_the_run_variables(
        self, make_runner, make_context, progress, workdir_root
    ):
        names = [
            "PX_EXECUTION_ID",
            "PX_STEP_ID",
            "PX_RUN_ID",
            "PX_ATTEMPT",
            "PX_AGENT",
            "PX_WORKDIR",
            "PX_CONTEXT_FILE",
            "PX_RESULT_FILE",
        ]
        instructions = "\n".join(f"echo-env {name}" for name in names)

        await run_agent(make_runner, make_context, progress, instructions)

        workdir = workdir_root.resolve() / "exec-1" / "build-api-1"
        assert progress.lines == [
            "PX_EXECUTION_ID=exec-1",
            "PX_STEP_ID=build-api",
            "PX_RUN_ID=run-1",
            "PX_ATTEMPT=1",
            "PX_AGENT=builder",
            f"PX_WORKDIR={workdir}",
            f"PX_CONTEXT_FILE={workdir / 'context.json'}",
            f"PX_RESULT_FILE={workdir / 'result.json'}",
        ]

    async def test_the_child_gets_the_profile_env_and_the_service_env(
        self, make_runner, make_context, progress, monkeypatch
    ):
        monkeypatch.setenv("SERVICE_ONLY", "inherited")
        instructions = "echo-env AGENT_MODE\necho-env SERVICE_ONLY"

        await run_agent(
            make_runner, make_context, progress, instructions, env={"AGENT_MODE": "ci"}
        )

        assert progress.lines == ["AGENT_MODE=ci", "SERVICE_ONLY=inherited"]

    async def test_the_service_settings_are_not_passed_on(
        self, make_runner, make_context, progress, monkeypatch
    ):
        monkeypatch.setenv("PX_API_KEY", "service-secret")

        await run_agent(make_runner, make_context, progress, "echo-env PX_API_KEY")

        assert progress.lines == ["PX_API_KEY=<unset>"]

    async def test_the_profile_env_cannot_replace_a_run_variable(
        self, make_runner, make_context, progress
    ):
        env = {"PX_STEP_ID": "forged"}

        await run_agent(
            make_runner, make_context, progress, "echo-env PX_STEP_ID", env=env
        )

        assert progress.lines == ["PX_STEP_ID=build-api"]

    async def test_the_child_gets_the_environment_exactly_as_built(
        self, make_runner, make_context, progress, monkeypatch
    ):
        # in the C locale, a Python program between service and agent would
        # change LC_CTYPE in its own environment (PEP 538)
        monkeypatch.delenv("LC_ALL", raising=False)
        argv = ["/bin/sh", "-c", 'echo "LC_CTYPE=$LC_CTYPE"']

        await run_agent(
            make_runner, make_context, progress, "", argv=argv, env={"LC_CTYPE": "C"}
        )

        assert progress.lines == ["LC_CTYPE=C"]


class TestPrompt:
    async def test_the_prompt_arrives_on_stdin(
        self, make_runner, make_context, progress
    ):
        context = make_context("echo-stdin -")

        async with asyncio.timeout(PATIENCE_SECONDS):
            result = await make_runner().run(context, progress)

        assert result.output["stdout"] == context.prompt()

    async def test_a_child_that_never_reads_stdin_still_succeeds(
        self, make_runner, make_context, progress
    ):
        big_upstream = {"explore": "z" * (4 * 1024 * 1024)}
        context = make_context("echo ignored the prompt", upstream=big_upstream)

        async with asyncio.timeout(PATIENCE_SECONDS):
            result = await make_runner().run(context, progress)

        assert progress.lines == ["ignored the prompt"]
        assert result.output["stdout"] == "ignored the prompt\n"


class TestProgressLines:
    async def test_each_stdout_line_is_reported_while_the_child_still_runs(
        self, make_runner, make_context, progress, tmp_path
    ):
        gate = tmp_path / "gate"
        context = make_context(f"echo first\nwait-for {gate}\necho second")
        run = asyncio.create_task(make_runner().run(context, progress))

        await progress.wait_for_line("first")
        assert not run.done()
        gate.touch()
        async with asyncio.timeout(PATIENCE_SECONDS):
            await run

        assert progress.lines == ["first", "second"]

    async def test_a_long_line_is_cut_with_a_marker(
        self, make_runner, make_context, progress
    ):
        await run_agent(
            make_runner, make_context, progress, "long-line 1000", max_log_line_bytes=64
        )

        marker = " [line cut at 64 bytes]"
        assert progress.lines == ["y" * (64 - len(marker)) + marker]
        assert len(progress.lines[0].encode()) <= 64

    async def test_blank_lines_are_not_reported(
        self, make_runner, make_context, progress
    ):
        await run_agent(
            make_runner, make_context, progress, "echo one\necho  \necho two"
        )

        assert progress.lines == ["one", "two"]


class TestOutputCapture:
    async def test_plain_stdout_becomes_the_output(
        self, make_runner, make_context, progress
    ):
        result = await run_agent(make_runner, make_context, progress, "echo a\necho b")

        assert result.output == {
            "stdout": "a\nb\n",
            "truncated": False,
            "stdout_bytes": 4,
        }
        assert result.state_updates == {}

    async def test_output_beyond_the_cap_is_drained_and_marked_truncated(
        self, make_runner, make_context, progress
    ):
        instructions = "flood 5000000\necho the end"

        result = await run_agent(
            make_runner, make_context, progress, instructions, max_output_bytes=4096
        )

        assert result.output["truncated"] is True
        assert len(result.output["stdout"].encode()) == 4096
        assert progress.lines[-1] == "the end"

    async def test_a_failure_keeps_the_tail_of_stderr(
        self, make_runner, make_context, progress
    ):
        instructions = "stderr-flood 100000\nstderr the last words\nexit 3"

        with pytest.raises(RunFailed) as failure:
            await run_agent(make_runner, make_context, progress, instructions)

        tail = failure.value.details["stderr_tail"]
        assert tail.endswith("the last words\n")
        assert len(tail.encode()) <= STDERR_TAIL_BYTES


class TestResult:
    async def test_a_result_file_that_is_a_fifo_fails_without_blocking(
        self, make_runner, make_context, progress
    ):
        with pytest.raises(RunFailed, match="not a regular file"):
            await asyncio.wait_for(
                run_agent(make_runner, make_context, progress, "result-fifo x"),
                timeout=60,
            )

    async def test_a_result_file_is_the_result(
        self, make_runner, make_context, progress
    ):
        instructions = 'result-file {"files": 2}\necho {"ignored": true}'

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output == {"files": 2}

    async def test_a_last_json_line_is_the_result(
        self, make_runner, make_context, progress
    ):
        instructions = 'echo working\necho {"files": 2}\necho  '

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output == {"files": 2}

    async def test_a_json_line_that_is_not_last_is_plain_output(
        self, make_runner, make_context, progress
    ):
        instructions = 'echo {"files": 2}\necho done'

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output == {
            "stdout": '{"files": 2}\ndone\n',
            "truncated": False,
            "stdout_bytes": 18,
        }

    async def test_a_json_line_that_is_not_an_object_is_plain_output(
        self, make_runner, make_context, progress
    ):
        result = await run_agent(make_runner, make_context, progress, "echo [1, 2]")

        assert result.output == {
            "stdout": "[1, 2]\n",
            "truncated": False,
            "stdout_bytes": 7,
        }

    async def test_output_and_state_keys_split_the_result(
        self, make_runner, make_context, progress
    ):
        line = json.dumps({"output": "api built", "state": {"api": "v1"}})

        result = await run_agent(make_runner, make_context, progress, f"echo {line}")

        assert result.output == "api built"
        assert result.state_updates == {"api": "v1"}

    async def test_a_state_key_alone_gives_state_and_no_output(
        self, make_runner, make_context, progress
    ):
        instructions = 'result-file {"state": {"api": "v1"}}'

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output is None
        assert result.state_updates == {"api": "v1"}

    async def test_a_result_line_after_truncated_output_is_still_read(
        self, make_runner, make_context, progress
    ):
        instructions = 'flood 100000\necho {"output": "ok"}'

        result = await run_agent(
            make_runner, make_context, progress, instructions, max_output_bytes=4096
        )

        assert result.output == "ok"

    async def test_an_invalid_result_file_fails_the_run(
        self, make_runner, make_context, progress
    ):
        instructions = "result-file {not json"

        with pytest.raises(RunFailed, match="result file is not valid JSON"):
            await run_agent(make_runner, make_context, progress, instructions)

    async def test_a_result_file_without_an_object_fails_the_run(
        self, make_runner, make_context, progress
    ):
        with pytest.raises(RunFailed, match="result file does not hold a JSON object"):
            await run_agent(make_runner, make_context, progress, "result-file [1]")

    async def test_a_state_that_is_not_an_object_fails_the_run(
        self, make_runner, make_context, progress
    ):
        instructions = 'result-file {"state": [1]}'

        with pytest.raises(RunFailed, match="'state' is not a JSON object"):
            await run_agent(make_runner, make_context, progress, instructions)

    async def test_a_result_file_from_an_earlier_attempt_is_not_reused(
        self, make_runner, make_context, progress
    ):
        await run_agent(make_runner, make_context, progress, 'result-file {"old": 1}')

        result = await run_agent(make_runner, make_context, progress, "echo fresh")

        assert result.output == {
            "stdout": "fresh\n",
            "truncated": False,
            "stdout_bytes": 6,
        }


class TestUsage:
    async def test_a_failed_run_keeps_the_usage_it_reported(
        self, make_runner, make_context, progress
    ):
        usage = {"input_tokens": 777, "output_tokens": 1}
        instructions = f"result-file {json.dumps({'usage': usage})}\nexit 3"

        with pytest.raises(RunFailed) as failure:
            await run_agent(make_runner, make_context, progress, instructions)

        assert failure.value.details["exit_code"] == 3
        assert failure.value.usage == Usage(input_tokens=777, output_tokens=1)

    async def test_a_failed_run_with_a_broken_result_has_no_usage(
        self, make_runner, make_context, progress
    ):
        instructions = "result-file not json\nexit 3"

        with pytest.raises(RunFailed) as failure:
            await run_agent(make_runner, make_context, progress, instructions)

        assert failure.value.message == "command exited with code 3"
        assert failure.value.usage is None

    async def test_a_usage_key_gives_the_usage_beside_output_and_state(
        self, make_runner, make_context, progress
    ):
        usage = {"input_tokens": 1200, "output_tokens": 340, "cost": 0.021}
        line = json.dumps(
            {"output": "api built", "state": {"api": "v1"}, "usage": usage}
        )

        result = await run_agent(make_runner, make_context, progress, f"echo {line}")

        assert result.output == "api built"
        assert result.state_updates == {"api": "v1"}
        assert result.usage == Usage(input_tokens=1200, output_tokens=340, cost=0.021)

    async def test_a_usage_key_alone_gives_usage_and_no_output(
        self, make_runner, make_context, progress
    ):
        instructions = 'result-file {"usage": {"input_tokens": 7, "output_tokens": 3}}'

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output is None
        assert result.state_updates == {}
        assert result.usage == Usage(input_tokens=7, output_tokens=3, cost=None)

    async def test_keys_left_out_or_null_are_not_reported(
        self, make_runner, make_context, progress
    ):
        line = json.dumps({"output": 1, "usage": {"output_tokens": 5, "cost": None}})

        result = await run_agent(make_runner, make_context, progress, f"echo {line}")

        assert result.usage == Usage(input_tokens=0, output_tokens=5, cost=None)

    async def test_a_whole_number_cost_is_a_cost(
        self, make_runner, make_context, progress
    ):
        line = json.dumps({"usage": {"cost": 2}})

        result = await run_agent(make_runner, make_context, progress, f"echo {line}")

        assert result.usage == Usage(cost=2.0)
        assert isinstance(result.usage.cost, float)

    async def test_a_result_without_usage_reports_none(
        self, make_runner, make_context, progress
    ):
        line = json.dumps({"output": "done"})

        result = await run_agent(make_runner, make_context, progress, f"echo {line}")

        assert result.usage is None

    async def test_a_usage_key_inside_a_plain_object_is_not_read_as_usage(
        self, make_runner, make_context, progress
    ):
        line = json.dumps({"report": {"usage": {"input_tokens": 9}}})

        result = await run_agent(make_runner, make_context, progress, f"echo {line}")

        assert result.output == {"report": {"usage": {"input_tokens": 9}}}
        assert result.usage is None

    @pytest.mark.parametrize(
        ("usage", "message"),
        [
            ([1, 2], "result 'usage' is not a JSON object"),
            ({"input_tokens": -1}, r"'usage.input_tokens' is not a non-negative int"),
            ({"output_tokens": 1.5}, r"'usage.output_tokens' is not a non-negative"),
            ({"input_tokens": "10"}, r"'usage.input_tokens' is not a non-negative"),
            ({"input_tokens": True}, r"'usage.input_tokens' is not a non-negative"),
            ({"cost": -0.5}, r"'usage.cost' is not a non-negative number: -0.5"),
            ({"cost": "free"}, r"'usage.cost' is not a non-negative number: 'free'"),
            ({"cost": False}, r"'usage.cost' is not a non-negative number"),
            ({"cost": 10**400}, r"'usage.cost' is not a non-negative number"),
        ],
    )
    async def test_a_bad_usage_value_fails_the_run_naming_it(
        self, make_runner, make_context, progress, usage, message
    ):
        line = json.dumps({"output": "built", "usage": usage})

        with pytest.raises(RunFailed, match=message):
            await run_agent(make_runner, make_context, progress, f"echo {line}")

    @pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
    async def test_a_cost_that_is_no_finite_number_fails_the_run(
        self, make_runner, make_context, progress, number
    ):
        # json.loads reads NaN and Infinity, and 1e999 as infinity
        instructions = f'result-file {{"usage": {{"cost": {number}}}}}'

        with pytest.raises(RunFailed, match="'usage.cost' is not a non-negative"):
            await run_agent(make_runner, make_context, progress, instructions)


class TestFailures:
    async def test_a_non_zero_exit_fails_with_its_code(
        self, make_runner, make_context, progress
    ):
        instructions = "stderr it broke\nexit 3"

        with pytest.raises(RunFailed) as failure:
            await run_agent(make_runner, make_context, progress, instructions)

        assert failure.value.message == "command exited with code 3"
        assert failure.value.details["exit_code"] == 3
        assert failure.value.details["stderr_tail"] == "it broke\n"

    async def test_a_death_by_signal_names_the_signal(
        self, make_runner, make_context, progress
    ):
        with pytest.raises(RunFailed) as failure:
            await run_agent(make_runner, make_context, progress, "kill-self SIGABRT")

        assert failure.value.message == "command was killed by signal SIGABRT"
        assert failure.value.details["exit_code"] == -signal.SIGABRT
        assert failure.value.details["signal"] == "SIGABRT"

    async def test_a_missing_executable_fails_naming_it(
        self, make_runner, make_context, progress, tmp_path
    ):
        missing = str(tmp_path / "no-such-agent")
        runner = make_runner(argv=[missing, "--json"])

        with pytest.raises(RunFailed, match="command not found: .*no-such-agent"):
            await runner.run(make_context(), progress)

    async def test_a_file_that_is_not_executable_fails_naming_it(
        self, make_runner, make_context, progress, tmp_path
    ):
        script = tmp_path / "agent.sh"
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o644)
        runner = make_runner(argv=[str(script)])

        with pytest.raises(RunFailed, match="command is not executable: .*agent.sh"):
            await runner.run(make_context(), progress)

    def test_an_empty_argv_is_refused(self, make_runner):
        with pytest.raises(ValueError, match="argv"):
            make_runner(argv=[""])


class TestCancellation:
    async def test_cancelling_the_run_kills_the_child_and_its_grandchildren(
        self, make_runner, make_context, progress, pid_files
    ):
        instructions = (
            f"pid-file {pid_files / 'child.pid'}\n"
            f"grandchild {pid_files / 'grandchild.pid'}\nsleep 3600"
        )
        run = asyncio.create_task(
            make_runner().run(make_context(instructions), progress)
        )
        child = await read_pid(pid_files / "child.pid")
        grandchild = await read_pid(pid_files / "grandchild.pid")

        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

        assert await wait_until_gone(child)
        assert await wait_until_gone(grandchild)

    async def test_a_wait_for_timeout_kills_the_grandchildren(
        self, make_runner, make_context, progress, pid_files
    ):
        instructions = f"grandchild {pid_files / 'grandchild.pid'}\nsleep 3600"
        run = asyncio.create_task(
            make_runner().run(make_context(instructions), progress)
        )
        grandchild = await read_pid(pid_files / "grandchild.pid")

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run, timeout=0.2)

        assert run.cancelled()
        assert await wait_until_gone(grandchild)

    async def test_an_asyncio_timeout_kills_the_grandchildren(
        self, make_runner, make_context, progress, pid_files
    ):
        pid_file = pid_files / "grandchild.pid"
        runner = make_runner()
        loop = asyncio.get_running_loop()

        async def expire_once_started(deadline: asyncio.Timeout) -> None:
            await read_pid(pid_file)
            deadline.reschedule(loop.time())

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as deadline:
                watcher = asyncio.create_task(expire_once_started(deadline))
                await runner.run(
                    make_context(f"grandchild {pid_file}\nsleep 3600"), progress
                )

        await watcher
        assert await wait_until_gone(int(pid_file.read_text()))

    async def test_processes_that_ignore_sigterm_are_killed_after_the_grace(
        self, make_runner, make_context, progress, pid_files
    ):
        instructions = (
            f"ignore-sigterm -\npid-file {pid_files / 'child.pid'}\n"
            f"grandchild {pid_files / 'grandchild.pid'}\nsleep 3600"
        )
        runner = make_runner(kill_grace_seconds=0.2)
        run = asyncio.create_task(runner.run(make_context(instructions), progress))
        child = await read_pid(pid_files / "child.pid")
        grandchild = await read_pid(pid_files / "grandchild.pid")

        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

        assert await wait_until_gone(child)
        assert await wait_until_gone(grandchild)

    async def test_output_already_sent_is_reported_before_the_cancel_ends(
        self, make_runner, make_context, progress, pid_files
    ):
        instructions = f"echo started\npid-file {pid_files / 'child.pid'}\nsleep 3600"
        run = asyncio.create_task(
            make_runner().run(make_context(instructions), progress)
        )
        await read_pid(pid_files / "child.pid")
        await progress.wait_for_line("started")

        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

        assert progress.lines == ["started"]


class TestStragglers:
    async def test_a_grandchild_holding_stdout_is_killed_once_the_child_exits(
        self, make_runner, make_context, progress, pid_files
    ):
        pid_file = pid_files / "grandchild.pid"
        instructions = f'grandchild {pid_file}\necho {{"output": "done"}}'

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output == "done"
        assert await wait_until_gone(int(pid_file.read_text()))

    async def test_a_detached_grandchild_does_not_outlive_the_run(
        self, make_runner, make_context, progress, pid_files
    ):
        pid_file = pid_files / "grandchild.pid"

        result = await run_agent(
            make_runner, make_context, progress, f"detached-grandchild {pid_file}"
        )

        assert result.output == {"stdout": "", "truncated": False, "stdout_bytes": 0}
        assert await wait_until_gone(int(pid_file.read_text()))

    async def test_a_failing_child_with_a_grandchild_still_fails(
        self, make_runner, make_context, progress, pid_files
    ):
        pid_file = pid_files / "grandchild.pid"

        with pytest.raises(RunFailed, match="exited with code 4"):
            await run_agent(
                make_runner, make_context, progress, f"grandchild {pid_file}\nexit 4"
            )

        assert await wait_until_gone(int(pid_file.read_text()))

    async def test_a_process_that_left_the_session_cannot_hold_the_run_open(
        self, make_runner, make_context, progress, pid_files
    ):
        pid_file = pid_files / "escaped.pid"
        instructions = f"escaped-grandchild {pid_file}\necho done"

        result = await run_agent(make_runner, make_context, progress, instructions)

        assert result.output == {
            "stdout": "done\n",
            "truncated": False,
            "stdout_bytes": 5,
        }


class TestServiceDeath:
    @pytest.mark.parametrize("agent_setup", ["", "ignore-sigterm -\n"])
    async def test_the_agent_and_its_grandchild_die_with_a_killed_service(
        self, tmp_path, pid_files, agent_setup
    ):
        # the second case: an agent that ignores SIGTERM is killed after the grace
        instructions = (
            f"{agent_setup}pid-file {pid_files / 'agent.pid'}\n"
            f"grandchild {pid_files / 'grandchild.pid'}\nsleep 3600"
        )
        service = await start_stand_in_service(tmp_path, instructions)
        agent = await read_pid(pid_files / "agent.pid")
        grandchild = await read_pid(pid_files / "grandchild.pid")

        service.kill()
        await service.wait()

        assert await wait_until_gone(agent)
        assert await wait_until_gone(grandchild)


class TestProgressFailure:
    async def test_a_failing_progress_sink_stops_the_run_and_its_processes(
        self, make_runner, make_context, pid_files
    ):
        class BrokenProgress:
            async def log(self, line: str) -> None:
                raise RuntimeError("event store is down")

        pid_file = pid_files / "child.pid"
        runner = make_runner()

        with pytest.raises(RuntimeError, match="event store is down"):
            async with asyncio.timeout(PATIENCE_SECONDS):
                context = make_context(f"pid-file {pid_file}\necho hello\nsleep 3600")
                await runner.run(context, BrokenProgress())

        assert await wait_until_gone(int(pid_file.read_text()))


class TestKind:
    def test_its_kind_is_command(self, make_runner):
        assert make_runner().kind == "command"
