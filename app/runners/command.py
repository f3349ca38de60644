"""The command runner: carries out a step by running an operator's program.

The program is the argument list of a profile, started directly (never through a
shell) in a new session, so that it and everything it starts form one process
group that belongs to the run.

On Linux the group's leader is a guard (``app/runners/guard.py``) that starts the
program and exits as the program does. The kernel tells the guard when the
service dies, even by SIGKILL, and the guard then kills the group. Elsewhere the
program is started directly as the group's leader, and a service that dies
without cleaning up leaves it running.

Each run gets its own working directory,
``<workdir_root>/<execution_id>/<step_id>-<attempt>``, which is the child's cwd
and holds ``context.json`` (the step's context). The child receives the
service's environment (minus the service's own ``PX_*`` settings, which may hold
secrets), the profile's ``env`` and these variables:

    PX_EXECUTION_ID  PX_STEP_ID  PX_RUN_ID  PX_ATTEMPT  PX_AGENT
    PX_WORKDIR       PX_CONTEXT_FILE        PX_RESULT_FILE

The prompt is written on stdin, which is then closed. Every non-blank stdout line
becomes a progress line as it arrives (cut to ``max_log_line_bytes``); stdout is
kept up to ``max_output_bytes`` and read to the end beyond that, so the child
never blocks on a full pipe; stderr is read alongside and its last 4 KB kept.

How the result is read depends on the runner's ``result_format``.

With ``parallel-exec`` (the default), the result, on exit code 0, is the first of:

1. a JSON object written to ``PX_RESULT_FILE`` (any other content fails the run);
2. the last non-blank stdout line, when it is a JSON object;
3. ``{"stdout": <captured text>, "truncated": <bool>, "stdout_bytes": <all>}``.

A result object with an ``output``, ``state`` or ``usage`` key gives that
output, those shared-state updates and that usage; any other object is the
output as a whole. ``usage`` is ``{"input_tokens": int, "output_tokens": int,
"cost": number}``: each key may be left out (or null), and one that is present
must be a non-negative number (an integer for tokens) or the run fails.

With ``claude``, the program is a coding-agent CLI that reads the prompt on stdin
and prints one JSON result object, as ``claude -p --output-format json`` does:
``{"type": "result", "subtype": "success", "is_error": false, "result": <text>,
"total_cost_usd": <number>, "usage": {"input_tokens": ..., "output_tokens": ...,
"cache_creation_input_tokens": ..., "cache_read_input_tokens": ...}, ...}``. The
result object is the last stdout line that is a JSON object with ``"type":
"result"``, or else a pretty-printed object: the whole of stdout, or its end from
a line that holds only ``{``. Its ``result`` text is the output; the input tokens
are the sum of the three input counts, and the cost is ``total_cost_usd``.
``is_error`` true or a subtype starting with ``error`` fails the run with the
result text (or else the subtype) as the message and the usage attached, as does
a non-zero exit after a result object; a CLI that exits 0 without one fails. The
result file is not read.

A non-zero exit, a death by signal or a program that cannot start is a
``RunFailed`` with the exit code and the tail of stderr. When the run is
cancelled (the executor's timeout or cancel), the whole group gets SIGTERM, then
SIGKILL after ``kill_grace_seconds``; the child is reaped and the pipes read to
their end before ``CancelledError`` goes on. Processes still in the group when
the child exits are killed too: nothing started by a run outlives it, unless it
left the run's session on purpose. Only while the service lives: the guard ends
with the program, so processes the program leaves behind are no longer watched
once it has exited.
"""

import asyncio
import json
import logging
import math
import os
import re
import reprlib
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.runners.base import Progress, RunFailed, StepContext, StepResult, Usage

logger = logging.getLogger(__name__)

CONTEXT_FILE_NAME = "context.json"
RESULT_FILE_NAME = "result.json"
# how a program reports its result: this service's own protocol, or the JSON
# result object of a coding-agent CLI shaped like Claude Code's
RESULT_FORMATS = ("parallel-exec", "claude")
STDERR_TAIL_BYTES = 4096

