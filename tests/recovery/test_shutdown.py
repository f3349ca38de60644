"""SIGTERM: no new work, running steps get a grace period, the rest resume later."""

import asyncio
import json
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.errors import ShuttingDown
from app.execution.schemas import ExecutionCreate
from app.runtime import open_runtime
from app.settings import Settings
from tests.recovery.conftest import Processes, plan, step
from tests.runners.processes import read_pid, wait_until_gone
from tests.serving import ServiceProcess


async def watch(url: str, seen: list[dict]) -> int | None:
    """Collect events until the server closes the stream; its close code."""
    async with connect(url) as websocket:
        try:
            async for message in websocket:
                seen.append(json.loads(message))
        except ConnectionClosed:
            pass
        return websocket.close_code


async def stopped_cleanly(service: ServiceProcess) -> None:
    """SIGTERM; uvicorn re-raises it after its shutdown, so -15 is a clean end."""
    assert await service.terminate() in (0, -signal.SIGTERM)
    assert "service.stopped" in service.log, service.log


class TestSigterm:
    async def test_running_steps_finish_and_the_rest_resume_at_the_next_start(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        started_file = tmp_path / "started.pid"
        body = plan(
            step("finishing", sleep=1.5, pid_file=str(started_file)),
            step("later", ["finishing"]),
        )
        service = await processes(PX_SHUTDOWN_GRACE_SECONDS="30").start()
        created = await service.submit(body)
        await read_pid(started_file)
        seen: list[dict] = []
        stream = f"{service.ws_url}/executions/{created['id']}/stream"
        watcher = asyncio.create_task(watch(stream, seen))
        while not seen:
            await asyncio.sleep(0.02)

        await stopped_cleanly(service)
        assert await watcher in (1001, 1012)  # going away / service restart

        again = await processes().start()
        after = seen[-1]["seq"]
        rest: list[dict] = []
        stream = f"{again.ws_url}/executions/{created['id']}/stream?after_seq={after}"
        assert await watch(stream, rest) == 1000
        execution = await again.get(f"/executions/{created['id']}")
        assert execution["status"] == "succeeded"

        events = seen + rest
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        types = [e["type"] for e in events]
        assert types.index("step.succeeded") < types.index("execution.interrupted")
        assert types.index("execution.interrupted") < types.index("execution.resumed")
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert [(r["step_id"], r["attempt"], r["status"]) for r in runs] == [
            ("finishing", 1, "succeeded"),
            ("later", 1, "succeeded"),
        ]

    async def test_steps_that_outlast_the_grace_period_are_interrupted_and_rerun(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("long", on_attempt={"1": {"sleep": 120, "pid_file": str(agent_pid)}})
        )
        service = await processes(PX_SHUTDOWN_GRACE_SECONDS="0.5").start()
        created = await service.submit(body)
        pid = await read_pid(agent_pid)

        await stopped_cleanly(service)
        assert await wait_until_gone(pid), "the agent outlived the stopped service"

        again = await processes().start()
        execution = await again.wait_finished(created["id"])
        assert execution["status"] == "succeeded"
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert [(r["attempt"], r["status"]) for r in runs] == [
            (1, "interrupted"),
            (2, "succeeded"),
        ]

    async def test_a_second_sigterm_skips_the_rest_of_the_grace_period(
        self, processes: Processes, tmp_path: Path
    ) -> None:
        # the step would finish well within the grace period: only the second
        # signal can make it end interrupted
        agent_pid = tmp_path / "agent.pid"
        body = plan(
            step("step", on_attempt={"1": {"sleep": 20, "pid_file": str(agent_pid)}})
        )
        service = await processes(PX_SHUTDOWN_GRACE_SECONDS="600").start()
        created = await service.submit(body)
        pid = await read_pid(agent_pid)
        service.child.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        await stopped_cleanly(service)  # the second SIGTERM
        assert await wait_until_gone(pid)

        again = await processes().start()
        await again.wait_finished(created["id"])
        runs = await again.get(f"/executions/{created['id']}/runs")
        assert [r["status"] for r in runs] == ["interrupted", "succeeded"]

    async def test_a_submit_still_arriving_when_sigterm_comes_gets_503(
        self, processes: Processes
    ) -> None:
        service = await processes().start()
        body = json.dumps({"task": "Implement login feature"}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(
            b"POST /executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        await writer.drain()
        await asyncio.sleep(0.3)
        service.child.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        writer.write(body[10:])
        await writer.drain()
        answer = (await reader.read()).decode()
        writer.close()
        assert answer.startswith("HTTP/1.1 503"), answer
        assert '"code":"shutting_down"' in answer
        assert (await service.terminate()) in (0, -signal.SIGTERM)
        assert "execution.accepted" not in service.log

    async def test_a_process_that_is_shutting_down_refuses_new_work(
        self, database_url: str, tmp_path: Path
    ) -> None:
        settings = Settings(
            database_url=database_url, workdir_root=tmp_path, _env_file=None
        )
        request = ExecutionCreate(task="Implement login feature")
        async with open_runtime(settings) as runtime:
            await runtime.executor.shutdown(grace_s=0, wait_s=0)
            with pytest.raises(ShuttingDown):
                await runtime.service.submit(request)
            preview = ExecutionCreate.model_validate(
                {"task": request.task, "config": {"dry_run": True}}
            )
            execution, _ = await runtime.service.submit(preview)
            assert execution.status == "planned"  # a preview runs nothing


class TestOneProcessPerSqliteFile:
    @pytest.mark.parametrize("name", ["same path", "symbolic link", "hard link"])
    async def test_a_second_process_on_the_same_file_is_refused(
        self, tmp_path: Path, name: str
    ) -> None:
        database = tmp_path / "px.db"
        first = await ServiceProcess(
            f"sqlite+aiosqlite:///{database}", tmp_path
        ).start()
        other_name = {
            "same path": database,
            "symbolic link": tmp_path / "link.db",
            "hard link": tmp_path / "hard.db",
        }[name]
        if name == "symbolic link":
            other_name.symlink_to(database)
        elif name == "hard link":
            other_name.hardlink_to(database)
        try:
            second = ServiceProcess(f"sqlite+aiosqlite:///{other_name}", tmp_path)
            child = second.spawn()
            assert child.wait(timeout=60) != 0
            assert "in use by another parallel-exec process" in second.log
            if name != "hard link":  # a hard link cannot tell where the pid is
                assert f"pid {first.child.pid}" in second.log
            assert "Traceback" not in second.log
            assert (await first.get("/readyz"))["status"] == "ready"
        finally:
            first.stop()
