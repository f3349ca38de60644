"""Behaviour that depends on the operator's settings and on restarts."""

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.settings import Settings
from tests.api.test_executions import all_events, scripted, step
from tests.conftest import start_service


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split(")")[-1].split()[0] != "Z"


class TestLogCap:
    async def test_log_lines_past_the_cap_are_dropped_with_one_notice(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(max_log_events_per_run=5)
        async with start_service(settings) as service:
            lines = [f"line {i}" for i in range(30)]
            execution = await service.run("x", **scripted(step("loud", lines=lines)))
            events = await all_events(service, execution["id"])
        logs = [e["data"]["line"] for e in events if e["type"] == "step.log"]
        assert logs[:5] == lines[:5]
        assert len(logs) == 6
        assert "omitted" in logs[-1]


class TestCancelKillsProcesses:
    async def test_no_process_of_a_cancelled_step_survives(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "grandchild.pid"
        async with start_service(make_settings()) as service:
            body = scripted(step("slow", sleep=60, child_pid_file=str(pid_file)))
            created = await service.submit("x", **body)
            while not pid_file.exists() or not pid_file.read_text():
                await asyncio.sleep(0.02)
            response = await service.client.post(f"/executions/{created['id']}/cancel")
            assert response.json()["status"] == "cancelled"
        grandchild = int(pid_file.read_text())
        for _ in range(300):
            if not alive(grandchild):
                break
            await asyncio.sleep(0.1)
        assert not alive(grandchild)


class TestApiKey:
    async def test_requests_without_the_key_are_refused(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with start_service(make_settings(api_key="s3cret")) as service:
            refused = await service.client.get("/executions")
            allowed = await service.client.get(
                "/executions", headers={"X-API-Key": "s3cret"}
            )
            health = await service.client.get("/healthz")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert allowed.status_code == 200
        assert health.status_code == 200

    async def test_a_stream_without_the_key_is_closed_with_4401(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with start_service(make_settings(api_key="s3cret")) as service:
            url = f"{service.ws_url}/executions/any/stream"
            async with connect(url) as websocket:
                try:
                    await websocket.recv()
                except ConnectionClosed:
                    pass
            assert websocket.close_code == 4401

    def test_listening_beyond_loopback_without_a_key_is_refused(self) -> None:
        try:
            Settings(host="0.0.0.0", _env_file=None)
        except ValueError as error:
            assert "PX_API_KEY" in str(error)
        else:
            raise AssertionError("an open listener without an API key was accepted")


class TestRestart:
    async def test_a_step_cut_off_by_a_stop_is_run_again_at_the_next_start(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(shutdown_grace_seconds=0)
        slow_first = {"on_attempt": {"1": {"sleep": 60}}}
        body = scripted(step("quick"), step("slow", ["quick"], **slow_first))
        async with start_service(settings) as service:
            created = await service.submit("x", **body)
            while not any(
                e["type"] == "step.started" and e["step_id"] == "slow"
                for e in await all_events(service, created["id"])
            ):
                await asyncio.sleep(0.02)
        async with start_service(settings) as service:
            execution = await service.wait_finished(created["id"])
            events = await all_events(service, created["id"])
            runs = (
                await service.client.get(f"/executions/{created['id']}/runs")
            ).json()
        assert execution["status"] == "succeeded"
        assert [(r["step_id"], r["attempt"], r["status"]) for r in runs] == [
            ("quick", 1, "succeeded"),
            ("slow", 1, "interrupted"),
            ("slow", 2, "succeeded"),
        ]
        types = [e["type"] for e in events]
        assert types.index("execution.interrupted") < types.index("execution.resumed")
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["type"] == "execution.finished"

    async def test_an_execution_whose_time_ran_out_while_stopped_ends_timed_out(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(shutdown_grace_seconds=0)
        body = scripted(step("slow", sleep=60), execution_timeout_s=1.0)
        async with start_service(settings) as service:
            created = await service.submit("x", **body)
            while not any(
                e["type"] == "step.started"
                for e in await all_events(service, created["id"])
            ):
                await asyncio.sleep(0.02)
        await asyncio.sleep(1.2)
        async with start_service(settings) as service:
            execution = await service.wait_finished(created["id"])
            runs = (
                await service.client.get(f"/executions/{created['id']}/runs")
            ).json()
        assert execution["status"] == "timed_out"
        assert [(r["attempt"], r["status"]) for r in runs] == [(1, "interrupted")]