_READ_CHUNK_BYTES = 64 * 1024
_POLL_SECONDS = 0.1
# how long the pipes may stay silent after the child exits before the processes
# still holding them are taken for stragglers
_DRAIN_SECONDS = 1.0
_SERVICE_ENV_PREFIX = "PX_"
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# the guard relies on the Linux-only PR_SET_PDEATHSIG
_GUARDED = sys.platform == "linux"
# the line that opens a pretty-printed JSON object
_LONE_BRACE_LINE = re.compile(r"^\{[ \t]*\r?$", re.MULTILINE)
# run by path, with only the standard library, so that it needs neither the
# service's working directory nor its packages, and starts fast
_GUARD_PATH = Path(__file__).with_name("guard.py")


class CommandRunner:
    """Runs an operator-configured program for each step, one process group per run."""

    kind = "command"

    def __init__(
        self,
        argv: list[str],
        *,
        workdir_root: Path,
        env: dict[str, str] | None = None,
        max_output_bytes: int,
        max_log_line_bytes: int,
        kill_grace_seconds: float,
        result_format: str = "parallel-exec",
    ) -> None:
        if not argv or not all(isinstance(part, str) and part for part in argv):
            raise ValueError("argv must be a non-empty list of non-empty strings")
        if result_format not in RESULT_FORMATS:
            raise ValueError(
                f"result_format must be one of {', '.join(RESULT_FORMATS)}, "
                f"not {result_format!r}"
            )
        self.argv = list(argv)
        self.workdir_root = Path(workdir_root).resolve()
        self.env = dict(env or {})
        self.max_output_bytes = max_output_bytes
        self.max_log_line_bytes = max_log_line_bytes
        self.kill_grace_seconds = kill_grace_seconds
        self.result_format = result_format

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """Run the program for one step and turn its exit into a result."""
        workdir = self._prepare_workdir(context)
        process, report_fd = await self._start(context, workdir)
        streams = _Streams(process, progress, self._stdout_collector())
        streams.start(context.prompt().encode())
        log_fields = _log_fields(context, process.pid)

        try:
            await self._check_started(report_fd)
            logger.info("command.started", extra=log_fields)
            returncode = await _wait_for_exit(process, streams)
            await self._drain(process, streams, log_fields)
        except BaseException as exc:
            logger.info(
                "command.stopping", extra={**log_fields, "reason": _reason(exc)}
            )
            await self._stop_group(process, streams)
            await _reap(process)
            await streams.close()
            raise

        logger.info("command.exited", extra={**log_fields, "exit_code": returncode})
        return self._outcome(returncode, workdir, streams)

    def _prepare_workdir(self, context: StepContext) -> Path:
        run_folder = f"{context.step_id}-{context.attempt}"
        workdir = (
            self.workdir_root
            / _path_part(context.execution_id)
            / _path_part(run_folder)
        )
        workdir.mkdir(parents=True, exist_ok=True)

        (workdir / RESULT_FILE_NAME).unlink(missing_ok=True)
        context_text = json.dumps(context.as_dict(), indent=2, default=str)
        (workdir / CONTEXT_FILE_NAME).write_text(context_text, encoding="utf-8")
        return workdir

    async def _start(
        self, context: StepContext, workdir: Path
    ) -> tuple[asyncio.subprocess.Process, int | None]:
        """Start the program, under a guard where there is one.

        With a guard, the second value is the read end of the pipe on which the
        guard reports whether it could start the program.
        """
        env = self._child_env(context, workdir)
        if not _GUARDED:
            return await self._spawn(self.argv, workdir, env), None

        report_fd, guard_report_fd = os.pipe()
        guard_argv = [
            sys.executable,
            "-I",
            "-S",
            str(_GUARD_PATH),
            str(os.getpid()),
            str(self.kill_grace_seconds),
            str(guard_report_fd),
            *self.argv,
        ]
        try:
            process = await self._spawn(
                guard_argv, workdir, env, pass_fds=(guard_report_fd,)
            )
        except BaseException:
            os.close(report_fd)
            raise
        finally:
            os.close(guard_report_fd)
        return process, report_fd

    async def _spawn(
        self, argv: list[str], workdir: Path, env: dict[str, str], **options: Any
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env=env,
                start_new_session=True,
                **options,
            )
        except OSError as exc:
            raise _start_failure(self.argv[0], exc) from exc

    async def _check_started(self, report_fd: int | None) -> None:
        """Raise RunFailed when the guard reports that the program did not start."""
        if report_fd is None:
            return
        report = await _read_to_end(report_fd)
        if report:
            error = int(report)
            exc = OSError(error, os.strerror(error))
            raise _start_failure(self.argv[0], exc) from exc

    def _child_env(self, context: StepContext, workdir: Path) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(_SERVICE_ENV_PREFIX)
        }
        run_vars = {
            "PX_EXECUTION_ID": context.execution_id,
            "PX_STEP_ID": context.step_id,
            "PX_RUN_ID": context.run_id,
            "PX_ATTEMPT": str(context.attempt),
            "PX_AGENT": str(context.agent),
            "PX_WORKDIR": str(workdir),
            "PX_CONTEXT_FILE": str(workdir / CONTEXT_FILE_NAME),
            "PX_RESULT_FILE": str(workdir / RESULT_FILE_NAME),
        }
        return {**inherited, **self.env, **run_vars}

    async def _drain(
        self,
        process: asyncio.subprocess.Process,
        streams: "_Streams",
        log_fields: dict[str, Any],
    ) -> None:
        """Read the rest of the output once the child has exited; stop stragglers."""
        stopped = False
        while not streams.done():
            await streams.wait(_DRAIN_SECONDS)
            streams.raise_failure()
            if streams.done() or not streams.stalled(_DRAIN_SECONDS):
                continue

            if stopped:
                # only a process outside the group can still hold the pipes
                logger.warning("command.pipes_held_outside_group", extra=log_fields)
                break
            logger.warning("command.stopping_stragglers", extra=log_fields)
            await self._stop_group(process, streams)
            stopped = True

        await streams.close()
        _signal_group(process.pid, signal.SIGKILL)

    async def _stop_group(
        self, process: asyncio.subprocess.Process, streams: "_Streams"
    ) -> None:
        """Stop every process of the run: SIGTERM, a grace period, then SIGKILL."""
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await _wait_until(
                lambda: process.returncode is not None and streams.done(),
                self.kill_grace_seconds,
            )
        finally:
            _signal_group(process.pid, signal.SIGKILL)

    def _reads_cli(self) -> bool:
        return self.result_format == "claude"

    def _stdout_collector(self) -> "_StdoutCollector":
        """A collector of stdout that also spots a CLI's result lines."""
        is_result_line = _is_cli_result_line if self._reads_cli() else None
        return _StdoutCollector(
            self.max_output_bytes, self.max_log_line_bytes, is_result_line
        )

    def _outcome(
        self, returncode: int, workdir: Path, streams: "_Streams"
    ) -> StepResult:
        if self._reads_cli():
            return _cli_outcome(returncode, streams)
        if returncode != 0:
            failure = _exit_failure(returncode, streams.stderr_tail())
            failure.usage = self._usage_left_behind(workdir, streams)
            raise failure

        result = _read_result_file(workdir / RESULT_FILE_NAME, self.max_output_bytes)
        if result is None:
            result = _json_object(streams.stdout.last_line)
        if result is None:
            output = {
                "stdout": streams.stdout.text(),
                "truncated": streams.stdout.truncated,
                "stdout_bytes": streams.stdout.total_bytes,
            }
            return StepResult(output=output)
        return _result_from_object(result)

    def _usage_left_behind(self, workdir: Path, streams: "_Streams") -> Usage | None:
        """What a failed run reported it used, so that its tokens are counted."""
        try:
            result = _read_result_file(
                workdir / RESULT_FILE_NAME, self.max_output_bytes
            )
            if result is None:
                result = _json_object(streams.stdout.last_line)
            return _reported_usage((result or {}).get("usage"))
        except RunFailed:
            return None  # the exit code says more than a broken result would


