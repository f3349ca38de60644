"""The WebSocket event stream: stored events first, then live ones, each once.

A watcher subscribes to the broker before reading the table, so no event can fall
between the two. It then sends every stored event with ``seq`` above the one
asked for, and after that the live events: one already sent is dropped, and a gap
(an event published before the watcher caught up) is filled from the table. The
stream closes normally (1000) after ``execution.finished``.

Close codes: 4400 bad ``after_seq`` (not a number, or past the last event), 4401
missing API key, 4404 unknown execution, 1001 or 1012 the service is going away
(reconnect, to this or another process, with ``after_seq`` = the last seq seen).
"""

import asyncio
import logging

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from app.api.deps import websocket_broker, websocket_key_ok, websocket_service
from app.errors import ExecutionNotFound, InvalidRequest
from app.events.types import EventRead

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


class _Watcher:
    def __init__(self, websocket: WebSocket, execution_id: str, after_seq: int) -> None:
        self.websocket = websocket
        self.execution_id = execution_id
        self.last_sent = after_seq
        self.service = websocket_service(websocket)

    async def backfill(self, up_to: int | None = None) -> bool:
        """Send stored events after the last sent; True once the final one went."""
        while up_to is None or self.last_sent < up_to:
            page = await self.service.events(
                self.execution_id, after_seq=self.last_sent, limit=None
            )
            for event in page.items:
                if await self.send(event):
                    return True
            if not page.items or page.finished:
                return page.finished
        return False  # filled up to the gap; the live event comes next

    async def send(self, event: EventRead) -> bool:
        """Send one event in order; True if it was the final one."""
        if event.seq <= self.last_sent:
            return False
        if event.seq > self.last_sent + 1:
            return await self.backfill(up_to=event.seq - 1) or await self.send(event)
        await self.websocket.send_text(event.wire)
        self.last_sent = event.seq
        return event.is_final


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

    watcher = _Watcher(websocket, execution_id, after_seq)
    broker = websocket_broker(websocket)
    with broker.subscribe(execution_id) as queue:
        try:
            if await watcher.backfill() or await _follow(watcher, queue):
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


async def _follow(watcher: _Watcher, queue: asyncio.Queue[EventRead | None]) -> bool:
    """Send live events until the final one (True) or the client leaves (False).

    The table is read again whenever the broker asks (None) and whenever nothing
    came for ``stream_poll_seconds``, so an event whose live delivery was lost
    (another process's notification missed, say) arrives all the same.
    """
    left = asyncio.ensure_future(_client_left(watcher.websocket))
    poll_s = watcher.service.settings.stream_poll_seconds
    try:
        while True:
            next_event = asyncio.ensure_future(queue.get())
            await asyncio.wait(
                {next_event, left}, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED
            )
            if left.done():
                next_event.cancel()
                return False
            if not next_event.done():
                next_event.cancel()
                event = None
            else:
                event = next_event.result()
            if await (watcher.backfill() if event is None else watcher.send(event)):
                return True
    finally:
        left.cancel()


async def _client_left(websocket: WebSocket) -> None:
    """Return when the client disconnects; anything it sends is ignored."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _after_seq(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after_seq", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if value < 2**31 else None
