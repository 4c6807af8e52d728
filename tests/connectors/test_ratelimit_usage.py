"""What a rate limiter can tell a person (issue 21, item 2, the console's rate budgets in words):
the limits it was declared with, and how many calls it let through in the last minute, counted
on its own (pinned) clock."""

from __future__ import annotations

from connectors.ratelimit import RateLimiter


def test_declared_limits_are_kept_and_calls_are_counted_for_a_minute() -> None:
    now = [1000.0]
    limiter = RateLimiter(60, per=60.0, concurrency=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert (limiter.rate, limiter.per, limiter.concurrency) == (60, 60.0, 5)
    assert limiter.used_recently() == 0
    for _ in range(3):
        with limiter.slot():
            pass
    assert limiter.used_recently() == 3
    now[0] += 59.0
    assert limiter.used_recently() == 3  # still within the minute of the last call
    now[0] += 61.0
    assert limiter.used_recently() == 0  # a minute after every call
