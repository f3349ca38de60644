import asyncio
import contextlib
import json
from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.settings import Settings
from tests.api.test_executions import scripted, step
from tests.conftest import Service, start_service


async def read_all(url: str, limit: int | None = None) -> tuple[list[dict], int | None]:
    """Events until the server closes (or until limit), and the close code."""
    events: list[dict] = []
    async with connect(url) as websocket:
        try:
            async for message in websocket:
                events.append(json.loads(message))
                if limit is not None and len(events) == limit:
                    return events, None
        except ConnectionClosed:
            pass
        return events, websocket.close_code


def chatty(count: int = 20) -> dict:
    lines = [f"line {i}" for i in range(count)]
    return scripted(
        step("one", lines=lines, sleep=0.3),
        step("two", ["one"], lines=lines),
    )


class TestStream:
    async def test_a_watcher_gets_every_event_then_a_normal_close(
        self, service: Service
    ) -> None:
        created = await service.submit("x", **chatty())
        url = f"{service.ws_url}/executions/{created['id']}/stream"
        events, code = await read_all(url)
        assert code == 1000
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["type"] == "execution.finished"
        stored = (
            await service.client.get(f"/executions/{created['id']}/events")
        ).json()["items"]
        assert len(events) == len(stored)

    async def test_a_finished_execution_replays_and_closes(
        self, service: Service
    ) -> None:
        execution = await service.run("Fix bug in node X")
        url = f"{service.ws_url}/executions/{execution['id']}/stream?after_seq=2"
        events, code = await read_all(url)
        assert code == 1000
        assert events[0]["seq"] == 3
        assert events[-1]["seq"] == execution["last_seq"]

    async def test_a_reconnect_with_after_seq_has_no_gap_and_no_duplicate(
        self, service: Service
    ) -> None:
        created = await service.submit("x", **chatty(40))
        base = f"{service.ws_url}/executions/{created['id']}/stream"
        first, _ = await read_all(base, limit=7)
        rest, code = await read_all(f"{base}?after_seq={first[-1]['seq']}")
        seqs = [e["seq"] for e in first + rest]
        assert seqs == list(range(1, len(seqs) + 1))
        assert code == 1000

    async def test_many_watchers_each_get_every_event_once(
        self, service: Service
    ) -> None:
        created = await service.submit("x", **chatty())
        url = f"{service.ws_url}/executions/{created['id']}/stream"
        results = await asyncio.gather(*[read_all(url) for _ in range(10)])
        lengths = set()
        for events, code in results:
            assert code == 1000
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            lengths.add(len(events))
        assert len(lengths) == 1

    async def test_an_unknown_execution_is_refused_with_4404(
        self, service: Service
    ) -> None:
        events, code = await read_all(f"{service.ws_url}/executions/nope/stream")
        assert (events, code) == ([], 4404)

    @pytest.mark.parametrize("after_seq", ["-1", "abc", "1.5"])
    async def test_a_bad_after_seq_is_refused_with_4400(
        self, service: Service, after_seq: str
    ) -> None:
        created = await service.submit("x", config={"dry_run": True})
        url = (
            f"{service.ws_url}/executions/{created['id']}/stream?after_seq={after_seq}"
        )
        events, code = await read_all(url)
        assert (events, code) == ([], 4400)


class TestStreamEnds:
    async def test_a_watcher_that_has_seen_everything_is_closed_normally(
        self, service: Service
    ) -> None:
        execution = await service.run("Fix bug in node X")
        url = (
            f"{service.ws_url}/executions/{execution['id']}/stream"
            f"?after_seq={execution['last_seq']}"
        )
        events, code = await asyncio.wait_for(read_all(url), timeout=30)
        assert (events, code) == ([], 1000)

    async def test_after_seq_past_the_last_event_is_refused_with_4400(
        self, service: Service
    ) -> None:
        created = await service.submit("x", config={"dry_run": True})
        url = f"{service.ws_url}/executions/{created['id']}/stream?after_seq=500"
        events, code = await asyncio.wait_for(read_all(url), timeout=30)
        assert (events, code) == ([], 4400)

    async def test_a_very_long_unknown_id_is_refused_with_4404(
        self, service: Service
    ) -> None:
        url = f"{service.ws_url}/executions/{'x' * 500}/stream"
        events, code = await read_all(url)
        assert (events, code) == ([], 4404)


async def read_batches(url: str) -> tuple[list[list[dict]], int | None]:
    """The messages of a stream with batch=true, each a list, and the close code."""
    messages, code = await read_raw(url)
    return [json.loads(message) for message in messages], code


class TestBatchedStream:
    async def test_watchers_get_every_event_once_in_order_in_arrays(
        self, service: Service
    ) -> None:
        created = await service.submit("x", **chatty())
        stream = f"{service.ws_url}/executions/{created['id']}/stream"
        batched, (plain, plain_code) = await asyncio.gather(
            asyncio.gather(*[read_batches(f"{stream}?batch=true") for _ in range(5)]),
            read_all(stream),
        )
        assert plain_code == 1000
        for messages, code in batched:
            assert code == 1000
            assert all(isinstance(m, list) and m for m in messages)
            # the same events, once each and in order, as one event per message
            assert [event for m in messages for event in m] == plain
        assert plain[-1]["type"] == "execution.finished"

    async def test_a_message_holds_at_most_the_settings_events(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with start_service(make_settings(stream_batch_events=3)) as service:
            execution = await service.run("Fix bug in node X")
            url = (
                f"{service.ws_url}/executions/{execution['id']}/stream"
                "?after_seq=0&batch=1"
            )
            messages, code = await asyncio.wait_for(read_batches(url), timeout=30)
        assert code == 1000
        assert max(len(m) for m in messages) == 3
        seqs = [event["seq"] for m in messages for event in m]
        assert seqs == list(range(1, execution["last_seq"] + 1))

    @pytest.mark.parametrize("batch", ["yes", "2", ""])
    async def test_a_bad_batch_is_refused_with_4400(
        self, service: Service, batch: str
    ) -> None:
        created = await service.submit("x", config={"dry_run": True})
        url = f"{service.ws_url}/executions/{created['id']}/stream?batch={batch}"
        events, code = await read_all(url)
        assert (events, code) == ([], 4400)

    async def test_a_message_stays_under_the_byte_limit(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        """So that a client with a 1 MiB message limit can read any execution."""
        settings = make_settings(stream_batch_bytes=1024)
        async with start_service(settings) as service:
            created = await service.submit("x", **chatty(40))
            stream = f"{service.ws_url}/executions/{created['id']}/stream"
            (messages, code), (plain, _) = await asyncio.gather(
                read_raw(f"{stream}?batch=true"), read_all(stream)
            )
        assert code == 1000
        decoded = [json.loads(message) for message in messages]
        assert [event for m in decoded for event in m] == plain
        for raw, events in zip(messages, decoded, strict=True):
            assert len(raw.encode()) <= 1024 or len(events) == 1
        assert max(len(events) for events in decoded) > 1


async def read_raw(url: str) -> tuple[list[str], int | None]:
    """The text of each message until the server closes, and the close code."""
    messages: list[str] = []
    async with connect(url) as websocket:
        with contextlib.suppress(ConnectionClosed):
            async for message in websocket:
                assert isinstance(message, str)
                messages.append(message)
        return messages, websocket.close_code
