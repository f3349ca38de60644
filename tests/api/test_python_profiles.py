"""A profile whose steps a Python function carries out, imported by its path."""

from collections.abc import Callable
from pathlib import Path

import pytest

from app.settings import Settings
from tests.api.test_executions import runs_by_step, step
from tests.conftest import Service, start_service

STEPS_MODULE = """
import asyncio, json

from app.runners.base import StepResult, Usage


async def run(context):
    script = json.loads(context.instructions or "{}")
    await asyncio.sleep(0)
    if "fail" in script:
        raise ValueError(script["fail"])
    return StepResult(
        output={"step": context.step_id, "seen": context.state},
        state_updates=script.get("state", {}),
        usage=Usage(input_tokens=7, output_tokens=3),
    )
"""


@pytest.fixture
async def service(make_settings: Callable[..., Settings], tmp_path: Path):
    module = f"steps_{tmp_path.name.replace('-', '_')}"
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / f"{module}.py").write_text(STEPS_MODULE)
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        f'[profiles.in-house]\nrunner = "python"\nfunction = "{module}:run"\n'
        'python_path = ["./agents"]\n'
    )
    async with start_service(make_settings(profiles_path=profiles)) as running:
        yield running


def body(*steps: dict) -> dict:
    config = {"profile": "in-house", "fail_fast": False}
    return {"plan": {"steps": list(steps)}, "config": config}


class TestPythonProfiles:
    async def test_the_function_carries_out_each_step(self, service: Service) -> None:
        execution = await service.run(
            "Build",
            **body(
                step("design", state={"schema": "users"}), step("build", ["design"])
            ),
        )

        assert execution["status"] == "succeeded"
        runs = await runs_by_step(service, execution["id"])
        assert runs["build"]["runner"] == "python"
        assert runs["build"]["output"] == {"step": "build", "seen": {"schema": "users"}}
        assert execution["result"]["total_tokens"] == 20

    async def test_an_exception_fails_the_run_with_its_message(
        self, service: Service
    ) -> None:
        execution = await service.run("Build", **body(step("bad", fail="no schema")))

        runs = await runs_by_step(service, execution["id"])
        assert execution["status"] == "failed"
        assert runs["bad"]["error"] == "ValueError: no schema"
