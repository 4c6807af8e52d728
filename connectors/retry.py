"""The hub's one wait computation and its in-call retry policy (tenacity), shared by every connector.

* ``backoff`` — exponential backoff with full jitter, capped: the wait before try ``attempt + 1``
  is uniform in ``[0, min(cap, base * 2 ** (attempt - 1))]``. Full jitter spreads the retries of
  many writes that failed together (a vendor's outage) instead of bringing them back in a herd.
  The random source is a parameter, so tests pin it instead of sleeping. The outbox, the inbox
  (``sync.policy``) and ``RetryPolicy`` all wait by it.
* ``retry_after_seconds`` — a ``Retry-After`` header value as seconds: either delay-seconds or an
  HTTP-date (RFC 9110 §10.2.3). Every connector that reads the header parses it here.
* ``RetryPolicy`` retries only what is known to be retryable (``RetryableError``, which includes
  ``RateLimited``), honouring the system's requested wait before falling back to ``backoff``.
  The sleep function is injectable so tests pin time instead of sleeping.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt

from connectors.base import RateLimited, RetryableError
from connectors.settings import ConnectionConfig

T = TypeVar("T")


def backoff(attempt: int, *, base: float, cap: float,
            random: Callable[[], float] = _random.random) -> float:
    """Seconds to wait after ``attempt`` tries (1 = the first failed): full jitter, capped.

    ``random`` returns a float in [0, 1]; ``lambda: 1.0`` gives the ceiling of the window."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling * min(max(random(), 0.0), 1.0)


def retry_after_seconds(value: str | None, *,
                        now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """A ``Retry-After`` value in seconds (never negative), or None when absent or unreadable.

    RFC 9110 §10.2.3 allows delay-seconds (``120``) or an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``); a date in the past means "now" (0)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; obsolete forms may parse naive
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


@dataclass
class RetryPolicy:
    """How one connection retries. ``sleep``, ``random`` and ``waits`` exist for tests and metrics."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this is not slept in-thread: the error is raised so the caller
    # can park the work (nothing sleeps for hours).
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = _random.random
    waits: list[float] = field(default_factory=list)  # every wait taken, for tests and stats

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = float(exc.retry_after)
        else:
            delay = backoff(state.attempt_number, base=self.base_delay, cap=self.max_delay,
                            random=self.random)
        self.waits.append(delay)
        return delay

    def _should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, RetryableError):
            return False
        if isinstance(exc, RateLimited) and (exc.retry_after or 0) > self.max_retry_after:
            return False
        return True

    @classmethod
    def from_config(cls, config: ConnectionConfig, *, sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
        """A connection's policy from its declared keys (``RETRY_KEYS`` and ``max_attempts``)."""
        return cls(max_attempts=int(config["max_attempts"]), base_delay=float(config["retry_base_seconds"]),
                   max_delay=float(config["retry_max_seconds"]), sleep=sleep)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the policy; re-raise the last error when attempts run out."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=self._should_retry,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn)


__all__ = ["RetryPolicy", "backoff", "retry_after_seconds"]
