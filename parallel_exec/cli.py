"""parallel-exec: plan a task and run its agents from a terminal.

    parallel-exec "Implement login feature with UI, backend, and tests" --dry_run true
    parallel-exec "Fix bug in node X" --parallel false
    parallel-exec list | show ID | watch ID | cancel ID | serve

A task with no subcommand is run (``run`` may be written out). Without
``--server`` everything happens in this process on the embedded SQLite database
(``PX_DATABASE_URL``); with it, on that service.

Exit codes: 0 success (a run succeeded, a plan was made, a cancel was taken),
1 the execution failed or timed out, or the service refused the request,
2 bad arguments (or a request the service found invalid), 3 the execution was
cancelled, 4 the service or its database could not be reached, 130 interrupted
by Ctrl-C (a run started here is cancelled first), 141 the output was closed
before the end (as by ``| head``).
"""

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from contextlib import aclosing, suppress
from typing import Any

from rich.console import Console

from app.execution.status import ExecutionStatus
from app.planning.models import Mode
from parallel_exec import render
from parallel_exec.config import ExecutorConfig
from parallel_exec.errors import ParallelExecError, RequestRejected, ServiceUnreachable
from parallel_exec.executor import ParallelAgentExecutor
from parallel_exec.results import ExecutionReport

PROG = "parallel-exec"
SUBCOMMANDS = ("run", "serve", "list", "show", "watch", "cancel")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE
EXIT_BY_STATUS = {
    ExecutionStatus.succeeded: EXIT_OK,
    ExecutionStatus.planned: EXIT_OK,
    ExecutionStatus.failed: EXIT_FAILED,
    ExecutionStatus.timed_out: EXIT_FAILED,
    ExecutionStatus.cancelled: EXIT_CANCELLED,
}
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
USAGE_STATUSES = (400, 404, 413, 422)
TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
BOOLEAN_WORDS = TRUE_WORDS + FALSE_WORDS
# options that take a value, and flags that may take true/false (see _parser)
VALUE_OPTIONS = {
    f"--{name}"
    for base in (
        "server",
        "api_key",
        "mode",
        "max_parallel",
        "max_tokens",
        "max_cost",
        "profile",
        "step_timeout",
        "execution_timeout",
        "status",
        "limit",
        "offset",
        "host",
        "port",
        "database_url",
    )
    for name in (base, base.replace("_", "-"))
}
FLAG_OPTIONS = {
    f"--{name}"
    for base in ("dry_run", "parallel", "fail_fast")
    for name in (base, base.replace("_", "-"))
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code."""
    args = _normalised(list(sys.argv[1:] if argv is None else argv))
    options = _parser().parse_args(args)
    if options.command == "serve":
        return _serve(options)
    out = render.console()
    stopped_by: list[signal.Signals] = []
    try:
        return asyncio.run(_until_stopped(options.handler(options, out), stopped_by))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:
        if not stopped_by:
            raise
        print(f"{PROG}: stopped by {stopped_by[0].name}", file=sys.stderr)
        return 128 + stopped_by[0]
    except BrokenPipeError:
        # the reader went away (| head): say nothing more, as other tools do;
        # stdout goes to /dev/null so that the flush at exit cannot fail again
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OUTPUT_CLOSED
    except RequestRejected as error:
        print(f"{PROG}: {error.message} ({error.code})", file=sys.stderr)
        return EXIT_USAGE if error.status in USAGE_STATUSES else EXIT_FAILED
    except ServiceUnreachable as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ParallelExecError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE


async def _until_stopped(
    command: Coroutine[Any, Any, int], stopped_by: list[signal.Signals]
) -> int:
    """Run a command that SIGTERM or SIGHUP cancel as Ctrl-C does.

    A run started here is then cancelled with it, instead of the process being
    killed mid-write.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: signal.Signals) -> None:
        stopped_by.append(signum)
        task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await command
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _normalised(args: list[str]) -> list[str]:
    """The arguments with the subcommand first, "run" when none is named.

    Options may come before the subcommand (``--server URL list``); the first
    word that is not an option or an option's value names it, unless it is the
    task of a run.
    """
    args = list(args)
    index = 0
    while index < len(args) and args[index].startswith("-"):
        option = args[index]
        index += 1
        if "=" in option:
            continue
        takes_word = option in VALUE_OPTIONS
        takes_word_maybe = option in FLAG_OPTIONS and index < len(args)
        if takes_word or (
            takes_word_maybe and args[index].strip().lower() in BOOLEAN_WORDS
        ):
            index += 1
        elif option in FLAG_OPTIONS:
            # a flag alone: argparse would take the word after it (the task,
            # in "--dry-run TASK") for its value
            args[index - 1] = f"{option}=true"
    if index < len(args) and args[index] in SUBCOMMANDS:
        return [args[index], *args[:index], *args[index + 1 :]]
    if args and args[0] in TOP_LEVEL_OPTIONS:
        return args
    return ["run", *args]