class _StdoutCollector:
    """Splits stdout into progress lines and keeps it up to a byte limit."""

    def __init__(
        self,
        max_output_bytes: int,
        max_line_bytes: int,
        is_result_line: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.max_output_bytes = max_output_bytes
        self.max_line_bytes = max_line_bytes
        self.captured = bytearray()
        self.truncated = False
        self.total_bytes = 0
        self.last_line: bytes | None = None
        # the last whole line that is_result_line accepts, when one is given
        self.result_line: bytes | None = None
        self._is_result_line = is_result_line
        self._line = bytearray()
        self._line_overflow = False

    def feed(self, chunk: bytes) -> list[str]:
        """Take a chunk of output; return the progress lines it completes."""
        self._capture(chunk)
        lines = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._extend_line(chunk[start:end])
            lines.append(self._end_line())
            start = end + 1

        self._extend_line(chunk[start:])
        return [line for line in lines if line]

    def finish(self) -> list[str]:
        """Return the last progress line when the output did not end in a newline."""
        if not self._line and not self._line_overflow:
            return []
        line = self._end_line()
        return [line] if line else []

    def text(self) -> str:
        return self.captured.decode("utf-8", errors="replace")

    def _capture(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        room = self.max_output_bytes - len(self.captured)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.captured += chunk[:room]

    def _extend_line(self, part: bytes) -> None:
        # a line is kept whole up to the output limit, so that a final JSON
        # result line can be read even when it is longer than a progress line
        room = max(self.max_output_bytes, self.max_line_bytes) - len(self._line)
        if len(part) > room:
            self._line_overflow = True
        self._line += part[: max(room, 0)]

    def _end_line(self) -> str:
        line = bytes(self._line).rstrip(b"\r")
        overflow = self._line_overflow
        self._line.clear()
        self._line_overflow = False
        if not line.strip():
            return ""

        self.last_line = None if overflow else line
        if self._is_result_line and not overflow and self._is_result_line(line):
            self.result_line = line
        if len(line) <= self.max_line_bytes and not overflow:
            return line.decode("utf-8", errors="replace")
        marker = f" [line cut at {self.max_line_bytes} bytes]"
        room = max(self.max_line_bytes - len(marker), 0)
        return line[:room].decode("utf-8", errors="ignore") + marker


class _Pump:
    """Reads one pipe to its end, handing each chunk to a sink."""

    def __init__(self, stream: asyncio.StreamReader, sink: Callable) -> None:
        self._stream = stream
        self._sink = sink
        self._waiting_since: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._waiting_since = loop.time()
            chunk = await self._stream.read(_READ_CHUNK_BYTES)
            self._waiting_since = None
            if not chunk:
                return
            await self._sink(chunk)

    def stalled(self, seconds: float) -> bool:
        """Whether the pipe has given nothing for at least this long."""
        if self._waiting_since is None:
            return False
        return asyncio.get_running_loop().time() - self._waiting_since >= seconds


class _Streams:
    """The child's three pipes, served concurrently while it runs."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        progress: Progress,
        stdout: "_StdoutCollector",
    ) -> None:
        self.stdout = stdout
        self._stderr = bytearray()
        self._process = process
        self._progress = progress
        self._stdout_pump = _Pump(process.stdout, self._on_stdout)
        self._stderr_pump = _Pump(process.stderr, self._on_stderr)
        self._pumps = [self._stdout_pump, self._stderr_pump]
        self._readers: list[asyncio.Task] = []
        self._writer: asyncio.Task | None = None

    def start(self, prompt: bytes) -> None:
        self._writer = asyncio.create_task(_write_stdin(self._process.stdin, prompt))
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._stderr_pump.run()),
        ]

    def done(self) -> bool:
        """Whether stdout and stderr have both been read to their end."""
        return all(reader.done() for reader in self._readers)

    def stalled(self, seconds: float) -> bool:
        """Whether every pipe still open has given nothing for at least this long."""
        return all(
            pump.stalled(seconds)
            for pump, reader in zip(self._pumps, self._readers, strict=True)
            if not reader.done()
        )

    async def wait(self, timeout: float) -> None:
        """Wait until a pipe ends or fails, at most for timeout seconds."""
        pending = [reader for reader in self._readers if not reader.done()]
        if pending:
            await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )

    def raise_failure(self) -> None:
        """Raise the error of a pipe reader that failed, such as a progress error."""
        for reader in self._readers:
            if reader.done() and not reader.cancelled() and reader.exception():
                raise reader.exception()

    async def close(self) -> None:
        """Give the pipes a last chance to end, then stop serving them."""
        await self.wait_all(_DRAIN_SECONDS)
        held_open = not self.done()
        tasks = [*self._readers, self._writer]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        if held_open:
            # Process offers no public close; without one, the pipes a process
            # outside the group still holds would stay open in this service.
            self._process._transport.close()

    async def wait_all(self, timeout: float) -> None:
        """Wait until both pipes end, at most for timeout seconds."""
        pending = [reader for reader in self._readers if not reader.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    async def _read_stdout(self) -> None:
        await self._stdout_pump.run()
        for line in self.stdout.finish():
            await self._progress.log(line)

    async def _on_stdout(self, chunk: bytes) -> None:
        for line in self.stdout.feed(chunk):
            await self._progress.log(line)

    async def _on_stderr(self, chunk: bytes) -> None:
        self._stderr += chunk
        del self._stderr[:-STDERR_TAIL_BYTES]


async def _write_stdin(stdin: asyncio.StreamWriter, data: bytes) -> None:
    try:
        stdin.write(data)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child exited or closed stdin without reading all of it
    finally:
        stdin.close()


async def _read_to_end(fd: int) -> bytes:
    """Read a pipe until its writers close it, then close it."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), open(fd, "rb", buffering=0)
    )
    try:
        return await reader.read()
    finally:
        transport.close()


async def _wait_for_exit(process: asyncio.subprocess.Process, streams: _Streams) -> int:
    """Wait for the child to exit, even while other processes still hold its pipes."""
    # Process.wait() also waits for every pipe to close (Python 3.11), which a
    # grandchild may never do; the return code is set as soon as the child exits.
    while process.returncode is None:
        if streams.done():
            return await process.wait()
        await streams.wait(_POLL_SECONDS)
        streams.raise_failure()
    return process.returncode


async def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(_POLL_SECONDS, remaining))
    return True


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Wait until the killed child has been reaped."""
    while process.returncode is None:
        await asyncio.sleep(_POLL_SECONDS / 10)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the group has no process left
    except PermissionError:
        logger.warning("command.signal_refused", extra={"pgid": pgid, "signal": signum})


def _start_failure(command: str, exc: OSError) -> RunFailed:
    if isinstance(exc, FileNotFoundError):
        return RunFailed(f"command not found: {command}", command=command)
    if isinstance(exc, PermissionError):
        return RunFailed(f"command is not executable: {command}", command=command)
    return RunFailed(
        f"command could not start: {command}: {exc.strerror or exc}", command=command
    )


def _exit_failure(returncode: int, stderr_tail: str) -> RunFailed:
    if returncode >= 0:
        return RunFailed(
            f"command exited with code {returncode}",
            exit_code=returncode,
            stderr_tail=stderr_tail,
        )
    name = _signal_name(-returncode)
    return RunFailed(
        f"command was killed by signal {name}",
        exit_code=returncode,
        signal=name,
        stderr_tail=stderr_tail,
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _read_result_file(path: Path, max_bytes: int) -> dict[str, Any] | None:
    """The JSON object the child wrote to its result file, or None without a file."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            # a FIFO or device would block the open; a link could point anywhere
            raise RunFailed("result file is not a regular file", result_file=str(path))
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunFailed(
            f"result file cannot be read: {exc}", result_file=str(path)
        ) from exc

    if len(data) > max_bytes:
        raise RunFailed(
            f"result file is larger than {max_bytes} bytes", result_file=str(path)
        )
    try:
        result = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFailed(
            f"result file is not valid JSON: {exc}", result_file=str(path)
        ) from exc
    if not isinstance(result, dict):
        raise RunFailed(
            "result file does not hold a JSON object", result_file=str(path)
        )
    return result


