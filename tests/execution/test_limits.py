import asyncio

from app.execution.limits import Slots


async def hold(
    slots: Slots, priority: int, order: list[int], gate: asyncio.Event
) -> None:
    async with slots.slot(priority):
        order.append(priority)
        await gate.wait()


class TestSlots:
    async def test_no_more_than_capacity_are_held_at_once(self) -> None:
        slots, order, gate = Slots(2), [], asyncio.Event()
        tasks = [asyncio.create_task(hold(slots, p, order, gate)) for p in range(5)]
        await asyncio.sleep(0.01)
        assert slots.in_use == 2
        assert len(order) == 2
        gate.set()
        await asyncio.gather(*tasks)
        assert slots.in_use == 0
        assert sorted(order) == [0, 1, 2, 3, 4]

    async def test_waiters_are_served_highest_priority_first(self) -> None:
        slots, order, gate = Slots(1), [], asyncio.Event()
        first = asyncio.create_task(hold(slots, 0, order, gate))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(hold(slots, p, order, gate)) for p in (3, 9, 5)]
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(first, *waiting)
        assert order == [0, 9, 5, 3]

    async def test_a_cancelled_waiter_gives_up_its_place(self) -> None:
        slots, order, gate = Slots(1), [], asyncio.Event()
        first = asyncio.create_task(hold(slots, 0, order, gate))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(hold(slots, 9, order, gate))
        later = asyncio.create_task(hold(slots, 1, order, gate))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        gate.set()
        await asyncio.gather(first, later)
        assert order == [0, 1]
        assert slots.in_use == 0
