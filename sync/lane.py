"""The daemon's engine lane: one engine job at a time, the most urgent waiting job first.

The engine runs one pass at a time per process (see ``sync/scheduler.py``). With a plain lock,
a webhook's inbox job queued behind every stream sync that happened to be waiting — at 25
streams that is seconds to tens of seconds of latency for a change a person just made. Here a
job that waits names a priority (lower is sooner); when the lane frees, the most urgent waiter
gets it, first come first served within a priority. A running job is never interrupted.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

URGENT = 0  # webhooks (the inbox) and token refresh: short, and someone is waiting on them
SOON = 1  # the outbox and operator-triggered runs
ROUTINE = 2  # scheduled stream syncs and diffs: they catch up on the next pass anyway


class Lane:
    """An asyncio lock whose waiters are served by priority, then in arrival order."""

    def __init__(self) -> None:
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def locked(self) -> bool:
        return self._busy

    def waiting(self) -> int:
        return sum(1 for *_, f in self._waiters if not f.done())

    async def acquire(self, priority: int = ROUTINE) -> None:
        if not self._busy:  # free means nobody waits: release() hands a held lane straight on
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: hand it on
            raise

    def release(self) -> None:
        while self._waiters:
            *_, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # ownership passes straight to it (stays busy)
                return
        self._busy = False

    @asynccontextmanager
    async def hold(self, priority: int = ROUTINE) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


__all__ = ["Lane", "ROUTINE", "SOON", "URGENT"]
