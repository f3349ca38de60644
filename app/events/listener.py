"""Live events across processes on PostgreSQL, through LISTEN/NOTIFY.

Every change that appends events also sends ``NOTIFY px_events`` with the
execution and the range of ``seq`` it wrote; PostgreSQL delivers it on commit, to
every process, in commit order. A process that has watchers of that execution
reads those events from the table and hands them to its broker; its own
notifications it leaves out, having published them already. The payload carries
no event data, so no size limit applies and the table stays the one truth.

``NOTIFY px_control`` carries "cancel <execution id>" to the process that runs
the execution, so that a cancel sent to any process acts at once; the heartbeat
finds the same request in the table if a notification is ever missed.

If the listening connection drops, it is opened again, and every watcher re-reads
the table: nothing is lost, only delayed.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.events.broker import Broker
from app.execution.recorder import EVENTS_CHANNEL, event_read
from app.storage.database import Database
from app.storage.repository import ExecutionRepository

logger = logging.getLogger(__name__)

CONTROL_CHANNEL = "px_control"


async def notify_control(database: Database, message: str) -> None:
    """Send a control message to every process (PostgreSQL only)."""
    if database.is_sqlite:
        return
    async with database.transaction() as session:
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CONTROL_CHANNEL, "payload": message},
        )


class Listener:
    def __init__(
        self,
        database: Database,
        broker: Broker,
        origin: str,
        on_cancel: Callable[[str], Any],
        check_seconds: float,
    ) -> None:
        self.database = database
        self.broker = broker
        self.origin = origin
        self.on_cancel = on_cancel
        self.check_seconds = check_seconds
        self._ranges: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after any loss."""
        forwarding = asyncio.create_task(self._forward())
        try:
            while True:
                try:
                    await self._listen()
                except (TimeoutError, OSError, asyncpg.PostgresError) as error:
                    logger.warning("listener.lost", extra={"error": str(error)})
                await asyncio.sleep(1)
        finally:
            forwarding.cancel()

    async def _listen(self) -> None:
        url = make_url(self.database.url).set(drivername="postgresql")
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await connection.add_listener(EVENTS_CHANNEL, self._on_events)
            await connection.add_listener(CONTROL_CHANNEL, self._on_control)
            self.broker.wake_all()  # whatever was missed while away is re-read
            while not connection.is_closed():
                await asyncio.sleep(self.check_seconds)
                await asyncio.wait_for(connection.execute("SELECT 1"), 10)
        finally:
            if not connection.is_closed():
                connection.terminate()

    def _on_events(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        origin, execution_id, first, last = payload.rsplit(" ", 3)
        if origin != self.origin and self.broker.watched(execution_id):
            self._ranges.put_nowait((execution_id, int(first), int(last)))

    def _on_control(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        command, _, execution_id = payload.partition(" ")
        if command == "cancel":
            self.on_cancel(execution_id)

    async def _forward(self) -> None:
        """Read the announced events from the table and publish them here."""
        while True:
            execution_id, first, last = await self._ranges.get()
            try:
                async with self.database.reader() as session:
                    rows = await ExecutionRepository(session).events_after(
                        execution_id, first - 1, last - first + 1
                    )
                self.broker.publish([event_read(row) for row in rows])
            except Exception:
                logger.exception("listener.forward_failed")
