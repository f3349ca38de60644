"""The guard: keeps a command run from outliving the service (Linux only).

    python -I -S guard.py SERVICE_PID GRACE_SECONDS REPORT_FD PROGRAM [ARG...]

The command runner starts the guard, by this file's path, as the leader of a new
session. The guard asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``, which holds even when the service is killed with
SIGKILL), checks that its parent is still ``SERVICE_PID``, then starts the
program in its own process group with the same stdin, stdout, stderr, working
directory and environment. It waits for the program and exits as the program
did: with the same exit code, or killed by the same signal.

A SIGTERM while the service lives comes from the runner stopping the group,
which the program receives too: the guard waits on, so that the runner still
sees how the program ended. Once the service is gone, the guard stops the group
itself: SIGTERM, then, when the program has not ended within ``GRACE_SECONDS``,
SIGKILL to what is left, the guard included.

The guard writes nothing on stdout or stderr. When the program cannot be
started, it writes the errno to ``REPORT_FD`` and exits with 127; otherwise it
closes ``REPORT_FD`` unwritten once the program has started. It imports only a
few standard modules, so that it adds little to the start of a run.
"""

import ctypes
import os
import sys
import time

try:
    # the C module behind signal: the same names, without signal's enums, which
    # would add a third to the guard's start-up time
    import _signal as signal
except ImportError:
    import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_POLL_SECONDS = 0.05
# Python ignores these at start-up; subprocess gives a program their defaults back
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
_START_FAILED_EXIT_CODE = 127

_libc = ctypes.CDLL(None, use_errno=True)


class Guard:
    """Watches the service and the program, and stops the group when it must."""

    def __init__(self, service_pid: int, grace_seconds: float) -> None:
        self.service_pid = service_pid
        self.grace_seconds = grace_seconds
        self.program_pid: int | None = None

    def watch_service(self) -> bool:
        """Ask for SIGTERM when the service dies; False if it is gone already."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        return os.getppid() == self.service_pid

    def start(self, argv: list[str]) -> None:
        """Start the program in the guard's process group."""
        self.program_pid = os.posix_spawnp(
            argv[0], argv, _initial_environ(), setsigdef=_RESTORED_SIGNALS
        )

    def wait(self) -> int:
        """Wait for the program: its exit code, or minus the signal that killed it."""
        _, status = os.waitpid(self.program_pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        # the kernel sends the same signal to threads' children when a thread
        # of the service ends; only a new parent means the service has died
        if os.getppid() != self.service_pid:
            self._stop_group()

    def _stop_group(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        group = os.getpgrp()
        os.killpg(group, signal.SIGTERM)

        deadline = time.monotonic() + self.grace_seconds
        while self._program_running() and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
        os.killpg(group, signal.SIGKILL)
        os._exit(1)  # not reached: SIGKILL reaches the guard too

    def _program_running(self) -> bool:
        if self.program_pid is None:
            return False
        try:
            pid, _ = os.waitpid(self.program_pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0


def exit_as(code: int) -> None:
    """Exit with the exit code, or die by the signal when it is negative."""
    if code >= 0:
        os._exit(code)

    signum = -code
    # the program has dumped its core if it was to; the guard adds none
    _prctl(_PR_SET_DUMPABLE, 0)
    try:
        signal.signal(signum, signal.SIG_DFL)
    except OSError:
        pass  # SIGKILL and SIGSTOP keep their default action anyway
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # only for a signal whose default is not to end


def _initial_environ() -> dict[bytes, bytes]:
    """The environment as the runner gave it.

    ``os.environ`` may differ: Python sets LC_CTYPE at start-up in the C locale
    (PEP 538), and the program must not receive that.
    """
    with open("/proc/self/environ", "rb") as file:
        entries = file.read().split(b"\0")
    pairs = (entry.partition(b"=") for entry in entries if b"=" in entry)
    return {name: value for name, _, value in pairs}


def _prctl(option: int, value: int) -> None:
    unused = ctypes.c_ulong(0)
    if _libc.prctl(option, ctypes.c_ulong(value), unused, unused, unused) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def _report(fd: int, error: int) -> None:
    try:
        os.write(fd, str(error).encode())
    except OSError:
        pass  # the runner stopped listening: it is stopping the run
    os.close(fd)


def main(args: list[str]) -> None:
    service_pid, grace_seconds, report_fd, *argv = args
    report = int(report_fd)
    os.set_inheritable(report, False)

    guard = Guard(int(service_pid), float(grace_seconds))
    if not guard.watch_service():
        os._exit(1)  # the service died before the guard could watch it

    try:
        guard.start(argv)
    except OSError as exc:
        _report(report, exc.errno)
        os._exit(_START_FAILED_EXIT_CODE)
    os.close(report)

    exit_as(guard.wait())


if __name__ == "__main__":
    main(sys.argv[1:])