def _json_object(line: bytes | None) -> dict[str, Any] | None:
    """The line as a JSON object, or None when it is not one."""
    if line is None or not line.lstrip().startswith(b"{"):
        return None
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _result_from_object(result: dict[str, Any]) -> StepResult:
    if not result.keys() & {"output", "state", "usage"}:
        return StepResult(output=result)

    state = result.get("state") or {}
    if not isinstance(state, dict):
        raise RunFailed("result 'state' is not a JSON object")
    usage = _reported_usage(result.get("usage"))
    return StepResult(output=result.get("output"), state_updates=state, usage=usage)


def _reported_usage(usage: Any) -> Usage | None:
    """The usage of a result object's 'usage' key, None when it has none."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise RunFailed("result 'usage' is not a JSON object")
    return Usage(
        input_tokens=_tokens(usage, "input_tokens", "result"),
        output_tokens=_tokens(usage, "output_tokens", "result"),
        cost=_cost(usage.get("cost"), "result 'usage.cost'"),
    )


def _cli_outcome(returncode: int, streams: "_Streams") -> StepResult:
    """The step result a coding-agent CLI reports in its JSON result object."""
    result = _cli_result(streams.stdout)
    if result is None:
        if returncode != 0:
            raise _exit_failure(returncode, streams.stderr_tail())
        raise RunFailed(
            "the CLI printed no JSON result",
            stdout_bytes=streams.stdout.total_bytes,
            stderr_tail=streams.stderr_tail(),
        )

    usage = _cli_usage(result)
    error = _cli_error(result)
    if returncode != 0:
        # the CLI's own account of the error says more than its exit code
        failure = _exit_failure(returncode, streams.stderr_tail())
        message = error or failure.message
        raise RunFailed(message, usage=usage, **_cli_details(result), **failure.details)
    if error is not None:
        raise RunFailed(error, usage=usage, **_cli_details(result))

    output = result.get("result")
    if not isinstance(output, str):
        raise RunFailed("CLI result has no 'result' text", usage=usage)
    return StepResult(output=output, usage=usage)


def _cli_result(stdout: "_StdoutCollector") -> dict[str, Any] | None:
    """The CLI's result object: its last result line, or a pretty-printed object."""
    result = _json_object(stdout.result_line)
    if result is None:
        result = _trailing_json_object(stdout.text())
    if result is None or result.get("type") != "result":
        return None
    return result


