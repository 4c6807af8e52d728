"""The daemon's engine lanes: in each, one engine job at a time, the most urgent waiting job
first, and no job starved; on PostgreSQL the inbox, the outbox and the change feeds each have
their own lane and run side by side (``Lanes``).

On SQLite the engine runs one pass at a time per process (see ``sync/scheduler.py``). With a plain lock,
a webhook's inbox job queued behind every stream sync that happened to be waiting — at 25
streams that is seconds to tens of seconds of latency for a change a person just made. Here a
job that waits names a priority (lower is sooner); when the lane frees, the most urgent waiter
gets it, first come first served within a priority. A running job is never interrupted.

Priority alone starves: under a webhook storm the inbox and outbox jobs always have a pass
waiting (each re-queues as soon as it ends), so at 10x the change feeds never ran. So a waiter
that has been passed over ``patience`` times goes next — but never two such in a row, so the
inbox waits for at most one overdue job besides the one in hand.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

URGENT = 0  # webhooks (the inbox) and token refresh: short, and someone is waiting on them
SOON = 1  # the outbox and operator-triggered runs
ROUTINE = 2  # scheduled stream syncs and diffs: they catch up on the next pass anyway
PATIENCE = 3  # grants to others a waiter sits through before it goes next


@dataclass
class _Waiter:
    priority: int
    arrival: int
    future: asyncio.Future[None]
    passed: int = field(default=0)


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

    async def acquire(self, priority: int = ROUTINE) -> None:
        if not self._busy:  # free means nobody waits: release() hands a held lane straight on
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: hand it on
            raise

    def release(self) -> None:
        self._waiters = [w for w in self._waiters if not w.future.done()]  # drop the cancelled
        if not self._waiters:
            self._busy = False
            return
        oldest = min(self._waiters, key=lambda w: w.arrival)
        if oldest.passed >= self.patience and not self._last_was_overdue:
            chosen, self._last_was_overdue = oldest, True
        else:
            chosen = min(self._waiters, key=lambda w: (w.priority, w.arrival))
            self._last_was_overdue = False
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


__all__ = ["LANE_NAMES", "Lane", "Lanes", "PATIENCE", "ROUTINE", "SOON", "URGENT"]