# the commands


async def _run(options: argparse.Namespace, out: Console) -> int:
    config = ExecutorConfig(
        fail_fast=options.fail_fast,
        enable_parallel=options.parallel,
        dry_run=options.dry_run,
        mode=options.mode,
        max_parallel=options.max_parallel,
        step_timeout_s=options.step_timeout,
        execution_timeout_s=options.execution_timeout,
        profile=options.profile,
        max_tokens=options.max_tokens,
        max_cost=options.max_cost,
    )
    async with _executor(options) as executor:
        execution = await executor.submit(options.task, config)
        if execution.dry_run:
            report = await executor.report(execution.id)
        elif options.json:
            report = await executor.wait(execution.id, cancel_if_abandoned=True)
        else:
            assert execution.plan is not None
            try:
                out.print(f"execution {execution.id} accepted", markup=False)
                with render.ProgressView(out, execution.plan) as view:
                    report = await executor.wait(
                        execution.id, on_event=view.handle, cancel_if_abandoned=True
                    )
            except BrokenPipeError:
                # no one reads the progress any more (| head): as on Ctrl-C,
                # the run started here is not left going on unseen
                with suppress(ParallelExecError):
                    await executor.cancel(execution.id)
                raise
    if options.json:
        _print_json(report.as_dict())
    elif report.dry_run:
        out.print(f"execution {report.execution_id} planned (dry run)", markup=False)
        render.show_plan(out, report.plan)
    else:
        render.show_report(out, report)
    return EXIT_BY_STATUS.get(report.status, EXIT_FAILED)


async def _watch(options: argparse.Namespace, out: Console) -> int:
    async with _executor(options) as executor:
        if options.json:
            # the stream is closed here even when printing fails (| head), not
            # left to the event loop's shutdown, which would close it too late
            async with aclosing(executor.events(options.execution_id)) as events:
                async for event in events:
                    _print_json(event.model_dump(mode="json"))
            report = await executor.report(options.execution_id)
            return EXIT_BY_STATUS.get(report.status, EXIT_FAILED)
        plan = await executor.plan(options.execution_id)
        with render.ProgressView(out, plan) as view:
            # watching is not owning: Ctrl-C here leaves the execution running
            async with aclosing(executor.events(options.execution_id)) as events:
                async for event in events:
                    view.handle(event)
        report = await executor.report(options.execution_id)
    render.show_report(out, report)
    return EXIT_BY_STATUS.get(report.status, EXIT_FAILED)


async def _show(options: argparse.Namespace, out: Console) -> int:
    async with _executor(options) as executor:
        report = await executor.report(options.execution_id)
    if options.json:
        _print_json(report.as_dict())
        return EXIT_OK
    _show_execution(out, report)
    return EXIT_OK


async def _list(options: argparse.Namespace, out: Console) -> int:
    async with _executor(options) as executor:
        page = await executor.list(options.status, options.limit, options.offset)
    if options.json:
        _print_json(page.model_dump(mode="json"))
    else:
        render.show_table(out, render.executions_table(page))
    return EXIT_OK


async def _cancel(options: argparse.Namespace, out: Console) -> int:
    async with _executor(options) as executor:
        execution = await executor.cancel(options.execution_id)
    if options.json:
        _print_json(execution.model_dump(mode="json"))
    else:
        out.print(f"execution {execution.id} {execution.status}", markup=False)
    return EXIT_OK


def _serve(options: argparse.Namespace) -> int:
    from app.__main__ import main as serve

    for name, value in (
        ("PX_HOST", options.host),
        ("PX_PORT", options.port),
        ("PX_DATABASE_URL", options.database_url),
    ):
        if value is not None:
            os.environ[name] = str(value)
    sys.argv = [f"{PROG} serve"]
    # uvicorn stops cleanly on SIGTERM and Ctrl-C, then raises the signal again
    # (https://github.com/encode/uvicorn/pull/1600): a SIGTERM then ends here
    # with 0 rather than killing the process, a Ctrl-C with 130, no traceback
    signal.signal(signal.SIGTERM, _stopped)
    try:
        serve()
    except _Stopped:
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


