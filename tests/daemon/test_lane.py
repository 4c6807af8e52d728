"""The engine lane: one job at a time; the most urgent waiter next, in arrival order within a
priority; a waiter cancelled before or just as it is granted never strands the lane."""

from __future__ import annotations

import asyncio

from sync.lane import ROUTINE, SOON, URGENT, Lane


async def _run_order(arrivals: list[tuple[str, int]]) -> list[str]:
    lane = Lane()
    order: list[str] = []
    await lane.acquire(ROUTINE)  # a job is running while the others arrive

    async def job(name: str, priority: int) -> None:
        async with lane.hold(priority):
            order.append(name)

    tasks = []
    for name, priority in arrivals:
        tasks.append(asyncio.create_task(job(name, priority)))
        await asyncio.sleep(0)  # let it reach the queue: arrival order is this list's order
    assert lane.waiting() == len(arrivals)
    lane.release()
    await asyncio.gather(*tasks)
    assert not lane.locked()
    return order


async def test_the_inbox_overtakes_waiting_stream_syncs() -> None:
    order = await _run_order([("sync:a", ROUTINE), ("sync:b", ROUTINE), ("outbox", SOON),
                              ("inbox", URGENT), ("sync:c", ROUTINE), ("inbox2", URGENT)])
    assert order == ["inbox", "inbox2", "outbox", "sync:a", "sync:b", "sync:c"]


async def test_a_cancelled_waiter_does_not_strand_the_lane() -> None:
    lane = Lane()
    await lane.acquire()
    waiter = asyncio.create_task(lane.acquire(URGENT))
    later = asyncio.create_task(lane.acquire(ROUTINE))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    lane.release()
    await asyncio.wait_for(later, 5)  # the cancelled one was skipped: the next one got it
    assert lane.locked() and lane.waiting() == 0
    lane.release()
    assert not lane.locked()


async def test_a_waiter_cancelled_as_it_is_granted_hands_the_lane_on() -> None:
    lane = Lane()
    await lane.acquire()
    granted = asyncio.create_task(lane.acquire(URGENT))
    nxt = asyncio.create_task(lane.acquire(ROUTINE))
    await asyncio.sleep(0)
    lane.release()  # ownership passes to ``granted`` ...
    granted.cancel()  # ... which is cancelled before it resumes
    await asyncio.gather(granted, return_exceptions=True)
    await asyncio.wait_for(nxt, 5)
    assert lane.locked()
    lane.release()
    assert not lane.locked()
