"""A push waits while its target's stream is being read, cursor or not: a first read commits its
cursor page by page, and a push between two of its pages (another process's, or this process's
inbox run while the read handed the lane on) took "a cursor exists" for "every record the target
has was matched" — and wrote a record whose twin sat on a page not read yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.test_jobs import World, made_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with made_world(tmp_path) as w:
        yield w


async def test_no_write_to_a_stream_while_it_is_being_read(world: World) -> None:
    world.customers(3)
    jobs = world.jobs()
    assert (await jobs.run_now("sync:stripe:customer"))["outcome"] == "ok"  # 3 writes to QuickBooks queued
    with world.store.transaction() as tx:  # a first read of QuickBooks customers, one page in
        tx.set_cursor("quickbooks", "customer", "after page 1")
    with world.store.stream_lock("sync", "quickbooks", "customer") as mine:  # ... and still reading
        assert mine
        outcome = await jobs.run_now("outbox")
        assert outcome["outcome"] == "ok" and outcome["detail"] == "wrote 0, held 0", outcome
        assert not world.ledger.live("customer")
    outcome = await jobs.run_now("outbox")  # the read is over: the writes go
    assert outcome["detail"] == "wrote 3, held 0", outcome
    assert len(world.ledger.live("customer")) == 3
