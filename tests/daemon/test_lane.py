"""The engine lane: one job at a time; the most urgent waiter next, in arrival order within a
priority; a waiter passed over too often goes next, one such at a time; a waiter cancelled
before or just as it is granted never strands the lane."""

from __future__ import annotations

import asyncio
import threading

from sync.lane import PATIENCE, ROUTINE, SOON, URGENT, Lane, hand_on_from_thread
from sync.scheduler import JOB_PRIORITY


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


async def test_stream_syncs_are_not_starved_by_an_inbox_and_outbox_that_always_wait() -> None:
    """A webhook storm: the inbox and outbox (the daemon's priorities) re-queue the moment their
    pass ends. They take turns; every stream sync still runs, each after at most PATIENCE grants
    to others plus the overdue ones ahead of it, and never two overdue jobs in a row."""
    lane = Lane()
    order: list[str] = []
    storm_over = asyncio.Event()
    await lane.acquire(ROUTINE)

    async def recurring(name: str, priority: int) -> None:
        while not storm_over.is_set():
            async with lane.hold(priority):
                order.append(name)
                await asyncio.sleep(0)

    async def once(name: str) -> None:
        async with lane.hold(ROUTINE):
            order.append(name)
            if all(f"sync:{i}" in order for i in range(4)):
                storm_over.set()

    tasks = [asyncio.create_task(recurring("inbox", JOB_PRIORITY["inbox"])),
             asyncio.create_task(recurring("outbox", JOB_PRIORITY["outbox"]))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(once(f"sync:{i}")) for i in range(4)]
    await asyncio.sleep(0)
    lane.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)

    syncs = [i for i, name in enumerate(order) if name.startswith("sync:")]
    assert len(syncs) == 4
    assert syncs[0] <= PATIENCE + 2  # the first sync waited for at most PATIENCE others (and inbox, outbox once)
    assert all(b - a == 2 for a, b in zip(syncs, syncs[1:], strict=False))  # then one other job between overdue ones
    assert order[0] == "inbox"  # priority still orders what is not overdue
    outbox = [i for i, name in enumerate(order) if name == "outbox"]
    assert outbox[0] == 1 and all(b - a <= 4 for a, b in zip(outbox, outbox[1:], strict=False))  # inbox's turn-taker


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


async def test_a_job_handing_the_lane_on_lets_the_more_urgent_go_then_resumes_before_its_own_priority() -> None:
    """Between two pages a stream sync (ROUTINE) hands the lane to a waiting inbox run (URGENT)
    and gets it back before a stream sync that was already waiting; with only equals waiting it
    keeps the lane."""
    lane = Lane()
    order: list[str] = []
    await lane.acquire(ROUTINE)  # the stream sync in hand

    async def job(name: str, priority: int) -> None:
        async with lane.hold(priority):
            order.append(name)

    other_sync = asyncio.create_task(job("sync:b", ROUTINE))
    await asyncio.sleep(0)
    assert not lane.more_urgent_waiting(ROUTINE)
    assert await lane.hand_on(ROUTINE) is False  # an equal waits: the job in hand goes on
    inbox = asyncio.create_task(job("inbox", URGENT))
    await asyncio.sleep(0)
    assert lane.more_urgent_waiting(ROUTINE) and not lane.more_urgent_waiting(URGENT)
    assert await lane.hand_on(ROUTINE) is True  # back once the inbox released it
    order.append("sync:a resumed")
    assert order == ["inbox", "sync:a resumed"] and lane.locked() and lane.waiting() == 1
    lane.release()
    await asyncio.gather(inbox, other_sync)
    assert order == ["inbox", "sync:a resumed", "sync:b"] and not lane.locked()


async def test_a_job_that_handed_the_lane_on_is_not_starved_by_a_storm() -> None:
    """Inbox and outbox runs that always wait: the job that handed the lane on still gets it
    back after PATIENCE grants to others, like any overdue waiter."""
    lane = Lane()
    order: list[str] = []
    storm_over = asyncio.Event()
    await lane.acquire(ROUTINE)

    async def recurring(name: str) -> None:
        while not storm_over.is_set():
            async with lane.hold(URGENT):
                order.append(name)
                await asyncio.sleep(0)

    tasks = [asyncio.create_task(recurring("inbox")), asyncio.create_task(recurring("outbox"))]
    await asyncio.sleep(0)
    assert await lane.hand_on(ROUTINE) is True
    order.append("sync")
    storm_over.set()
    lane.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order.index("sync") == PATIENCE + 1  # the one it handed to, then PATIENCE more


async def test_one_job_at_a_time_is_handed_on_from_and_it_goes_on_before_an_overdue_equal() -> None:
    """A job that handed the lane on holds a pool thread while it waits: no second job starts
    beside it (an overdue stream sync waits for it to end) and none hands on meanwhile."""
    lane = Lane(patience=1)
    order: list[str] = []
    await lane.acquire(ROUTINE)  # sync:a in hand

    async def job(name: str, priority: int) -> None:
        async with lane.hold(priority):
            order.append(name)

    other_sync = asyncio.create_task(job("sync:b", ROUTINE))
    inbox = asyncio.create_task(job("inbox", URGENT))
    await asyncio.sleep(0)
    resumed = asyncio.create_task(lane.hand_on(ROUTINE))  # grants the inbox: sync:b is passed once (overdue)
    await asyncio.sleep(0)
    assert not lane.more_urgent_waiting(URGENT + 5)  # while sync:a waits to go on, nobody hands on
    assert await resumed is True
    assert order == ["inbox"]  # then sync:a again, not the overdue sync:b beside it
    lane.release()
    await asyncio.gather(inbox, other_sync)
    assert order == ["inbox", "sync:b"] and not lane.locked()


def test_a_job_waiting_to_have_the_lane_back_gives_up_when_the_loop_stops() -> None:
    """``hand_on_from_thread`` from a job's thread: True once the lane is back; False when the
    loop stopped while the lane was handed on (nobody would ever give it back)."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    lane = Lane()
    entered, never = threading.Event(), asyncio.Event()

    async def urgent(hold_on: bool) -> None:
        async with lane.hold(URGENT):
            entered.set()
            if hold_on:
                await never.wait()

    async def queue(hold_on: bool) -> None:  # an urgent job waiting behind the job in hand
        asyncio.ensure_future(urgent(hold_on))
        while lane.waiting() == 0:  # until it is in the lane's queue (no timing)
            await asyncio.sleep(0)

    try:
        asyncio.run_coroutine_threadsafe(lane.acquire(ROUTINE), loop).result(10)  # the job in hand
        asyncio.run_coroutine_threadsafe(queue(hold_on=False), loop).result(10)
        assert hand_on_from_thread(lane, ROUTINE, loop) is True  # it ran and released: the lane is back
        assert entered.is_set()
        entered.clear()
        asyncio.run_coroutine_threadsafe(queue(hold_on=True), loop).result(10)
        handed: list[bool] = []  # a daemon thread: a regression that never returns fails, not hangs
        job = threading.Thread(target=lambda: handed.append(hand_on_from_thread(lane, ROUTINE, loop, 0.01)),
                               daemon=True)
        job.start()
        assert entered.wait(10)  # the urgent job has the lane, and keeps it
        assert job.is_alive()
        loop.call_soon_threadsafe(loop.stop)
        job.join(10)
        assert handed == [False]
    finally:
        if loop.is_running():  # a failure above: stop it here (stopped already, a second stop would linger)
            loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        left = asyncio.all_tasks(loop)  # the urgent job and the hand-on that never got it back
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()
