"""Database connections go back to the pool whatever ends the work."""

import asyncio
import time

from websockets.asyncio.client import connect

from tests.api.test_executions import all_events, scripted, step
from tests.conftest import Service


async def pool_settles(service: Service) -> int:
    """Connections still checked out once nothing runs (waits up to 10 s)."""
    pool = service.app.state.database.engine.pool
    deadline = time.monotonic() + 10
    while pool.checkedout() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return pool.checkedout()


class TestConnectionsComeBack:
    async def test_after_cancels_of_busy_executions(self, service: Service) -> None:
        body = scripted(
            step("talk", numbered_lines=200, sleep=30),
            step("wait", sleep=30),
            step("after", ["talk", "wait"]),
        )
        created = [await service.submit("x", **body) for _ in range(6)]
        for execution in created:
            while not any(
                e["type"] == "step.log"
                for e in await all_events(service, execution["id"])
            ):
                await asyncio.sleep(0.02)
        answers = await asyncio.gather(
            *(service.client.post(f"/executions/{e['id']}/cancel") for e in created)
        )
        assert [a.status_code for a in answers] == [200] * 6
        for execution in created:
            finished = await service.wait_finished(execution["id"])
            assert finished["status"] == "cancelled"
        assert await pool_settles(service) == 0

    async def test_after_watchers_hang_up_mid_stream(self, service: Service) -> None:
        created = await service.submit(
            "x", **scripted(step("talk", numbered_lines=50, sleep=5))
        )
        url = f"{service.ws_url}/executions/{created['id']}/stream"
        for _ in range(5):
            async with connect(url) as websocket:
                await websocket.recv()  # one event, then the client leaves
        await service.client.post(f"/executions/{created['id']}/cancel")
        await service.wait_finished(created["id"])
        assert await pool_settles(service) == 0
