"""The live fan-out's buffer: deep enough for a burst, bounded all the same."""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.events.broker import Broker
from app.events.types import EventRead, EventType
from app.runtime import open_runtime
from app.settings import Settings


def events(execution_id: str, count: int) -> list[EventRead]:
    return [
        EventRead(
            execution_id=execution_id,
            seq=seq,
            type=EventType.step_log,
            step_id="s",
            data={},
            created_at=datetime.now(UTC),
        )
        for seq in range(1, count + 1)
    ]


def test_a_watcher_behind_by_more_than_the_buffer_keeps_the_newest() -> None:
    broker = Broker(buffer_events=3)
    with broker.subscribe("e") as queue:
        broker.publish(events("e", 5))
        kept = [queue.get_nowait() for _ in range(queue.qsize())]
    # the gap before seq 3 sends the watcher to the table for 1 and 2
    assert [event.seq for event in kept] == [3, 4, 5]


def test_a_burst_within_the_buffer_is_kept_whole() -> None:
    broker = Broker(buffer_events=2_000)
    with broker.subscribe("e") as queue, broker.subscribe("e") as other:
        broker.publish(events("e", 2_000))
        assert queue.qsize() == other.qsize() == 2_000


async def test_the_setting_sizes_the_services_buffers(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_runtime(make_settings(live_buffer_events=7)) as runtime:
        assert runtime.broker.buffer_events == 7
        with runtime.broker.subscribe("e") as queue:
            assert queue.maxsize == 7


def test_a_buffer_of_nothing_is_refused(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ValidationError, match="live_buffer_events"):
        make_settings(live_buffer_events=0)
