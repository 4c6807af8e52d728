"""A record said for a person (issue 21, item 2: record pages printed Python dict reprs):
money by format_money, dates readable, lines one string each, and the history across systems in
words, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sync.web.record_words import lines_of, say, timeline

T = datetime(2026, 3, 12, 10, 4, tzinfo=UTC)


def test_values_are_said_without_reprs() -> None:
    assert say({"minor": 9900, "currency": "USD"}) == "99.00 USD"
    assert say({"minor": 1000, "currency": "JPY"}) == "1,000 JPY"
    assert say("2026-03-12") == "12 Mar 2026"
    assert say("2026-03-12T10:04:00+00:00") == "12 Mar 2026 10:04"
    assert say(None) == "—" and say(True) == "yes" and say([]) == "none"
    assert say({"city": "Leeds", "line1": None}) == "city Leeds"
    assert lines_of([{"description": "Consulting", "quantity": "2", "unit_amount": {"minor": 10000, "currency": "USD"},
                      "amount": {"minor": 20000, "currency": "USD"}},
                     {"description": "Setup", "quantity": "1", "unit_amount": {"minor": 500, "currency": "USD"},
                      "amount": {"minor": 500, "currency": "USD"}}]) == [
        "Consulting — 2 × 100.00 USD = 200.00 USD", "Setup — 5.00 USD"]


def test_the_history_across_systems_in_words() -> None:
    systems = {"stripe": "stripe", "qbo-eu": "quickbooks"}
    history = [{"system": "stripe", "action": "added", "changes": {}, "at": T},
               {"system": "stripe", "action": "changed", "at": T.replace(minute=9),
                "changes": {"total": [{"minor": 9900, "currency": "USD"}, {"minor": 19900, "currency": "USD"}]}}]
    writes: list[dict[str, Any]] = [{"target": "qbo-eu", "operation": "upsert", "status": "done", "external_id": "1042", "attempts": 1,
               "last_error": None, "created_at": T, "updated_at": T.replace(minute=5)},
              {"target": "qbo-eu", "operation": "upsert", "status": "dead", "external_id": None, "attempts": 5,
               "last_error": "rejected", "created_at": T, "updated_at": T.replace(minute=10)}]
    links = [{"system": "stripe", "external_id": "in_1", "deleted": False, "created_at": T, "updated_at": T},
             {"system": "qbo-eu", "external_id": "1042", "deleted": False, "created_at": T, "updated_at": T}]
    actions = [SimpleNamespace(at=T.replace(minute=11), actor="console:alice", action="resync.record",
                               target_kind="record", target_id="abc", reason="customer called")]
    said = [f"{e.when} — {e.text}" for e in timeline("invoice", history, writes, links, actions, systems)]
    assert said == [
        "12 Mar 10:04 — Stripe added the invoice",
        "12 Mar 10:04 — linked to Stripe invoice in_1",
        "12 Mar 10:05 — written to QuickBooks (qbo-eu) (invoice 1042)",
        "12 Mar 10:09 — Stripe changed the total from 99.00 USD to 199.00 USD",
        "12 Mar 10:10 — gave up writing to QuickBooks (qbo-eu) after 5 attempts: rejected "
        "(a dead letter: retry or drop it on the Outbox page)",
        "12 Mar 10:11 — console:alice: resync record (record abc) — “customer called”",
    ]


def test_a_connections_lag_and_a_runs_duration_are_said_in_words() -> None:
    from datetime import UTC, datetime, timedelta

    from sync.web.console_words import duration, lag
    assert lag(None) == "—" and lag(42) == "42 s" and lag(10_800) == "3 h" and lag(3_725) == "1 h 2 min"
    start = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert duration(start, start + timedelta(seconds=0.4)) == "0.4 s"
    assert duration(start, start + timedelta(seconds=125)) == "2 min"
    assert duration(start, None) == "running"
