"""Fixtures: real databases (SQLite and PostgreSQL) and a real service on 127.0.0.1."""

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from app.main import create_app
from app.settings import Settings
from app.storage.models import Base
from tests.invariants import check_invariants

TESTS = Path(__file__).parent
PROFILES = TESTS / "profiles.toml"
POSTGRES_ADMIN_DSN = os.environ.get(
    "PX_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
FINISHED = {"planned", "succeeded", "failed", "partial", "cancelled", "timed_out"}


# databases


def _start_postgres_if_down() -> None:
    """Start the machine's PostgreSQL cluster when nothing answers on 5432."""
    if shutil.which("pg_isready") is None:
        return
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
        return
    versions = (
        sorted(os.listdir("/etc/postgresql"))
        if os.path.isdir("/etc/postgresql")
        else []
    )
    if versions:
        subprocess.run(
            [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                versions[-1],
                "main",
                "start",
            ],
            check=False,
        )
        for _ in range(50):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
                return
            time.sleep(0.2)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at its end."""
    if os.environ.get("PX_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("PX_TEST_SKIP_POSTGRES=1: PostgreSQL tests not run")
    _start_postgres_if_down()
    name = f"px_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL is needed at {POSTGRES_ADMIN_DSN} ({error}); start it, "
            "or set PX_TEST_SKIP_POSTGRES=1 to leave those tests out"
        )
    dsn = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    yield dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        exists = await connection.fetchval("SELECT to_regclass('executions')")
        if exists:
            tables = ", ".join(Base.metadata.tables)
            await connection.execute(f"TRUNCATE {tables} CASCADE")
    finally:
        await connection.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'px.db'}"
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "profiles_path": PROFILES,
            "workdir_root": tmp_path / "runs",
            "simulated_time_scale": 0.01,
            "log_level": "WARNING",
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)

    return make


# a real service on 127.0.0.1


@dataclass
class Service:
    server: uvicorn.Server
    base_url: str
    client: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    @property
    def app(self) -> Any:
        return self.server.config.app

    async def submit(self, task: str = "Implement login feature", **body: Any) -> dict:
        response = await self.client.post("/executions", json={"task": task, **body})
        assert response.status_code in (201, 202), response.text
        return response.json()

    async def wait_finished(self, execution_id: str, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            execution = (await self.client.get(f"/executions/{execution_id}")).json()
            if execution["status"] in FINISHED:
                return execution
            await asyncio.sleep(0.02)
        raise AssertionError(f"execution {execution_id} did not finish: {execution}")

    async def run(self, task: str = "Implement login feature", **body: Any) -> dict:
        execution = await self.submit(task, **body)
        return await self.wait_finished(execution["id"])


@asynccontextmanager
async def start_service(
    settings: Settings, *, check: bool = True
) -> AsyncIterator[Service]:
    """Serve the app with uvicorn on a free port of 127.0.0.1 in this event loop.

    When it has stopped, the stored data is checked against the invariants in
    tests/invariants.py (unless check is False).
    """
    # idle connections stay open longer than any pause of the test client, so
    # that no request races the server closing its connection (a ReadError)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_keep_alive=120,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        try:
            yield Service(server, base_url, client)
        finally:
            server.should_exit = True
            await serving
    if check:
        await check_invariants(settings.database_url)


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    async with start_service(make_settings()) as running:
        yield running
