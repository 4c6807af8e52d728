"""Usage events -> Stripe meter events, exactly once, and the hub's usage totals.

Events arrive by ``POST /api/usage`` (the daemon) or ``hub usage import FILE``. Either way each is
stored in the inbox once per ``event_id`` (system ``usage``), then sent to Stripe as a meter event
whose ``identifier`` is the event id — so a resend after a crash is not counted twice by Stripe
either. Totals per customer, meter and month are computed from the stored events.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from state.store import InboxItem, StateStore
from sync.inbox_retry import retry_in
from sync.runtime import Hub

USAGE = "usage"  # the inbox "system" of usage events


class UsageError(ValueError):
    """A usage event that cannot be accepted; the message names the field."""


def parse_usage(body: Any) -> dict[str, Any]:
    """Validate one usage event; raises UsageError naming the field."""
    if not isinstance(body, dict):
        raise UsageError("body must be a JSON object")
    for name in ("event_id", "event_name", "customer"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise UsageError(f"{name}: required string")
        if any(ord(ch) < 32 for ch in body[name]):
            raise UsageError(f"{name}: control characters are not allowed")
    if len(body["event_id"]) > 200:
        raise UsageError("event_id: at most 200 characters")
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UsageError("value: an integer or a decimal string")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise UsageError("value: not a number") from None
    if not amount.is_finite() or amount < 0:
        raise UsageError("value: must be a non-negative number")
    timestamp = body.get("timestamp")
    if timestamp is not None:
        try:
            datetime.fromisoformat(str(timestamp))
        except ValueError:
            raise UsageError("timestamp: ISO-8601 expected") from None
    return {"event_id": body["event_id"], "event_name": body["event_name"], "customer": body["customer"],
            "value": str(amount), "timestamp": timestamp}


def read_usage_file(path: Path) -> Iterator[dict[str, Any]]:
    """Events from JSON Lines (``.jsonl``) or CSV with a header row; raises UsageError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
    rows: Iterable[Any]
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        parsed: list[Any] = []
        rows = parsed
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    parsed.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{path}:{number}: not JSON ({exc.msg})") from None
    else:
        rows = csv.DictReader(io.StringIO(text))
    for number, row in enumerate(rows, start=1):
        try:
            yield parse_usage(dict(row) if not isinstance(row, dict) else row)
        except UsageError as exc:
            raise UsageError(f"{path}: event {number}: {exc}") from None


def store_usage(store: StateStore, events: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Store events once per event id; returns (accepted, duplicates)."""
    accepted = duplicates = 0
    with store.transaction() as tx:
        for event in events:
            if tx.add_inbox(USAGE, event["event_id"], event, "usage"):
                accepted += 1
            else:
                duplicates += 1
    return accepted, duplicates


def send_usage(hub: Hub, item: InboxItem) -> None:
    """Send one stored event to Stripe as a meter event (identifier = event id)."""
    from connectors.stripe.writes import UsageEvent

    stripe = next((c for c in hub.connectors.values() if c.system == "stripe"), None)
    if stripe is None:
        raise LookupError("usage events need a Stripe connection")
    payload = item.payload
    customer = str(payload["customer"])
    if not customer.startswith("cus_"):  # a hub customer id: its Stripe link
        with hub.store.transaction() as tx:
            link = tx.link_for(customer, stripe.name, "customer")
        if link is None or link.deleted:
            raise LookupError(f"hub customer {customer} has no Stripe customer yet")
        customer = link.external_id
    timestamp = payload.get("timestamp")
    event = UsageEvent(identifier=item.event_id, event_name=str(payload["event_name"]), customer=customer,
                       value=Decimal(str(payload["value"])),
                       timestamp=datetime.fromisoformat(timestamp) if timestamp else None)
    result = stripe.record_usage([event])[0]  # type: ignore[attr-defined]
    if result.error is not None:
        raise result.error


def send_pending(hub: Hub, limit: int = 1000) -> tuple[int, list[str]]:
    """Send every stored, unsent usage event; returns (sent, errors)."""
    sent, errors = 0, []
    with hub.store.transaction() as tx:
        items = tx.claim_inbox(limit, system=USAGE)  # webhook events stay for the daemon
    for item in items:
        try:
            send_usage(hub, item)
        except Exception as exc:  # recorded on the event; a passing failure is tried again later
            errors.append(f"{item.event_id}: {exc}")
            with hub.store.transaction() as tx:
                tx.finish_inbox(item.id, error=str(exc), retry_in=retry_in(item.attempts, exc, now=tx.now))
            continue
        with hub.store.transaction() as tx:
            tx.finish_inbox(item.id)
        sent += 1
    return sent, errors


@dataclass(frozen=True)
class UsageTotal:
    customer: str
    event_name: str
    period: str  # YYYY-MM
    value: Decimal
    events: int


def usage_totals(store: StateStore) -> list[UsageTotal]:
    """Per customer, meter and month: the sum of accepted usage (each event counted once)."""
    sums: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    with store.transaction() as tx:
        for item in tx.inbox_items(USAGE):
            p = item.payload
            stamp = p.get("timestamp")
            received = item.received_at
            period = str(stamp)[:7] if stamp else received.strftime("%Y-%m") if received else "unknown"
            entry = sums[(str(p["customer"]), str(p["event_name"]), period)]
            entry[0] += Decimal(str(p["value"]))
            entry[1] += 1
    return [UsageTotal(c, e, p, v[0], v[1]) for (c, e, p), v in sorted(sums.items())]
