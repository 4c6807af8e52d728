"""The daemon's engine lanes: in each, one engine job at a time, the most urgent waiting job
first, and no job starved; on PostgreSQL the inbox, the outbox and the change feeds each have
their own lane and run side by side (``Lanes``).

On SQLite the engine runs one pass at a time per process (see ``sync/scheduler.py``). With a plain lock,
a webhook's inbox job queued behind every stream sync that happened to be waiting — at 25
streams that is seconds to tens of seconds of latency for a change a person just made. Here a
job that waits names a priority (lower is sooner); when the lane frees, the most urgent waiter
gets it, first come first served within a priority.

A running job is never interrupted, but it may hand the lane on between pages: a stream sync
holds the lane for seconds (a page of a few hundred records, then the next), and a webhook's
inbox job that waited for all of it made the latency tail (bench/README.md, "Webhook latency").
So after each committed page the job in hand asks ``hand_on``: when a more urgent job waits, that
job gets the lane at once, and the job in hand waits to have it back — ahead of every waiter of
its own priority (it is half done and holds a stream's place), behind the more urgent ones.

Priority alone starves: under a webhook storm the inbox and outbox jobs always have a pass
waiting (each re-queues as soon as it ends), so at 10x the change feeds never ran. So a waiter
that has been passed over ``patience`` times goes next — but never two such in a row, so the
inbox waits for at most one overdue job besides the one in hand. A job that handed the lane on
waits under the same rule, so a stream sync in a storm still reads a page per ``patience``
grants to others.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

URGENT = 0  # webhooks (the inbox) and token refresh: short, and someone is waiting on them
SOON = 1  # the outbox and operator-triggered runs
ROUTINE = 2  # scheduled stream syncs and diffs: they catch up on the next pass anyway
PATIENCE = 3  # grants to others a waiter sits through before it goes next
# A job that handed its lane on looks this often whether the loop still runs (a stopped loop
# would never give the lane back).
HAND_ON_LOOK_SECONDS = 1.0


class DaemonStopping(Exception):
    """Raised at a page boundary once a stop was requested; the page in hand is committed."""


@dataclass
class _Waiter:
    priority: int
    arrival: int
    future: asyncio.Future[None]
    passed: int = field(default=0)
    resuming: bool = field(default=False)  # a job that handed the lane on, waiting to go on


def _urgency(waiter: _Waiter) -> tuple[int, int]:
    """The order waiters are served in: by priority, then first come first served."""
    return waiter.priority, waiter.arrival


class Lane:
    """An asyncio lock whose waiters are served by priority, then in arrival order, except that
    a waiter passed over ``patience`` times goes next (one such grant at a time)."""

    def __init__(self, patience: int = PATIENCE) -> None:
        self.patience = patience
        self._busy = False
        self._waiters: list[_Waiter] = []  # a few dozen at most (one per scheduled job)
        self._order = itertools.count()
        self._last_was_overdue = False

    def locked(self) -> bool:
        return self._busy

    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.future.done())

    def more_urgent_waiting(self, priority: int) -> bool:
        """Whether ``hand_on(priority)`` would hand the lane on now (safe from any thread: a hint
        for the job in hand, which ``hand_on`` then decides on the loop)."""
        return self._hand_to(priority) is not None

    def _hand_to(self, priority: int) -> _Waiter | None:
        """The waiter a holder of ``priority`` hands the lane to: the most urgent of the more
        urgent ones, or None when there are none or a job handed on from already waits to go on
        (one at a time: ``hand_on``)."""
        waiters = [w for w in list(self._waiters) if not w.future.done()]  # a copy: any thread
        if any(w.resuming for w in waiters):
            return None
        return min((w for w in waiters if w.priority < priority), key=_urgency, default=None)

    async def acquire(self, priority: int = ROUTINE) -> None:
        if not self._busy:  # free means nobody waits: release() hands a held lane straight on
            self._busy = True
            return
        await self._wait(_Waiter(priority, next(self._order), asyncio.get_running_loop().create_future()))

    async def _wait(self, waiter: _Waiter) -> None:
        self._waiters.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()  # granted just as we were cancelled: hand it on
            raise

    async def hand_on(self, priority: int) -> bool:
        """Called by the holder (of ``priority``) between two pages: when a more urgent job
        waits, give it the lane and wait to have it back; True when it was handed on. The
        holder waits ahead of its own priority's waiters, and like any waiter goes next once
        passed over ``patience`` times. One job at a time is handed on from, in each lane: each
        such job holds a pool thread while it waits, and the jobs given the lane need threads."""
        chosen = self._hand_to(priority)
        if chosen is None:
            return False
        self._grant(chosen, overdue=False)
        # its arrival is never compared: release() serves a resuming waiter on its own rule
        await self._wait(_Waiter(priority, next(self._order), asyncio.get_running_loop().create_future(),
                                 resuming=True))
        return True

    def release(self) -> None:
        self._waiters = [w for w in self._waiters if not w.future.done()]  # drop the cancelled
        if not self._waiters:
            self._busy = False
            return
        resuming = next((w for w in self._waiters if w.resuming), None)
        if resuming is not None:
            # a job that handed the lane on goes on before any job of its priority or lower, even
            # an overdue one (which would start beside it, on one more thread); only more urgent
            # ones go first, until it is overdue itself
            urgent = min((w for w in self._waiters if w.priority < resuming.priority), key=_urgency, default=None)
            if urgent is not None and not (resuming.passed >= self.patience and not self._last_was_overdue):
                self._grant(urgent, overdue=False)
            else:
                self._grant(resuming, overdue=urgent is not None)
            return
        oldest = min(self._waiters, key=lambda w: w.arrival)
        if oldest.passed >= self.patience and not self._last_was_overdue:
            self._grant(oldest, overdue=True)
        else:
            self._grant(min(self._waiters, key=_urgency), overdue=False)

    def _grant(self, chosen: _Waiter, *, overdue: bool) -> None:
        self._last_was_overdue = overdue
        self._waiters.remove(chosen)
        for waiter in self._waiters:
            waiter.passed += 1
        chosen.future.set_result(None)  # ownership passes straight to it (stays busy)

    @asynccontextmanager
    async def hold(self, priority: int = ROUTINE) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


def hand_on_from_thread(lane: Lane, priority: int, loop: asyncio.AbstractEventLoop,
                        look_seconds: float = HAND_ON_LOOK_SECONDS) -> bool:
    """``lane.hand_on(priority)`` from the thread running the job in hand (blocking it until the
    lane is back); False when ``loop`` stopped meanwhile (it would never give the lane back)."""
    handed = asyncio.run_coroutine_threadsafe(lane.hand_on(priority), loop)
    while True:
        try:
            handed.result(timeout=look_seconds)
            return True
        except FutureTimeout:
            if not loop.is_running():
                handed.cancel()
                return False


# Which lane each kind of daemon job runs in when lanes run side by side (PostgreSQL): the inbox
# (with token refresh, short), the outbox, the change feeds (stream syncs, diffs and an operator's
# record work), and the alert look that follows every job.
LANE_NAMES = ("inbox", "outbox", "feeds", "alerts")
LANE_OF_JOB = {"inbox": "inbox", "tokens": "inbox", "outbox": "outbox"}  # others: "feeds"


class Lanes:
    """The daemon's lanes. ``side_by_side`` (PostgreSQL): one ``Lane`` per name, so the inbox,
    the outbox and the change feeds each run one job at a time but beside each other — what
    keeps one writer per record then is the database (``sync/scheduler.py``). Otherwise (SQLite,
    one writer) every name is the same lane: one engine job at a time, as before."""

    def __init__(self, *, side_by_side: bool, patience: int = PATIENCE) -> None:
        self.side_by_side = side_by_side
        shared = Lane(patience)
        self._lanes = {name: Lane(patience) if side_by_side else shared for name in LANE_NAMES}

    def of(self, name: str) -> Lane:
        return self._lanes[name]

    def for_job(self, job_id: str) -> str:
        """The lane name of a job id (``inbox``, ``outbox``, ``sync:stripe:customer`` …)."""
        return LANE_OF_JOB.get(job_id.split(":")[0], "feeds")


__all__ = ["LANE_NAMES", "DaemonStopping", "Lane", "Lanes", "PATIENCE", "ROUTINE", "SOON", "URGENT", "hand_on_from_thread"]
