"""The generated httpx client: in step with the spec, and usable on its own."""

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.api.client import generate, tree
from tests.serving import ServiceProcess

COMMITTED = Path(__file__).parents[2] / "openapi" / "client"
INSTALL_SECONDS = 600  # catches a hang; a fresh install downloads from the registry


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(f"sqlite+aiosqlite:///{tmp_path / 'px.db'}", tmp_path)
    await process.start()
    try:
        yield process
    finally:
        process.stop()


class TestGeneratedClient:
    def test_the_committed_client_is_what_the_generator_makes_of_the_spec(
        self, tmp_path: Path
    ) -> None:
        generate(tmp_path / "client")
        fresh, committed = tree(tmp_path / "client"), tree(COMMITTED)

        stale = sorted(
            path
            for path in fresh.keys() | committed.keys()
            if fresh.get(path) != committed.get(path)
        )
        assert not stale, f"openapi/client is stale: run scripts/openapi ({stale})"

    def test_it_installs_alone_and_talks_to_a_real_service(
        self, served: ServiceProcess, tmp_path: Path
    ) -> None:
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", str(COMMITTED)],
            check=True,
            timeout=INSTALL_SECONDS,
        )
        script = textwrap.dedent(
            f"""
            from parallel_exec_client import Client
            from parallel_exec_client.api.executions import (
                executions_create, executions_get_plan,
            )
            from parallel_exec_client.models import ExecutionCreate

            client = Client(base_url="{served.url}")
            body = ExecutionCreate.from_dict(
                {{"task": "Implement login feature", "config": {{"dry_run": True}}}}
            )
            created = executions_create.sync_detailed(client=client, body=body)
            plan = executions_get_plan.sync(created.parsed.id, client=client)
            print(created.status_code, created.parsed.status, len(plan.steps))
            """
        )
        answer = subprocess.run(
            [python, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            cwd=tmp_path,
        )

        assert answer.stdout.split() == ["201", "planned", "8"]
        imported = subprocess.run(
            [python, "-c", "import app"], capture_output=True, cwd=tmp_path
        )
        assert imported.returncode != 0, "the client alone brings no service code"
