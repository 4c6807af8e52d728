"""When a stored event (webhook or usage) whose processing failed is tried again: the inbox's
reading of the one error table (``sync.policy``).

A failure is usually passing: a vendor's 503, a rate limit, a customer that has not reached the
target system yet. Such an event waits and is claimed again; the window of the wait doubles from
30 seconds (full jitter: somewhere in it, so events that failed together come back spread out)
and after ``MAX_ATTEMPTS`` it stays ``failed`` (shown by ``hub status`` and the console) for a
person to look at. A conflict is re-read a few times (``ErrorPolicy.conflict_attempts``), as a
write is. An event the vendor refused as invalid fails at once: sending it again cannot help. An
event whose connection is paused waits for the pause, however long; it is not given up.
"""

from __future__ import annotations

import dataclasses
import random as _random
from collections.abc import Callable
from datetime import UTC, datetime

from sync.policy import Do, ErrorPolicy

MAX_ATTEMPTS = 8
FIRST_WAIT_SECONDS = 30.0  # windows of 30, 60, 120 … 1,920 s: the last try within about an hour
INBOX_POLICY = ErrorPolicy(max_attempts=MAX_ATTEMPTS, base_seconds=FIRST_WAIT_SECONDS)


def retry_in(attempts: int, error: BaseException, *, now: datetime | None = None,
             random: Callable[[], float] = _random.random) -> float | None:
    """Seconds until the next try after ``attempts`` tries, or None to give up now."""
    policy = dataclasses.replace(INBOX_POLICY, random=random)
    action = policy.decide(error, attempts)
    if action.do is Do.DEAD:
        return None
    if action.wait is not None:
        return action.wait
    if action.until is not None:  # a pause the system named the end of
        return max((action.until - (now or datetime.now(UTC))).total_seconds(), 0.0)
    return policy.wait(attempts)


__all__ = ["FIRST_WAIT_SECONDS", "INBOX_POLICY", "MAX_ATTEMPTS", "retry_in"]
