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

The result, on exit code 0, is the first of:

1. a JSON object written to ``PX_RESULT_FILE`` (any other content fails the run);
2. the last non-blank stdout line, when it is a JSON object;
3. ``{"stdout": <captured text>, "truncated": <bool>, "stdout_bytes": <all>}``.

A result object with an ``output`` or ``state`` key gives that output and those
shared-state updates; any other object is the output as a whole.

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
import os
import re
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.runners.base import Progress, RunFailed, StepContext, StepResult

logger = logging.getLogger(__name__)

CONTEXT_FILE_NAME = "context.json"
RESULT_FILE_NAME = "result.json"
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
    ) -> None:
        if not argv or not all(isinstance(part, str) and part for part in argv):
            raise ValueError("argv must be a non-empty list of non-empty strings")
        self.argv = list(argv)
        self.workdir_root = Path(workdir_root).resolve()
        self.env = dict(env or {})
        self.max_output_bytes = max_output_bytes
        self.max_log_line_bytes = max_log_line_bytes
        self.kill_grace_seconds = kill_grace_seconds

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """Run the program for one step and turn its exit into a result."""
        workdir = self._prepare_workdir(context)
        process, report_fd = await self._start(context, workdir)
        streams = _Streams(
            process, progress, self.max_output_bytes, self.max_log_line_bytes
        )
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

    def _outcome(
        self, returncode: int, workdir: Path, streams: "_Streams"
    ) -> StepResult:
        if returncode != 0:
            raise _exit_failure(returncode, streams.stderr_tail())

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


class _StdoutCollector:
    """Splits stdout into progress lines and keeps it up to a byte limit."""

    def __init__(self, max_output_bytes: int, max_line_bytes: int) -> None:
        self.max_output_bytes = max_output_bytes
        self.max_line_bytes = max_line_bytes
        self.captured = bytearray()
        self.truncated = False
        self.total_bytes = 0
        self.last_line: bytes | None = None
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
        max_output_bytes: int,
        max_line_bytes: int,
    ) -> None:
        self.stdout = _StdoutCollector(max_output_bytes, max_line_bytes)
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
    if "output" not in result and "state" not in result:
        return StepResult(output=result)

    state = result.get("state") or {}
    if not isinstance(state, dict):
        raise RunFailed("result 'state' is not a JSON object")
    return StepResult(output=result.get("output"), state_updates=state)


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
