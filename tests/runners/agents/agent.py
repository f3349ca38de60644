"""A test agent: carries out the actions its step's instructions list, one a line.

It reads the instructions from the context file, not from stdin, so that it can
also play an agent that never reads its prompt. Each line is ``action argument``:

    echo TEXT            print TEXT on stdout
    echo-stdin -         copy stdin to stdout
    echo-env NAME        print NAME=<value of the environment variable>
    echo-cwd -           print the working directory
    stderr TEXT          print TEXT on stderr
    stderr-flood BYTES   write that many bytes on stderr
    flood BYTES          write that many bytes on stdout, in 100-byte lines
    long-line BYTES      write one stdout line of that many bytes
    result-file TEXT     write TEXT to the result file
    pid-file PATH        write this process's pid to PATH
    grandchild PATH      start `sleep 3600` holding stdout; write its pid to PATH
    detached-grandchild PATH   the same, with stdout and stderr on /dev/null
    escaped-grandchild PATH    the same, in a session of its own
    ignore-sigterm -     ignore SIGTERM (children started later inherit it)
    wait-for PATH        wait until PATH exists
    sleep SECONDS        sleep
    kill-self SIGNAL     send itself a signal, such as SIGSEGV
    exit CODE            exit with that code
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def echo(text: str) -> None:
    print(text, flush=True)


def echo_stdin(_: str) -> None:
    sys.stdout.write(sys.stdin.read())
    sys.stdout.flush()


def echo_env(name: str) -> None:
    echo(f"{name}={os.environ.get(name, '<unset>')}")


def echo_cwd(_: str) -> None:
    echo(os.getcwd())


def to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stderr_flood(size: str) -> None:
    sys.stderr.write("e" * int(size))
    sys.stderr.flush()


def flood(size: str) -> None:
    line = "x" * 99 + "\n"
    for _ in range(int(size) // len(line)):
        sys.stdout.write(line)
    sys.stdout.flush()


def long_line(size: str) -> None:
    echo("y" * int(size))


def result_file(text: str) -> None:
    Path(os.environ["PX_RESULT_FILE"]).write_text(text, encoding="utf-8")


def pid_file(path: str) -> None:
    write_pid(path, os.getpid())


def grandchild(path: str) -> None:
    write_pid(path, subprocess.Popen(["sleep", "3600"]).pid)


def detached_grandchild(path: str) -> None:
    quiet = subprocess.DEVNULL
    sleeper = subprocess.Popen(
        ["sleep", "3600"], stdout=quiet, stderr=quiet, stdin=quiet
    )
    write_pid(path, sleeper.pid)


def escaped_grandchild(path: str) -> None:
    write_pid(path, subprocess.Popen(["sleep", "3600"], start_new_session=True).pid)


def ignore_sigterm(_: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def result_fifo(_: str) -> None:
    os.mkfifo(os.environ["PX_RESULT_FILE"])


def wait_for(path: str) -> None:
    deadline = time.monotonic() + 120
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def kill_self(name: str) -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), getattr(signal, name))
    time.sleep(60)


def exit_with(code: str) -> None:
    sys.stdout.flush()
    sys.exit(int(code))


def write_pid(path: str, pid: int) -> None:
    # write then rename, so that a reader never sees a half-written pid
    partial = Path(f"{path}.partial")
    partial.write_text(str(pid))
    partial.rename(path)


ACTIONS = {
    "echo": echo,
    "echo-stdin": echo_stdin,
    "echo-env": echo_env,
    "echo-cwd": echo_cwd,
    "stderr": to_stderr,
    "stderr-flood": stderr_flood,
    "flood": flood,
    "long-line": long_line,
    "result-file": result_file,
    "result-fifo": result_fifo,
    "pid-file": pid_file,
    "grandchild": grandchild,
    "detached-grandchild": detached_grandchild,
    "escaped-grandchild": escaped_grandchild,
    "ignore-sigterm": ignore_sigterm,
    "wait-for": wait_for,
    "sleep": lambda seconds: time.sleep(float(seconds)),
    "kill-self": kill_self,
    "exit": exit_with,
}


def main() -> None:
    context = json.loads(Path(os.environ["PX_CONTEXT_FILE"]).read_text())
    for line in context["instructions"].splitlines():
        action, _, argument = line.strip().partition(" ")
        if action:
            ACTIONS[action](argument)


if __name__ == "__main__":
    main()
