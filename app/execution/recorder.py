"""The one place state changes are written: each with its events, in one transaction.

``Recorder.change()`` opens a unit of work that may read; ``Recorder.batched()``
one that only writes, which SQLite writes together with the others queued
meanwhile. Either way the events appended in it are published to live readers
only after it commits, so a reader never sees an event whose state change was
rolled back, nor part of a change.
"""

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.broker import Broker
from app.events.types import EventRead, EventType
from app.storage.database import Database
from app.storage.repository import (
    ADD_EVENTS,
    ExecutionRepository,
    LeaseLost,
    Write,
    add_run,
    claim_seqs,
    finish_run,
    put_state,
    step_status,
    utcnow,
    write_many,
)

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


def event_read(row: Any) -> EventRead:
    """The event for readers, of a stored row or of a change's event.

    Built without validation: both come from our own code or our own table.
    """
    return EventRead.model_construct(
        execution_id=row.execution_id,
        seq=row.seq,
        type=EventType(row.type),
        step_id=row.step_id,
        data=row.data,
        created_at=row.created_at,
    )


@dataclass(slots=True)
class ChangeEvent:
    """An event of a change; its ``seq`` is taken when the change is written."""

    execution_id: str
    type: EventType
    step_id: str | None
    data: dict[str, Any]
    created_at: datetime
    seq: int = 0

    def values(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "seq": self.seq,
            "type": self.type.value,
            "step_id": self.step_id,
            "data": self.data,
            "created_at": self.created_at,
        }


