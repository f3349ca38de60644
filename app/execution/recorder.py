"""The one place state changes are written: each with its events, in one transaction.

``Recorder.change()`` opens a unit of work; the events appended in it are
published to live readers only after it commits, so a reader never sees an event
whose state change was rolled back.
"""

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import text

from app.events.broker import Broker
from app.events.types import EventRead, EventType
from app.storage.database import Database
from app.storage.models import EventRow
from app.storage.repository import ExecutionRepository

T = TypeVar("T")
EVENTS_CHANNEL = "px_events"  # PostgreSQL NOTIFY channel: "origin execution first last"
_SURROGATE = re.compile("[\ud800-\udfff]")


async def shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Await a write to its end even if the caller is cancelled meanwhile.

    A cancel that lands inside a transaction could leave its connection holding
    the database's write lock; the write runs in a task of its own instead.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def event_read(row: EventRow) -> EventRead:
    return EventRead(
        execution_id=row.execution_id,
        seq=row.seq,
        type=EventType(row.type),
        step_id=row.step_id,
        data=row.data,
        created_at=row.created_at,
    )


class Change:
    """A unit of work on one execution: repository access plus appended events."""

    def __init__(
        self, repository: ExecutionRepository, execution_id: str, owner: str | None
    ) -> None:
        self.repository = repository
        self.execution_id = execution_id
        self.owner = owner
        self.events: list[EventRow] = []

    async def event(
        self, type: EventType, step_id: str | None = None, **data: Any
    ) -> None:
        row = await self.repository.append_event(
            self.execution_id, type.value, step_id, data, owner=self.owner
        )
        self.events.append(row)


class Recorder:
    """Writes changes; tells live readers here, and on PostgreSQL in other processes.

    ``origin`` names this process in the notifications it sends, so that it can
    leave its own out when they come back to it.
    """

    def __init__(self, database: Database, broker: Broker, origin: str = "") -> None:
        self.database = database
        self.broker = broker
        self.origin = origin

    @asynccontextmanager
    async def change(
        self, execution_id: str, owner: str | None = None
    ) -> AsyncIterator[Change]:
        """Commit the block's writes and events together, then publish the events.

        Given an owner, every event is fenced by the owner's lease: if it was
        lost, LeaseLost is raised and the whole change is rolled back.
        """
        async with self.database.transaction() as session:
            change = Change(ExecutionRepository(session), execution_id, owner)
            yield change
            if change.events and not self.database.is_sqlite:
                await session.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": EVENTS_CHANNEL, "payload": self._payload(change)},
                )
        self.broker.publish([event_read(row) for row in change.events])

    def _payload(self, change: Change) -> str:
        first, last = change.events[0].seq, change.events[-1].seq
        return f"{self.origin} {change.execution_id} {first} {last}"


def clean_text(text: str, max_bytes: int) -> str:
    """Text safe for every database: no NUL, valid UTF-8, at most max_bytes."""
    text = text.replace("\x00", "\ufffd")
    data = text.encode("utf-8", errors="replace")
    if len(data) <= max_bytes:
        return data.decode("utf-8")
    room = max(max_bytes - 40, 0)  # leaves room for the marker
    cut = data[:room].decode("utf-8", errors="ignore")
    return f"{cut}... [truncated {len(data) - len(cut.encode())} bytes]"


def bounded_json(value: Any, max_bytes: int) -> Any:
    """The value as JSON every database stores and every reader can decode.

    Non-finite numbers become null; NUL, which PostgreSQL's jsonb and ->> refuse,
    and lone surrogates become U+FFFD. A value whose JSON is larger than max_bytes
    becomes a preview of that JSON whose own JSON fits in half of max_bytes.
    """
    value = _json_safe(json.loads(json.dumps(value, default=str)))
    encoded = json.dumps(value, ensure_ascii=True)
    if len(encoded) <= max_bytes:
        return value

    room = max_bytes // 2
    preview = encoded[:room]
    # stored as JSON in its turn, each quote and backslash of the preview doubles
    while (excess := len(json.dumps(preview)) - room) > 0:
        preview = preview[: len(preview) - (excess + 1) // 2]
    return {"truncated": True, "size_bytes": len(encoded), "preview": preview}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value.replace("\x00", "\ufffd"))
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value
