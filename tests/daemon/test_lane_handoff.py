"""A stream sync hands the engine lane to a waiting, more urgent job at its next page boundary
(the inbox no longer waits for the whole sync), never between a push's batches, and a stop that
comes meanwhile still ends the sync at a page boundary with its pages committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sync.lane import URGENT
from sync.scheduler import Jobs
from tests.daemon.test_jobs import World, made_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with made_world(tmp_path) as w:
        yield w


def queue_urgent_at(world: World, jobs: Jobs, order: list[str], when: Callable[[str], bool],
                    body: Callable[[], None] | None = None) -> list[asyncio.Task[None]]:
    """Make the engine's page hook queue one URGENT job (as the inbox is) on the lane the first
    time ``when(label)`` holds, and wait until it is queued, before the job in hand's checkpoint
    runs; every label is noted in ``order``, the urgent job's run as "urgent"."""
    loop = asyncio.get_running_loop()
    checkpoint = world.hub.engine.on_progress
    assert checkpoint is not None
    tasks: list[asyncio.Task[None]] = []

    def urgent_body() -> None:
        with world.store.transaction() as tx:
            order.append(f"urgent (sees {tx.count_entities().get('customer', 0)} customers)")
        if body is not None:
            body()

    async def queue() -> None:
        tasks.append(asyncio.create_task(jobs.exclusive(urgent_body, priority=URGENT, lane="inbox")))
        while jobs.lanes.of("inbox").waiting() == 0:  # until it is in the lane's queue (no timing)
            await asyncio.sleep(0)

    def page(label: str, n: int) -> None:
        order.append(label)
        if not tasks and when(label):
            asyncio.run_coroutine_threadsafe(queue(), loop).result(5)
        checkpoint(label, n)

    world.hub.engine.on_progress = page
    return tasks


async def test_a_waiting_urgent_job_gets_the_lane_at_the_next_page_of_a_stream_sync(world: World) -> None:
    world.customers(30)  # three pages of 10
    jobs = world.jobs()
    order: list[str] = []
    tasks = queue_urgent_at(world, jobs, order, lambda label: label == "stripe customer")
    outcome = await jobs.run_now("sync:stripe:customer")
    await asyncio.gather(*tasks)
    assert outcome["outcome"] == "ok" and outcome["detail"] == "read 30, wrote 0"
    # right after the first committed page, which it sees; then the sync goes on where it was
    assert order[:2] == ["stripe customer", "urgent (sees 10 customers)"]
    assert order[2:] == ["stripe customer"] * (len(order) - 2) and len(order) >= 4
    assert (await jobs.run_now("outbox"))["detail"] == "wrote 30, held 0"
    assert len(world.ledger.live("customer")) == 30  # nothing lost or written twice


async def test_a_push_does_not_hand_the_lane_on_between_batches(world: World) -> None:
    world.customers(5)
    jobs = world.jobs()
    assert (await jobs.run_now("sync:stripe:customer"))["outcome"] == "ok"  # 5 writes to QuickBooks queued
    world.hub.engine.batch_size = 2  # three push batches
    order: list[str] = []
    tasks = queue_urgent_at(world, jobs, order, lambda label: label.startswith("push "))
    # a stream sync of QuickBooks (ROUTINE) reads it, then pushes its outbox
    assert (await jobs.run_now("sync:quickbooks:customer"))["outcome"] == "ok"
    await asyncio.gather(*tasks)
    # queued at the first push batch, it runs after the last one
    assert order == ["quickbooks customer"] + ["push quickbooks customer"] * 3 + ["urgent (sees 5 customers)"]
    assert len(world.ledger.live("customer")) == 5


async def test_a_stop_while_the_lane_is_handed_on_ends_the_sync_at_that_page(world: World) -> None:
    world.customers(30)
    jobs = world.jobs()
    order: list[str] = []
    tasks = queue_urgent_at(world, jobs, order, lambda label: label == "stripe customer", body=jobs.stop)
    outcome = await jobs.run_now("sync:stripe:customer")
    await asyncio.gather(*tasks)
    assert outcome["outcome"] == "stopped"
    assert order == ["stripe customer", "urgent (sees 10 customers)"]  # no further page read
    with world.store.transaction() as tx:
        assert tx.get_cursor("stripe", "customer") == "10"  # the first page, committed with its cursor
        assert tx.count_entities() == {"customer": 10}


async def test_a_webhook_nudge_that_finds_its_stream_being_read_is_read_after_that_sync(world: World) -> None:
    """A QuickBooks event nudges a read of its stream; while that stream's sync handed the lane
    on after its last page, the nudge finds the stream held (its change would be missed until the
    next scheduled sync): the sync reads once more when it ends."""
    world.ledger.put("customer", {"name": "Ledger One", "email": "one@example.com"})
    jobs = world.jobs()
    order: list[str] = []

    def webhook_then_inbox() -> None:  # the change lands in QuickBooks and its webhook is processed
        world.ledger.put("customer", {"name": "Ledger Two", "email": "two@example.com"})
        with world.store.transaction() as tx:
            tx.add_inbox_many("quickbooks", [("evt-1", {"entity_type": "customer"}, "customer.updated")])
        order.append(jobs.process_inbox())

    tasks = queue_urgent_at(world, jobs, order, lambda label: label == "quickbooks customer", body=webhook_then_inbox)
    outcome = await jobs.run_now("sync:quickbooks:customer")  # one page: the last
    await asyncio.gather(*tasks)
    assert order[:2] == ["quickbooks customer", "urgent (sees 0 customers)"]
    # the inbox's nudge found the stream held and read nothing of it; the sync read it again after
    assert order[-2:] == ["processed 1, failed 0", "quickbooks customer"]
    assert outcome["outcome"] == "ok" and outcome["detail"] == "read 2, wrote 0"  # One, then Two
    assert jobs.nudged == set()


async def test_a_nudge_noted_before_a_sync_starts_is_read_by_that_sync_once(world: World) -> None:
    """A nudge left from before the sync (the stream was held by another process's read, or the
    nudge came during a sync's last re-read) is picked up by the next sync's read: no second read."""
    world.ledger.put("customer", {"name": "Ledger One", "email": "one@example.com"})
    jobs = world.jobs()
    jobs.nudged.add(("quickbooks", "customer"))
    before = len(world.ledger.calls)
    outcome = await jobs.run_now("sync:quickbooks:customer")
    assert outcome["outcome"] == "ok" and outcome["detail"] == "read 1, wrote 0"
    assert world.ledger.calls[before:].count("list customer") == 1 and jobs.nudged == set()