class Change:
    """A unit of work on one execution: its writes and the events that tell of them.

    A change with a session (``Recorder.change``) writes as it goes and may read
    through ``repository``. A batched change (``Recorder.batched``) only writes:
    it keeps its writes, in order, and they are written together at its end.
    Either way the change commits whole or not at all.
    """

    def __init__(
        self,
        execution_id: str,
        owner: str | None,
        dialect: str,
        session: AsyncSession | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.owner = owner
        self.dialect = dialect
        self.events: list[ChangeEvent] = []
        self.on_written: Callable[[], None] | None = None
        self._session = session
        self._writes: list[Write] = []

    @property
    def repository(self) -> ExecutionRepository:
        if self._session is None:
            raise RuntimeError("a batched change writes only: it has no repository")
        return ExecutionRepository(self._session)

    async def event(
        self, type: EventType, step_id: str | None = None, **data: Any
    ) -> None:
        """Append an event, fenced by the owner's lease if the change has one."""
        event = ChangeEvent(self.execution_id, type, step_id, data, utcnow())
        self.events.append(event)
        if self._session is not None:
            claim = claim_seqs(self.execution_id, self.owner, 1)
            event.seq = self._claimed(await self._session.scalar(*claim), 1)
            await self._session.execute(ADD_EVENTS, [event.values()])

    async def set_step_status(self, step_id: str, target: str) -> None:
        await self._write(step_status(self.execution_id, step_id, target))

    async def add_run(self, **values: Any) -> None:
        await self._write(add_run(execution_id=self.execution_id, **values))

    async def finish_run(self, run_id: str, target: str, **fields: Any) -> None:
        await self._write(finish_run(run_id, target, **fields))

    async def put_state(self, key: str, **fields: Any) -> None:
        await self._write(put_state(self.dialect, self.execution_id, key, **fields))

    def written(self) -> None:
        if self.on_written is not None:
            self.on_written()

    @property
    def empty(self) -> bool:
        return not self._writes and not self.events

    def write(self, connection: Connection) -> None:
        """Carry out a batched change's writes on a synchronous connection.

        The event numbers are taken first, so that a change whose owner lost
        its lease writes nothing.
        """
        count = len(self.events)
        if count or self.owner is not None:
            claim = claim_seqs(self.execution_id, self.owner, count)
            last = self._claimed(connection.execute(*claim).scalar(), count)
            for offset, event in enumerate(self.events):
                event.seq = last - count + 1 + offset
        for write in self._writes:
            write.check(connection.execute(write.statement, write.values))
        if self.events:
            rows = [event.values() for event in self.events]
            connection.execute(ADD_EVENTS, rows)

    @staticmethod
    def write_together(connection: Connection, changes: list["Change"]) -> None:
        """Carry out batched changes with as few statements as their kinds need.

        One claim of event numbers per execution, then one statement, executed
        many, per shape of write: new rows first, then the others in the order
        they first appear; then the events. Raises if any write is refused: the
        caller then writes them one by one.
        """
        claims: dict[tuple[str, str | None], list[Change]] = {}
        for change in changes:
            if change.events or change.owner is not None:
                key = (change.execution_id, change.owner)
                claims.setdefault(key, []).append(change)
        next_seq = {}
        for key, claiming in claims.items():
            count = sum(len(change.events) for change in claiming)
            claimed = connection.execute(*claim_seqs(*key, count)).scalar()
            next_seq[key] = claiming[0]._claimed(claimed, count) - count + 1
        shapes: dict[tuple[int, tuple[str, ...]], list[Write]] = {}
        rows = []
        for change in changes:
            for write in change._writes:
                shapes.setdefault(write.shape, []).append(write)
            key = (change.execution_id, change.owner)
            for event in change.events:
                event.seq = next_seq[key]
                next_seq[key] += 1
                rows.append(event.values())
        for writes in sorted(shapes.values(), key=lambda writes: not writes[0].inserts):
            write_many(connection, writes)
        if rows:
            connection.execute(ADD_EVENTS, rows)

    async def _write(self, write: Write) -> None:
        if self._session is None:
            self._writes.append(write)
            return
        write.check(await self._session.execute(write.statement, write.values))

    def _claimed(self, last: int | None, count: int) -> int:
        if last is None and self.owner is not None:
            raise LeaseLost(self.execution_id, self.owner)
        assert last is not None, self.execution_id
        return last


class Recorder:
    """Writes changes; tells live readers here, and on PostgreSQL in other processes.

    ``origin`` names this process in the notifications it sends, so that it can
    leave its own out when they come back to it.
    """

    def __init__(self, database: Database, broker: Broker, origin: str = "") -> None:
        self.database = database
        self.broker = broker
        self.origin = origin
        self.dialect = "sqlite" if database.is_sqlite else "postgresql"

    @asynccontextmanager
    async def change(
        self, execution_id: str, owner: str | None = None
    ) -> AsyncIterator[Change]:
        """Commit the block's writes and events together, then publish the events.

        Given an owner, every event is fenced by the owner's lease: if it was
        lost, LeaseLost is raised and the whole change is rolled back.
        """
        async with self.database.transaction() as session:
            change = Change(execution_id, owner, self.dialect, session)
            yield change
            if change.events and not self.database.is_sqlite:
                await session.execute(*self._notify(change))
        self._publish(change)

    @asynccontextmanager
    async def batched(
        self, execution_id: str, owner: str | None = None
    ) -> AsyncIterator[Change]:
        """A change of writes only, written at the block's end with others queued.

        On SQLite the changes queued while one batch is written go together in
        the next (see ``SqliteBatches``), and their events are published as the
        batch commits, in commit order; readers still see each change whole.
        Given an owner, LeaseLost is raised and nothing written if it was lost.
        """
        change = Change(execution_id, owner, self.dialect)
        change.on_written = partial(self._publish, change)
        yield change
        if change.empty:
            return
        batches = self.database.batches
        if batches is None:
            await shielded(self._write(change))
        else:  # queued at once: a cancel of the caller leaves it in its batch
            await batches.write(change)

    async def _write(self, change: Change) -> None:
        await self.database.write(partial(self._carry_out, change))
        self._publish(change)

    def _carry_out(self, change: Change, connection: Connection) -> None:
        change.write(connection)
        if change.events and not self.database.is_sqlite:
            connection.execute(*self._notify(change))

    def _notify(self, change: Change) -> tuple[Any, dict[str, str]]:
        first, last = change.events[0].seq, change.events[-1].seq
        payload = f"{self.origin} {change.execution_id} {first} {last}"
        statement = text("SELECT pg_notify(:channel, :payload)")
        return statement, {"channel": EVENTS_CHANNEL, "payload": payload}

    def _publish(self, change: Change) -> None:
        if change.events:
            self.broker.publish([event_read(event) for event in change.events])


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
