"""The service as a real process: start it, talk to it, kill it."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import FINISHED, PROFILES, TESTS

PATIENCE_SECONDS = 60.0  # catches a hang; measures nothing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServiceProcess:
    """One ``python -m app`` process on 127.0.0.1, its output kept in a file."""

    database_url: str
    folder: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    child: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.folder / f"service-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def env(self) -> dict[str, str]:
        return os.environ | {
            "PX_PORT": str(self.port),
            "PX_DATABASE_URL": self.database_url,
            "PX_PROFILES_PATH": str(PROFILES),
            "PX_WORKDIR_ROOT": str(self.folder / "runs"),
            "PX_SIMULATED_TIME_SCALE": "0.01",
            "PX_LOG_LEVEL": "INFO",
            **self.settings,
        }

    def spawn(self) -> subprocess.Popen:
        log = open(self.folder / f"service-{self.port}.log", "ab")  # noqa: SIM115
        self.child = subprocess.Popen(
            [sys.executable, "-m", "app"],
            env=self.env(),
            cwd=TESTS.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self.child

    async def start(self) -> "ServiceProcess":
        self.spawn()
        await self.ready()
        return self

    async def ready(self) -> None:
        assert self.child is not None
        deadline = time.monotonic() + PATIENCE_SECONDS
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.child.poll() is not None:
                    raise AssertionError(f"the service exited:\n{self.log}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"the service did not become ready:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL: no clean-up code of the service runs."""
        assert self.child is not None
        self.child.send_signal(signal.SIGKILL)
        self.child.wait(timeout=PATIENCE_SECONDS)

    async def terminate(self) -> int:
        """SIGTERM, then wait for the process to exit by itself."""
        assert self.child is not None
        self.child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + PATIENCE_SECONDS
        while self.child.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert self.child.returncode is not None, "the service did not stop"
        return self.child.returncode

    def stop(self) -> None:
        """End the process if it still runs (test clean-up)."""
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGKILL)
            self.child.wait(timeout=PATIENCE_SECONDS)

    # requests

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.post(path, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            response = await client.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post("/executions", json=body)
        assert response.status_code in (201, 202), response.text
        return response.json()

    async def events(self, execution_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            page = await self.get(
                f"/executions/{execution_id}/events",
                params={"after_seq": events[-1]["seq"] if events else 0},
            )
            events += page["items"]
            if not page["items"]:
                return events

    async def wait_for_event(
        self, execution_id: str, type: str, step_id: str | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while time.monotonic() < deadline:
            for event in await self.events(execution_id):
                if event["type"] == type and step_id in (None, event["step_id"]):
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {type} event for {step_id}:\n{self.log}")

    async def wait_finished(self, execution_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while time.monotonic() < deadline:
            execution = await self.get(f"/executions/{execution_id}")
            if execution["status"] in FINISHED:
                return execution
            await asyncio.sleep(0.05)
        raise AssertionError(f"{execution_id} did not finish:\n{self.log}")
