"""Client-side rate limiting: a token bucket per connection plus a concurrency cap.

Set to the vendor's documented limits (Stripe 25/s test mode, QuickBooks 500/min and 10
concurrent per realm, Xero 60/min and 5 concurrent per tenant). The clock and sleep are
injectable so tests never wait on wall time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

RECENT_SECONDS = 60.0  # the window of ``used_recently``: what a person reads as "in the last minute"


class RateLimiter:
    """Token bucket (``rate`` requests per ``per`` seconds, burst ``burst``) + semaphore.

    Vendors count requests in windows ("60 per minute"). A bucket that starts with a whole
    window of tokens and refills at the full rate lets nearly twice the limit through in the first
    window. So by default the bucket holds a tenth of a window and refills at nine tenths of the
    rate (``headroom``): no window ever exceeds the vendor's limit, and steady use stays at 90% of
    it.
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: float | None = None,
        headroom: float = 0.9,
        concurrency: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or per <= 0:
            raise ValueError("rate limits must be positive; check the connection's rate_limit keys")
        # the declared limits, kept as said, so people can be told them ("60 calls a minute, 5 at once")
        self.rate, self.per, self.concurrency = rate, per, concurrency
        self._recent: deque[float] = deque()  # when calls were let through, within the last RECENT_SECONDS
        self.fill_per_second = rate * headroom / per
        self.capacity = burst if burst is not None else max(1.0, rate * (1.0 - headroom))
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None
        self.waited = 0.0  # total seconds spent waiting, for stats

    def _reserve(self) -> float:
        """Take a token; return how long the caller must wait before using it."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.fill_per_second)
            self.updated = now
            self.tokens -= 1.0
            self._note(now)
            if self.tokens >= 0:
                return 0.0
            return -self.tokens / self.fill_per_second

    def _note(self, now: float) -> None:
        """Remember this call (held under the lock); at most a minute's worth is kept."""
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - RECENT_SECONDS:
            self._recent.popleft()

    def used_recently(self) -> int:
        """Calls let through in the last RECENT_SECONDS (a minute) by this process."""
        with self._lock:
            now = self.clock()
            while self._recent and self._recent[0] <= now - RECENT_SECONDS:
                self._recent.popleft()
            return len(self._recent)

    def acquire(self) -> None:
        delay = self._reserve()
        if delay > 0:
            self.waited += delay
            self.sleep(delay)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One request: wait for a token, and hold a concurrency slot while it runs."""
        self.acquire()
        if self._slots is None:
            yield
            return
        with self._slots:
            yield
