"""The service as users start it: a real process, a real socket."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FINISHED, PROFILES, TESTS
from tests.serving import free_port


@pytest.fixture
def process_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "PX_PORT": str(port),
        "PX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'px.db'}",
        "PX_PROFILES_PATH": str(PROFILES),
        "PX_WORKDIR_ROOT": str(tmp_path / "runs"),
        "PX_SIMULATED_TIME_SCALE": "0.05",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "app"], env=env, cwd=TESTS.parent, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, child)
        yield url
    finally:
        child.terminate()
        child.wait(timeout=30)
        child.stderr.close()


def _wait_until_ready(url: str, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(child.stderr.read().decode())
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the service did not become ready")


def _wait_finished(url: str, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        execution = httpx.get(f"{url}/executions/{execution_id}").json()
        if execution["status"] in FINISHED:
            return execution
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


class TestServiceProcess:
    def test_a_client_that_hangs_up_after_submitting_does_not_stop_its_execution(
        self, process_url: str
    ) -> None:
        body = b'{"task": "Implement login and register features"}'
        port = int(process_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(
                b"POST /executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            raw.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 30
        while not (listing := httpx.get(f"{process_url}/executions").json())["items"]:
            assert time.monotonic() < deadline, "the submit was not stored"
            time.sleep(0.05)
        execution = _wait_finished(process_url, listing["items"][0]["id"])
        assert execution["status"] == "succeeded"

    def test_a_dry_run_preview_works_as_in_the_readme(self, process_url: str) -> None:
        response = httpx.post(
            f"{process_url}/executions",
            json={
                "task": "Implement login feature with UI, backend, and tests",
                "config": {"dry_run": True},
            },
        )
        assert response.status_code == 201
        assert "Phase 1 (3 steps in parallel)" in response.json()["plan"]["description"]


def start_app(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run `python -m app` expecting it to refuse, as a user would see it."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestStartupChecks:
    def test_a_broken_profiles_file_stops_the_start_with_one_clear_line(
        self, tmp_path: Path
    ) -> None:
        profiles = tmp_path / "profiles.toml"
        profiles.write_text('[profiles.bad]\nrunner = "teleport"\n')
        child = start_app(
            os.environ
            | {
                "PX_PROFILES_PATH": str(profiles),
                "PX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'px.db'}",
            }
        )
        assert child.returncode != 0
        assert "teleport" in child.stderr
        assert "Traceback" not in child.stderr

    def test_an_open_listener_without_a_key_is_refused_at_start(self) -> None:
        env = os.environ | {"PX_HOST": "0.0.0.0", "PX_DATABASE_URL": "sqlite://"}
        env.pop("PX_API_KEY", None)
        child = start_app(env)
        assert child.returncode != 0
        assert "PX_API_KEY" in child.stderr
        assert "Traceback" not in child.stderr

    @pytest.mark.parametrize(
        ("url", "shown", "reason"),
        [
            ("bogus://x", "bogus://x", "Can't load plugin"),
            ("notaurl", "notaurl", "Could not parse"),
            (
                "postgresql+asyncpg://postgres:secret@127.0.0.1:{port}/px",
                "postgresql+asyncpg://postgres:***@127.0.0.1:{port}/px",
                "Connect call failed",
            ),
        ],
    )
    def test_a_database_that_cannot_be_opened_stops_the_start_in_one_line(
        self, url: str, shown: str, reason: str
    ) -> None:
        port = free_port()  # nothing listens there
        env = os.environ | {
            "PX_PORT": str(free_port()),
            "PX_DATABASE_URL": url.format(port=port),
        }
        child = start_app(env)
        assert child.returncode == 1
        assert child.stderr.startswith(
            f"parallel-exec: cannot open the database {shown.format(port=port)}: "
        )
        assert reason in child.stderr and "secret" not in child.stderr
        assert child.stderr.count("\n") == 1

    def test_arguments_get_the_usage_instead_of_a_start(self) -> None:
        child = start_app(dict(os.environ), "--port", "9000")
        assert child.returncode == 2
        assert "PX_" in child.stderr

    def test_a_heartbeat_too_slow_for_the_lease_is_refused_in_words(self) -> None:
        env = os.environ | {
            "PX_HEARTBEAT_SECONDS": "10",
            "PX_LEASE_SECONDS": "15",
            "PX_DATABASE_URL": "sqlite://",
        }
        child = start_app(env)
        assert child.returncode != 0
        assert "PX_HEARTBEAT_SECONDS=10 must be at most half" in child.stderr
        assert "PX_?" not in child.stderr
        assert "Traceback" not in child.stderr

    def test_a_port_in_use_stops_the_start_before_anything_is_touched(
        self, tmp_path: Path
    ) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = os.environ | {
                "PX_PORT": str(port),
                "PX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'px.db'}",
            }
            child = start_app(env)
        assert child.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in child.stderr
        assert "Traceback" not in child.stderr
        assert not (tmp_path / "px.db").exists()  # no database opened, no take-over
