"""The ready-made profiles of profiles/ready-made.toml, each run through a service.

The file is used as shipped, with only the lines marked "yours" pointed at
stand-in peers on 127.0.0.1: a chat-completions server, a webhook service and a
script that answers as a coding-agent CLI does.
"""

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.runners.prompts import DEFAULT_SYSTEM_PROMPTS
from app.settings import Settings
from tests.api.test_executions import all_events, runs_by_step
from tests.conftest import Service, start_service
from tests.runners.peers import Exchange, OpenAIPeer, WebhookPeer

READY_MADE = Path(__file__).parents[2] / "profiles" / "ready-made.toml"
CLI = Path(__file__).parents[1] / "runners" / "agents" / "coding_agent_cli.py"
CLAUDE = '["claude", "-p", "--output-format", "json"]'
SECRET = "sk-test-SECRET-4217"
BUG_TASK = "Fix bug in node X"  # explore, explore, builder, quality, reviewer


@pytest.fixture
def peers():
    with OpenAIPeer() as chat, WebhookPeer() as webhook:
        yield chat, webhook


@pytest.fixture
def ready_made(tmp_path: Path, peers) -> Path:
    """The shipped file, its endpoints and CLI pointed at the stand-ins."""
    chat, webhook = peers
    text = READY_MADE.read_text()
    for old, new in (
        (CLAUDE, json.dumps([sys.executable, str(CLI)])),
        ("http://127.0.0.1:11434/v1", chat.url("/v1")),
        ("http://127.0.0.1:9000/steps", webhook.url("/steps")),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "ready-made.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def service(
    make_settings: Callable[..., Settings], ready_made: Path, monkeypatch
):
    monkeypatch.setenv("AGENT_SERVICE_TOKEN", SECRET)
    async with start_service(make_settings(profiles_path=ready_made)) as running:
        yield running


def echo_key_reply(exchange: Exchange) -> None:
    """A 401 whose message quotes the key it got, as some services do."""
    key = exchange.request.headers["authorization"]
    exchange.send(401, json.dumps({"error": f"key {key} is not allowed"}))


async def run(service: Service, profile: str) -> dict:
    return await service.run(BUG_TASK, config={"profile": profile, "mode": "chain"})


class TestReadyMadeProfiles:
    async def test_the_coding_agent_profile_runs_the_cli_per_step(
        self, service: Service, tmp_path: Path
    ) -> None:
        execution = await run(service, "coding-agent")

        assert execution["status"] == "succeeded", execution
        runs = await runs_by_step(service, execution["id"])
        for run_ in runs.values():
            assert run_["runner"] == "command"
            assert run_["output"].startswith("Done. prompt sha256:")
            assert (run_["input_tokens"], run_["output_tokens"]) == (120, 45)
            assert run_["cost"] == 0.0123
        work = list((tmp_path / "runs").rglob("cli-work.txt"))
        assert len(work) == len(runs)
        assert "Task: Fix bug in node X" in work[0].read_text()
        assert execution["result"]["total_tokens"] == 165 * len(runs)

    async def test_the_openai_profile_sends_each_agent_its_prompt(
        self, service: Service, peers
    ) -> None:
        chat, _ = peers

        execution = await run(service, "openai-compatible")

        assert execution["status"] == "succeeded", execution
        runs = await runs_by_step(service, execution["id"])
        assert {run_["output"] for run_ in runs.values()} == {OpenAIPeer.DEFAULT_TEXT}
        bodies = [request.json() for request in chat.requests]
        assert {request.path for request in chat.requests} == {"/v1/chat/completions"}
        assert {body["model"] for body in bodies} == {"qwen2.5-coder:7b"}
        assert {body["temperature"] for body in bodies} == {0.2}
        prompts = {body["messages"][0]["content"] for body in bodies}
        agents = {run_["agent"] for run_ in runs.values()}
        assert prompts == {DEFAULT_SYSTEM_PROMPTS[agent] for agent in agents}
        assert execution["result"]["input_tokens"] == 12 * len(runs)
        assert execution["result"]["cost"] is None
        events = await all_events(service, execution["id"])
        lines = [e["data"]["line"] for e in events if e["type"] == "step.log"]
        assert lines.count("First line of the answer.") == len(runs)

    async def test_the_webhook_profile_posts_each_step_with_the_key(
        self, service: Service, peers
    ) -> None:
        _, webhook = peers

        execution = await run(service, "webhook")

        assert execution["status"] == "succeeded", execution
        assert len(webhook.requests) == len(
            await runs_by_step(service, execution["id"])
        )
        for request in webhook.requests:
            assert request.path == "/steps"
            assert request.headers["authorization"] == f"Bearer {SECRET}"
            assert request.json()["task"] == BUG_TASK

    async def test_the_mixed_profile_routes_each_agent_to_its_runner(
        self, service: Service, peers
    ) -> None:
        chat, _ = peers

        execution = await run(service, "mixed")

        assert execution["status"] == "succeeded", execution
        runs = await runs_by_step(service, execution["id"])
        runners = {run_["agent"]: run_["runner"] for run_ in runs.values()}
        assert runners == {
            "explore": "openai",
            "builder": "command",
            "quality": "openai",
            "reviewer": "openai",
        }
        models = [request.json()["model"] for request in chat.requests]
        assert sorted(models) == sorted(
            ["qwen2.5-coder:7b"] * 3 + ["qwen2.5-coder:32b"]
        )
        openai_runs = [r for r in runs.values() if r["runner"] == "openai"]
        assert {run_["cost"] for run_ in openai_runs} == {0.0}

    async def test_the_key_never_reaches_events_runs_or_logs(
        self, service: Service, peers, caplog
    ) -> None:
        _, webhook = peers
        webhook.script(echo_key_reply)
        caplog.set_level(logging.DEBUG)

        execution = await run(service, "webhook")

        assert execution["status"] == "failed"
        runs = await runs_by_step(service, execution["id"])
        [failed] = [r for r in runs.values() if r["status"] == "failed"]
        assert "HTTP 401" in failed["error"]
        assert "key Bearer *** is not allowed" in failed["error"]
        stored = json.dumps(
            [
                execution,
                await all_events(service, execution["id"]),
                list(runs.values()),
            ]
        )
        assert SECRET not in stored
        assert SECRET not in caplog.text
