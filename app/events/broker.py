"""Live fan-out of committed events to the readers in this process.

The database is the source of truth; the broker only wakes readers early. A
subscriber gets the events published after it subscribed, in publish order, and
checks ``seq`` against what it has already sent to fill any gap from the table.
A subscriber that falls more than ``buffer_events`` behind loses its oldest
buffered events rather than holding memory without bound; it reads them back
from the table when it sees the gap. The buffers hold references to the same
events, so a deep one is cheap: a burst of a thousand steps' events, which a
batch of changes publishes at once, must not send every watcher to the table.
Publishing never waits for a subscriber. A ``None`` in a queue asks its reader
to re-read the table.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from app.events.types import EventRead


class Broker:
    def __init__(self, buffer_events: int = 20_000) -> None:
        self.buffer_events = buffer_events
        self._queues: dict[str, set[asyncio.Queue[EventRead | None]]] = defaultdict(set)

    @contextmanager
    def subscribe(self, execution_id: str) -> Iterator[asyncio.Queue[EventRead | None]]:
        """A queue that receives the execution's events while the block runs."""
        queue: asyncio.Queue[EventRead | None] = asyncio.Queue(self.buffer_events)
        self._queues[execution_id].add(queue)
        try:
            yield queue
        finally:
            queues = self._queues[execution_id]
            queues.discard(queue)
            if not queues:
                del self._queues[execution_id]

    def watched(self, execution_id: str) -> bool:
        return execution_id in self._queues

    def wake_all(self) -> None:
        """Make every watcher re-read the table (after live delivery was cut)."""
        for queues in self._queues.values():
            for queue in queues:
                if not queue.full():
                    queue.put_nowait(None)

    def publish(self, events: list[EventRead]) -> None:
        for event in events:
            for queue in self._queues.get(event.execution_id, ()):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(event)