def _is_cli_result_line(line: bytes) -> bool:
    value = _json_object(line)
    return value is not None and value.get("type") == "result"


def _trailing_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that ends the text: all of it, or from a lone '{' line on."""
    lone_braces = [match.start() for match in _LONE_BRACE_LINE.finditer(text)]
    for start in [0, *lone_braces[-1:]]:
        try:
            value = json.loads(text[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _cli_usage(result: dict[str, Any]) -> Usage | None:
    """Tokens and cost of a CLI result; cache reads and writes count as input."""
    usage = result.get("usage")
    cost = _cost(result.get("total_cost_usd"), "CLI result 'total_cost_usd'")
    if usage is None:
        return None if cost is None else Usage(cost=cost)
    if not isinstance(usage, dict):
        raise RunFailed("CLI result 'usage' is not a JSON object")

    input_keys = [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    return Usage(
        input_tokens=sum(_tokens(usage, key, "CLI result") for key in input_keys),
        output_tokens=_tokens(usage, "output_tokens", "CLI result"),
        cost=cost,
    )


def _cli_error(result: dict[str, Any]) -> str | None:
    """The error a CLI result reports: its text, or else its subtype."""
    subtype = result.get("subtype")
    subtype = subtype if isinstance(subtype, str) else ""
    if result.get("is_error") is not True and not subtype.startswith("error"):
        return None

    text = result.get("result")
    if isinstance(text, str) and text.strip():
        return text
    return subtype or "the CLI reported an error"


def _cli_details(result: dict[str, Any]) -> dict[str, str]:
    return {
        key: result[key]
        for key in ("subtype", "session_id")
        if isinstance(result.get(key), str)
    }


def _tokens(usage: dict[str, Any], key: str, where: str) -> int:
    """A token count of a usage object, 0 when it is left out or null."""
    value = usage.get(key)
    if value is None:
        return 0
    # JSON gives exactly int, float or bool; a bool is no count
    if type(value) is not int or value < 0:
        raise RunFailed(
            f"{where} 'usage.{key}' is not a non-negative integer: "
            f"{reprlib.repr(value)}"
        )
    return value


def _cost(value: Any, name: str) -> float | None:
    """A reported cost, None when it is left out or null."""
    if value is None:
        return None
    try:
        cost = float(value) if type(value) in (int, float) else math.nan
    except OverflowError:
        cost = math.inf
    # NaN fails both comparisons; json.loads accepts NaN and Infinity
    if not 0 <= cost < math.inf:
        raise RunFailed(f"{name} is not a non-negative number: {reprlib.repr(value)}")
    return cost


def _path_part(value: str) -> str:
    """A value made safe as one folder name."""
    return _UNSAFE_PATH_CHARS.sub("_", value).lstrip(".") or "_"


def _log_fields(context: StepContext, pid: int) -> dict[str, Any]:
    return {
        "execution_id": context.execution_id,
        "step_id": context.step_id,
        "run_id": context.run_id,
        "attempt": context.attempt,
        "pid": pid,
    }


def _reason(exc: BaseException) -> str:
    return (
        "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
    )
