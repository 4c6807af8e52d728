"""When a stored event (webhook or usage) whose processing failed is tried again.

A failure is usually passing: a vendor's 503, a rate limit, a customer that has not reached the
target system yet. Such an event waits and is claimed again, the wait doubling from 30 seconds
(about an hour of tries in all); after ``MAX_ATTEMPTS`` it stays ``failed`` (shown by ``hub
status`` and the console) for a person to look at. An event the vendor refused as invalid fails at once:
sending it again cannot help.
"""

from __future__ import annotations

from connectors.base import ConflictError, InvalidError

MAX_ATTEMPTS = 8
FIRST_WAIT_SECONDS = 30.0  # then 60, 120 … 1,920: the last try about an hour after the first


def retry_in(attempts: int, error: BaseException) -> float | None:
    """Seconds until the next try after ``attempts`` tries, or None to give up now."""
    if isinstance(error, (InvalidError, ConflictError)) or attempts >= MAX_ATTEMPTS:
        return None
    return FIRST_WAIT_SECONDS * 2 ** max(0, attempts - 1)


__all__ = ["MAX_ATTEMPTS", "retry_in"]