class _Stopped(Exception):
    """SIGTERM arrived: the service was asked to stop."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def _show_execution(out: Console, report: ExecutionReport) -> None:
    execution = report.execution
    out.print(f"execution {execution.id} {execution.status}", markup=False)
    out.print(f"task: {render.printable(execution.task)}", markup=False)
    out.print(
        f"profile {execution.profile}; created {execution.created_at:%Y-%m-%d %H:%M:%S}"
        + (
            f"; reason: {render.printable(execution.reason)}"
            if execution.reason
            else ""
        ),
        markup=False,
    )
    render.show_plan(out, report.plan, with_status=True)
    if execution.result is not None:
        render.show_report(out, report)


def _executor(options: argparse.Namespace) -> ParallelAgentExecutor:
    if options.server:
        return ParallelAgentExecutor(options.server, options.api_key)
    return ParallelAgentExecutor()


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# arguments

Handler = Callable[[argparse.Namespace, Console], Coroutine[Any, Any, int]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Plan a software task as a graph of agent steps and run the "
        "agents in parallel. A task with no subcommand is run.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _command(commands, "run", _run, "plan a task and run it (the default)")
    run.add_argument("task", help="the task in plain words")
    _flag(run, "dry_run", False, "only plan and show the plan (default false)")
    _flag(run, "parallel", True, "run independent steps at once (default true)")
    _flag(run, "fail_fast", True, "stop at the first failed step (default true)")
    run.add_argument(
        "--mode",
        choices=[mode.value for mode in Mode if mode is not Mode.explicit],
        default=Mode.auto.value,
        help="how to plan: auto (default), chain or decompose",
    )
    _option(run, "max_parallel", _positive(int), "N", "most steps at once")
    _option(run, "profile", str, "NAME", "the runner profile that runs the steps")
    _option(run, "step_timeout", _positive(float), "SECONDS", "timeout of each step")
    _option(run, "execution_timeout", _positive(float), "SECONDS", "timeout of the run")
    _option(run, "max_tokens", _positive(int), "N", "token budget: no start beyond it")
    _option(run, "max_cost", _positive(float), "COST", "cost budget, in price units")

    listing = _command(commands, "list", _list, "list executions, newest first")
    listing.add_argument(
        "--status", choices=[status.value for status in ExecutionStatus]
    )
    listing.add_argument("--limit", type=_positive(int), default=20)
    listing.add_argument("--offset", type=_at_least_zero, default=0)

    for name, handler, text in (
        ("show", _show, "show an execution: plan, step statuses, figures"),
        ("watch", _watch, "follow an execution's progress live until it ends"),
        ("cancel", _cancel, "cancel a running execution"),
    ):
        command = _command(commands, name, handler, text)
        command.add_argument("execution_id", metavar="ID", help="the execution's id")

    serve = commands.add_parser(
        "serve", help="start the service (as scripts/run does)", allow_abbrev=False
    )
    serve.add_argument("--host", help="address to listen on (PX_HOST)")
    serve.add_argument("--port", type=_positive(int), help="port (PX_PORT)")
    serve.add_argument("--database-url", help="database URL (PX_DATABASE_URL)")
    return parser


def _command(
    commands: Any, name: str, handler: Handler, text: str
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=text, description=text, allow_abbrev=False)
    command.set_defaults(handler=handler)
    command.add_argument(
        "--server",
        metavar="URL",
        type=_service_url,
        default=os.environ.get("PX_SERVER") or None,
        help="a parallel-exec service to use (PX_SERVER); in-process by default",
    )
    command.add_argument(
        "--api-key",
        "--api_key",
        default=os.environ.get("PX_API_KEY") or None,
        help="the service's API key (PX_API_KEY)",
    )
    command.add_argument("--json", action="store_true", help="print JSON")
    return command


def _flag(parser: argparse.ArgumentParser, name: str, default: bool, text: str) -> None:
    """--name and --name-kebab, taking true/false (alone: true)."""
    parser.add_argument(
        *dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"]),
        dest=name,
        nargs="?",
        const=True,
        default=default,
        type=_boolean,
        metavar="true|false",
        help=text,
    )


def _option(
    parser: argparse.ArgumentParser,
    name: str,
    kind: Callable[[str], Any],
    metavar: str,
    text: str,
) -> None:
    names = [f"--{name}"]
    if "_" in name:
        names.append(f"--{name.replace('_', '-')}")
    parser.add_argument(*names, dest=name, type=kind, metavar=metavar, help=text)


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive number, got {text!r}"
            ) from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(
                f"expected a positive number, got {text!r}"
            )
        return value

    parse.__name__ = kind.__name__
    return parse


def _service_url(text: str) -> str:
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest.strip("/"):
        raise argparse.ArgumentTypeError(
            f"expected a URL such as http://127.0.0.1:8000, got {text!r}"
        )
    return text


def _at_least_zero(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return int(text)


def _version() -> str:
    from importlib.metadata import version

    return f"{PROG} {version('parallel-exec')}"
