"""The WebSocket event stream: stored events first, then live ones, each once.

A watcher subscribes to the broker before reading the table, so no event can fall
between the two. It then sends every stored event with ``seq`` above the one
asked for, and after that the live events: one already sent is dropped, and a gap
(an event published before the watcher caught up) is filled from the table. The
stream closes normally (1000) after ``execution.finished``.

Each message is one event; with ``batch=true`` each is a JSON array of the events
ready at once, up to ``stream_batch_events`` of them and ``stream_batch_bytes``
(one event larger than that goes alone), which costs a watcher of a burst (a
thousand steps starting together) a few messages instead of thousands.

Close codes: 4400 bad ``after_seq`` (not a number, or past the last event) or
``batch`` (not true or false), 4401
missing API key, 4404 unknown execution, 1001 or 1012 the service is going away
(reconnect, to this or another process, with ``after_seq`` = the last seq seen).
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import TYPE_CHECKING

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from app.api.deps import websocket_broker, websocket_key_ok, websocket_service
from app.errors import ExecutionNotFound, InvalidRequest
from app.events.broker import Broker
from app.events.types import EventRead

if TYPE_CHECKING:
    from app.execution.service import ExecutionService

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


async def follow_events(
    service: "ExecutionService", broker: Broker, execution_id: str, after_seq: int
) -> AsyncGenerator[EventRead, None]:
    """Stored events after ``after_seq``, then live ones, each once and in order."""
    batches = follow_event_batches(service, broker, execution_id, after_seq)
    try:
        async for batch in batches:
            for event in batch:
                yield event
    finally:
        await batches.aclose()


async def follow_event_batches(
    service: "ExecutionService", broker: Broker, execution_id: str, after_seq: int
) -> AsyncGenerator[list[EventRead], None]:
    """The events of ``follow_events``, in lists of those ready at once.

    Ends after ``execution.finished``. The table is read again whenever the
    broker asks (None), when a live event shows a gap, and whenever nothing came
    for ``stream_poll_seconds``, so an event whose live delivery was lost
    (another process's notification missed, say) arrives all the same.
    """
    poll_s = service.settings.stream_poll_seconds
    most = service.settings.stream_batch_events
    last = after_seq
    with broker.subscribe(execution_id) as queue:
        reread = True
        while True:
            # stored events, page by page, until the table has no more
            while reread:
                page = await service.events(execution_id, after_seq=last, limit=None)
                for start in range(0, len(page.items), most):
                    batch = page.items[start : start + most]
                    yield batch
                    last = batch[-1].seq
                    if batch[-1].is_final:
                        return
                if page.finished:
                    return
                reread = bool(page.items)

            # then the live events ready now, or a reason to read the table again
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
            # cancel that lands as the queue hands over an item
            # (https://github.com/python/cpython/issues/86296)
            try:
                async with asyncio.timeout(poll_s):
                    event = await queue.get()
            except TimeoutError:
                event = None
            batch = []
            while True:
                if event is None or event.seq > last + 1:
                    reread = True
                    break
                if event.seq == last + 1:  # one at or below last was sent already
                    batch.append(event)
                    last = event.seq
                    if event.is_final or len(batch) == most:
                        break
                if queue.empty():
                    break
                event = queue.get_nowait()
            if batch:
                yield batch
                if batch[-1].is_final:
                    return


async def stream_events(websocket: WebSocket, execution_id: str) -> None:
    await websocket.accept()
    if not websocket_key_ok(websocket):
        await websocket.close(CLOSE_UNAUTHORIZED, "missing or wrong API key")
        return
    after_seq = _after_seq(websocket)
    if after_seq is None:
        await websocket.close(
            CLOSE_BAD_REQUEST, "after_seq must be a non-negative integer"
        )
        return
    as_arrays = _flag(websocket, "batch")
    if as_arrays is None:
        await websocket.close(CLOSE_BAD_REQUEST, "batch must be true or false")
        return

    events = follow_event_batches(
        websocket_service(websocket),
        websocket_broker(websocket),
        execution_id,
        after_seq,
    )
    max_bytes = websocket_service(websocket).settings.stream_batch_bytes
    sending = asyncio.ensure_future(
        _send_all(websocket, events, max_bytes if as_arrays else None)
    )
    left = asyncio.ensure_future(_client_left(websocket))
    try:
        await asyncio.wait({sending, left}, return_when=asyncio.FIRST_COMPLETED)
        if left.done():
            logger.debug("stream.client_left", extra={"execution_id": execution_id})
            return
        await sending
        await websocket.close(CLOSE_NORMAL, "execution finished")
    except ExecutionNotFound:
        await websocket.close(CLOSE_NOT_FOUND, "no such execution")
    except InvalidRequest as error:
        await websocket.close(CLOSE_BAD_REQUEST, error.message)
    except WebSocketDisconnect:
        logger.debug("stream.client_left", extra={"execution_id": execution_id})
    except asyncio.CancelledError:
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.close(CLOSE_GOING_AWAY, "service stopping")
        raise
    finally:
        for task in (sending, left):
            task.cancel()
        await asyncio.gather(sending, left, return_exceptions=True)
        await events.aclose()


async def _send_all(
    websocket: WebSocket,
    batches: AsyncIterator[list[EventRead]],
    array_bytes: int | None,
) -> None:
    """Each event as a message, or, given ``array_bytes``, arrays up to that size."""
    async for batch in batches:
        if array_bytes is None:
            for event in batch:
                await websocket.send_text(event.wire)
            continue
        for part in _parts(batch, array_bytes):
            await websocket.send_text(f"[{','.join(event.wire for event in part)}]")


def _parts(batch: list[EventRead], max_bytes: int) -> Iterator[list[EventRead]]:
    """The batch in runs whose JSON array fits in max_bytes (or of one event)."""
    part: list[EventRead] = []
    size = 2  # the brackets
    for event in batch:
        if part and size + event.wire_bytes + 1 > max_bytes:
            yield part
            part, size = [], 2
        part.append(event)
        size += event.wire_bytes + 1  # and its comma
    if part:
        yield part


async def _client_left(websocket: WebSocket) -> None:
    """Return when the client disconnects; anything it sends is ignored."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _flag(websocket: WebSocket, name: str) -> bool | None:
    """A true/false query parameter (false when absent); None when it is neither."""
    raw = websocket.query_params.get(name, "false").lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(raw)


def _after_seq(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after_seq", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if value < 2**31 else None
