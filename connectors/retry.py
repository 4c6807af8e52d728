"""The hub's one retry policy (tenacity), shared by every connector.

Retries only what is known to be retryable (``RetryableError``, which includes ``RateLimited``);
honours the system's requested wait before falling back to exponential backoff with jitter.
The sleep function is injectable so tests pin time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from connectors.base import RateLimited, RetryableError

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """How one connection retries. ``sleep`` and ``on_wait`` exist for tests and metrics."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this is not slept in-thread: the error is raised so the caller
    # can park the work (nothing sleeps for hours).
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    waits: list[float] = field(default_factory=list)  # every wait taken, for tests and stats

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = float(exc.retry_after)
        else:
            delay = wait_random_exponential(multiplier=self.base_delay, max=self.max_delay)(state)
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
    def from_config(cls, config: Mapping[str, Any] | Any, *,
                    sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
        """A connection's policy: ``max_attempts``, ``retry_base_seconds``, ``retry_max_seconds``."""
        def get(key: str, default: float) -> float:
            value = config.get(key)
            return float(default if value is None else value)

        return cls(max_attempts=int(get("max_attempts", 6)), base_delay=get("retry_base_seconds", 0.5),
                   max_delay=get("retry_max_seconds", 30.0), sleep=sleep)

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


__all__ = ["RetryPolicy", "retry_if_exception_type"]
