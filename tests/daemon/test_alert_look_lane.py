"""The alert look after a job waits for a lane only when it has something to do: the inbox
runs every few seconds, and a look that queued behind a stream sync after every inbox run kept
that run's job "running" (APScheduler then skipped the inbox's next ticks) for a look that found
it had looked seconds ago."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.lane import ROUTINE
from sync.scheduler import Jobs
from tests.daemon.test_jobs import World, made_world

GUARD_SECONDS = 10  # a failure guard (the job never returning), not a timing assertion


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with made_world(tmp_path) as w:
        yield w


async def _job_that_leaves_a_sync_holding_the_lane(jobs: Jobs, started: threading.Event, release: threading.Event
                                                   ) -> tuple[asyncio.Task[None], list[asyncio.Task[None]]]:
    """An inbox job whose body queues a ROUTINE job (a stream sync) for the lane and returns:
    the sync then holds the lane (``started`` set) until ``release`` is set."""
    loop = asyncio.get_running_loop()
    syncs: list[asyncio.Task[None]] = []

    def sync_body() -> None:
        started.set()
        release.wait(GUARD_SECONDS)

    async def queue_sync() -> None:
        syncs.append(asyncio.create_task(jobs.exclusive(sync_body, priority=ROUTINE, lane="feeds")))
        while jobs.lanes.of("feeds").waiting() == 0:  # until it is in the lane's queue (no timing)
            await asyncio.sleep(0)

    def inbox_body() -> str:
        asyncio.run_coroutine_threadsafe(queue_sync(), loop).result(GUARD_SECONDS)
        return "processed 1"

    return asyncio.create_task(jobs._job("inbox", inbox_body)), syncs


async def test_a_look_not_due_does_not_wait_behind_the_sync_that_holds_the_lane(world: World) -> None:
    jobs = world.jobs()
    jobs._alerted_at = world.clock()  # looked just now: the next look is 30 s away
    started, release = threading.Event(), threading.Event()
    job, syncs = await _job_that_leaves_a_sync_holding_the_lane(jobs, started, release)
    try:
        await asyncio.wait_for(job, GUARD_SECONDS)  # returns while the sync holds the lane
        assert jobs.last["inbox"]["outcome"] == "ok"
        assert not syncs[0].done() and jobs.lanes.of("feeds").locked()
    finally:
        release.set()
        await asyncio.gather(*syncs)


async def test_a_look_that_is_due_still_runs_after_the_sync(world: World) -> None:
    jobs = world.jobs()
    assert jobs._alerted_at is None  # never looked: due
    started, release = threading.Event(), threading.Event()
    job, syncs = await _job_that_leaves_a_sync_holding_the_lane(jobs, started, release)
    assert await asyncio.to_thread(started.wait, GUARD_SECONDS)  # the sync holds the lane
    while jobs.lanes.of("feeds").waiting() == 0:  # until the look is in the lane's queue (no timing)
        await asyncio.sleep(0)
    assert not job.done()  # it waits for the lane, behind the sync
    release.set()
    await asyncio.wait_for(job, GUARD_SECONDS)
    assert jobs._alerted_at == world.clock()  # and looked
    await asyncio.gather(*syncs)
