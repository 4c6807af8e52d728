"""The one error -> action table (sync.policy), the shared wait (connectors.retry.backoff) and
Retry-After parsing, the inbox's reading of the table, and the table at work in a push."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import (
    AuthError,
    ConflictError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    QuotaExhausted,
    RateLimited,
    RetryableError,
)
from connectors.retry import RetryPolicy, backoff, retry_after_seconds
from sync.inbox_retry import retry_in
from sync.policy import Action, Do, ErrorPolicy, paused_reason

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UNTIL = NOW + timedelta(hours=6)
TOP = ErrorPolicy(max_attempts=8, base_seconds=30, cap_seconds=3600, conflict_attempts=3,
                  random=lambda: 1.0)  # the top of every jitter window: exact waits


@pytest.mark.parametrize(("error", "attempt", "expected"), [
    (InvalidError("bad tax code", system="xero"), 1, Action(Do.DEAD, "xero: bad tax code")),
    (DuplicateError("name taken", system="qbo"), 1, Action(Do.DEAD, "qbo: name taken")),
    (AuthError("refresh token refused", needs_reauth=True, system="xero"), 1,
     Action(Do.REAUTH, "xero: refresh token refused", persist=True)),
    (AuthError("401", system="qbo"), 1, Action(Do.PAUSE, "qbo: 401")),
    (QuotaExhausted("daily limit", until=UNTIL, system="xero"), 1,
     Action(Do.PAUSE, "xero: daily limit", until=UNTIL, persist=True)),
    # a pause does not use up attempts: the work waits for the connection
    (QuotaExhausted("daily limit", until=UNTIL, system="xero"), 99,
     Action(Do.PAUSE, "xero: daily limit", until=UNTIL, persist=True)),
    (AuthError("401", system="qbo"), 99, Action(Do.PAUSE, "qbo: 401")),
    (RetryableError("503", system="stripe"), 1, Action(Do.RETRY, "stripe: 503", wait=30)),
    (RetryableError("503", system="stripe"), 3, Action(Do.RETRY, "stripe: 503", wait=120)),
    (RetryableError("503", system="stripe"), 7, Action(Do.RETRY, "stripe: 503", wait=1920)),
    (RetryableError("503", system="stripe"), 8,
     Action(Do.DEAD, "gave up after 8 attempts: stripe: 503")),
    (RateLimited("429", retry_after=7, system="stripe"), 5, Action(Do.RETRY, "stripe: 429", wait=7)),
    (RateLimited("429", retry_after=86400, system="sf"), 1, Action(Do.RETRY, "sf: 429", wait=3600)),
    (RateLimited("429", system="stripe"), 2, Action(Do.RETRY, "stripe: 429", wait=60)),
    (RateLimited("429", retry_after=7, system="stripe"), 8,
     Action(Do.DEAD, "gave up after 8 attempts: stripe: 429")),
    (ConflictError("stale SyncToken", system="qbo"), 1, Action(Do.REREAD, "qbo: stale SyncToken", wait=30)),
    (ConflictError("stale SyncToken", system="qbo"), 2, Action(Do.REREAD, "qbo: stale SyncToken", wait=60)),
    (ConflictError("stale SyncToken", system="qbo"), 3,
     Action(Do.DEAD, "still conflicting after 3 attempts: qbo: stale SyncToken")),
    (ConnectorError("unexpected reply", system="stripe"), 1, Action(Do.DEAD, "stripe: unexpected reply")),
    (LookupError("customer not in Stripe yet"), 1, Action(Do.RETRY, "customer not in Stripe yet", wait=30)),
    (LookupError("customer not in Stripe yet"), 8,
     Action(Do.DEAD, "gave up after 8 attempts: customer not in Stripe yet")),
])
def test_every_error_kind_has_one_action(error: BaseException, attempt: int, expected: Action) -> None:
    assert TOP.decide(error, attempt) == expected


def test_pausing_actions_are_the_connection_level_ones() -> None:
    assert {do for do in Do if Action(do, "").pauses} == {Do.PAUSE, Do.REAUTH}


def test_backoff_is_full_jitter_within_the_capped_window() -> None:
    rng = random.Random(20260302)
    for attempt in range(1, 12):
        ceiling = min(600.0, 10.0 * 2 ** (attempt - 1))
        waits = [backoff(attempt, base=10, cap=600, random=rng.random) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > 0.8 * ceiling and min(waits) < 0.2 * ceiling  # spread over the window
    assert backoff(3, base=10, cap=600, random=lambda: 0.0) == 0.0
    assert backoff(3, base=10, cap=600, random=lambda: 1.0) == 40.0
    assert backoff(30, base=10, cap=600, random=lambda: 1.0) == 600.0


def test_seeded_policies_wait_alike_and_stay_in_bounds() -> None:
    a = ErrorPolicy(random=random.Random(7).random)
    b = ErrorPolicy(random=random.Random(7).random)
    error = RetryableError("503", system="xero")
    waits = [a.decide(error, n).wait for n in range(1, 8)]
    assert waits == [b.decide(error, n).wait for n in range(1, 8)]
    assert all(w is not None and 0 <= w <= 30 * 2 ** (n - 1) for n, w in enumerate(waits, 1))


def test_connector_call_retries_wait_by_the_same_backoff() -> None:
    rng_a, rng_b = random.Random(3), random.Random(3)
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30, sleep=lambda _s: None,
                         random=rng_a.random)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise RetryableError("503", system="fake")
        return "ok"

    assert policy.call(flaky) == "ok"
    assert policy.waits == [backoff(n, base=0.5, cap=30, random=rng_b.random) for n in (1, 2, 3)]


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),
    (" 3 ", 3.0),
    ("0", 0.0),
    ("-5", 0.0),
    ("Mon, 02 Mar 2026 12:01:30 GMT", 90.0),  # IMF-fixdate
    ("Monday, 02-Mar-26 12:00:10 GMT", 10.0),  # obsolete RFC 850 form
    ("Mon Mar  2 12:00:05 2026", 5.0),  # obsolete asctime form
    ("Mon, 02 Mar 2026 11:00:00 GMT", 0.0),  # already passed: now
    ("soon", None),
    ("", None),
    (None, None),
])
def test_retry_after_is_read_as_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=lambda: NOW) == seconds


def test_retry_after_as_http_date_is_honoured_by_the_table() -> None:
    wait = retry_after_seconds("Mon, 02 Mar 2026 12:02:00 GMT", now=lambda: NOW)
    action = TOP.decide(RateLimited("429", retry_after=wait, system="stripe"), 1)
    assert action == Action(Do.RETRY, "stripe: 429", wait=120.0)


def test_the_inbox_reads_the_same_table() -> None:
    top = lambda: 1.0  # noqa: E731
    assert retry_in(2, RetryableError("503", system="stripe"), random=top) == 60
    assert retry_in(1, RateLimited("429", retry_after=4, system="stripe"), random=top) == 4
    # one conflict rule for outbox and inbox: re-read a bounded number of times, then give up
    assert retry_in(1, ConflictError("stale", system="sf"), random=top) == 30
    assert retry_in(3, ConflictError("stale", system="sf"), random=top) is None
    assert retry_in(1, DuplicateError("taken", system="sf"), random=top) is None
    # a paused connection: the event waits for the pause, never given up on for it
    assert retry_in(20, QuotaExhausted("daily", until=UNTIL, system="xero"), now=NOW) == 6 * 3600
    assert retry_in(20, AuthError("refused", needs_reauth=True, system="xero"), random=top) == 3600


def test_a_stored_pause_reads_the_same_for_engine_and_scheduler() -> None:
    assert paused_reason(None, NOW) is None
    assert paused_reason({"status": "ok"}, NOW) is None
    assert paused_reason({"status": "needs_reauth", "reason": "refresh token refused"}, NOW) == \
        "needs_reauth: refresh token refused"
    paused = {"status": "paused", "reason": "daily limit", "paused_until": UNTIL}
    assert paused_reason(paused, NOW) == "paused: daily limit (until 2026-03-02 18:00 UTC)"
    assert paused_reason(paused, UNTIL) is None  # the pause is over
