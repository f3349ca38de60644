import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.runners import guard
from tests.runners.processes import PATIENCE_SECONDS

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="the guard relies on Linux's PR_SET_PDEATHSIG"
)


def start_guard(service_pid: int, argv: list[str]) -> subprocess.Popen:
    """Start the guard as the command runner does, from this process."""
    report_fd, guard_report_fd = os.pipe()
    os.close(report_fd)
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                guard.__file__,
                str(service_pid),
                "1.0",
                str(guard_report_fd),
                *argv,
            ],
            start_new_session=True,
            pass_fds=(guard_report_fd,),
        )
    finally:
        os.close(guard_report_fd)


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


class TestServiceCheck:
    def test_it_starts_nothing_when_the_service_has_died_already(self, tmp_path):
        marker = tmp_path / "started"

        guarded = start_guard(dead_pid(), ["touch", str(marker)])

        assert guarded.wait(PATIENCE_SECONDS) == 1
        assert not marker.exists()


class TestServiceThreads:
    def test_the_end_of_the_thread_that_started_it_stops_nothing(self, tmp_path):
        started, gate = tmp_path / "started", tmp_path / "gate"
        program = [
            "sh",
            "-c",
            f'touch "{started}"; while [ ! -e "{gate}" ]; do sleep 0.02; done',
        ]
        guards: list[subprocess.Popen] = []

        def start_and_end_once_watched() -> None:
            guards.append(start_guard(os.getpid(), program))
            # the guard watches its parent before it starts the program
            wait_for_file(started)

        # the kernel signals the guard when the thread that started it ends
        starter = threading.Thread(target=start_and_end_once_watched)
        starter.start()
        starter.join()
        gate.touch()

        assert guards[0].wait(PATIENCE_SECONDS) == 0


class TestExit:
    def test_it_dies_by_the_signal_that_killed_the_program(self):
        guarded = start_guard(os.getpid(), ["sh", "-c", "kill -TERM $$"])

        assert guarded.wait(PATIENCE_SECONDS) == -signal.SIGTERM
