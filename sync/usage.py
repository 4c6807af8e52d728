"""Usage events -> Stripe meter events, exactly once, and the hub's usage totals.

Events arrive by ``POST /api/usage`` (the daemon) or ``hub usage import FILE``. Either way each is
stored in the inbox once per ``event_id`` (system ``usage``), then sent to Stripe as a meter event
whose ``identifier`` is the event id — so a resend after a crash is not counted twice by Stripe
either. Totals per customer, meter and month are computed from the stored events.

An event id is an idempotency key, as Stripe's are: sent again with the same content it is a
duplicate (accepted, counted once); sent again with a different value, customer, meter or
timestamp it is a ``UsageConflict`` (409, or the import refused) — never a value silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mapping import exact_json
from state.store import InboxItem, StateStore
from sync.inbox_retry import retry_in
from sync.runtime import Hub

USAGE = "usage"  # the inbox "system" of usage events


class UsageError(ValueError):
    """A usage event that cannot be accepted; the message names the field."""


# What parse_usage takes, as the API document states it (sync/web/api.py shows these patterns).
EVENT_ID_MAX = 200
CONTROL = re.compile(r"[\x00-\x1f]")
NAME_PATTERN = r"^[^\x00-\x1f]*[^\x00-\x20][^\x00-\x1f]*$"  # not blank, no control characters
VALUE_PATTERN = r"^[0-9]+(\.[0-9]+)?$"  # a plain decimal: no sign, exponent, spaces or NaN
INTEGER_DIGITS = 1000  # a JSON integer written 1e1000000 is not expanded to a million digits


def read_timestamp(text: str) -> datetime:
    """An event's timestamp: ISO 8601 as Python reads it, and RFC 3339's lowercase ``t``/``z``."""
    if not isinstance(text, str):
        raise TypeError("timestamp: a string")
    return datetime.fromisoformat(text.upper())


def _name(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip(" "):
        raise UsageError(f"{name}: required string")
    if CONTROL.search(value):
        raise UsageError(f"{name}: control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no database stores it
        raise UsageError(f"{name}: not valid Unicode") from None
    return value


def parse_usage(body: Any) -> dict[str, Any]:
    """Validate one usage event; raises UsageError naming the field."""
    if not isinstance(body, dict):
        raise UsageError("body must be a JSON object")
    event_id, event_name, customer = (_name(body, name) for name in ("event_id", "event_name", "customer"))
    if len(event_id) > EVENT_ID_MAX:
        raise UsageError(f"event_id: at most {EVENT_ID_MAX} characters")
    value = body.get("value")
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value() \
            and value.adjusted() < INTEGER_DIGITS:
        value = int(value)  # a JSON integer written with a fraction or exponent (5.0, 1e3), read exactly
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UsageError("value: an integer or a decimal string")
    if isinstance(value, str) and not re.fullmatch(VALUE_PATTERN, value):
        raise UsageError("value: must be a non-negative number written as digits (e.g. 12 or 0.5)")
    amount = Decimal(value)
    if amount < 0:
        raise UsageError("value: must be a non-negative number")
    timestamp = body.get("timestamp")
    if timestamp is not None:
        try:
            when = read_timestamp(timestamp)
        except (TypeError, ValueError):
            raise UsageError("timestamp: an ISO-8601 date-time expected (e.g. 2026-11-01T12:00:00Z)") from None
        if when.tzinfo is None:  # RFC 3339 date-time: the offset is not optional
            raise UsageError(f"timestamp: {timestamp!r} has no UTC offset; add one (e.g. "
                             "2026-11-01T12:00:00Z) — without it the time would be read in this machine's zone")
    return {"event_id": event_id, "event_name": event_name, "customer": customer, "value": str(amount),
            "timestamp": timestamp}


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
                    parsed.append(exact_json.loads(line))  # 5.0 read exactly, never as a float
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{path}:{number}: not JSON ({exc.msg})") from None
    else:
        rows = csv.DictReader(io.StringIO(text))
    for number, row in enumerate(rows, start=1):
        try:
            yield parse_usage(dict(row) if not isinstance(row, dict) else row)
        except UsageError as exc:
            raise UsageError(f"{path}: event {number}: {exc}") from None


# What makes two events with one id the same event. ``value`` and ``timestamp`` are compared by
# meaning ("5" is "5.0"; "…Z" is "…+00:00"), the names as given.
CONTENT_FIELDS = ("event_name", "customer", "value", "timestamp")


class UsageConflict(Exception):
    """An event id already used by an event with different content (Stripe: an idempotency key
    reused with different parameters). ``index`` is the event's position in what was stored
    (0-based); ``earlier`` the position of the first event with that id when it came earlier in
    the same batch, else None (it was stored before)."""

    def __init__(self, event_id: str, differs: dict[str, tuple[Any, Any]], index: int,
                 earlier: int | None) -> None:
        self.event_id, self.differs, self.index, self.earlier = event_id, differs, index, earlier
        fields = "; ".join(f"{name} {stored!s} there, {given!s} here" for name, (stored, given) in differs.items())
        where = f"event {earlier + 1} of this import" if earlier is not None else "an event already stored"
        super().__init__(f"event_id {event_id!r} is already used by {where} with different content "
                         f"({fields}); an event id is sent once — give a changed event a new id")

    def to_json(self) -> dict[str, Any]:
        return {"error": str(self), "event_id": self.event_id,
                "differs": {name: {"stored": stored, "given": given}
                            for name, (stored, given) in self.differs.items()}}


def _same(name: str, stored: Any, given: Any) -> bool:
    if stored is None or given is None:
        return stored is None and given is None
    try:
        if name == "value":
            return Decimal(str(stored)) == Decimal(str(given))
        if name == "timestamp":
            return read_timestamp(stored) == read_timestamp(given)
    except (InvalidOperation, TypeError, ValueError):  # an unreadable stored value: compare as given
        pass
    return str(stored) == str(given)


def differences(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The content fields in which two events with one id differ: name -> (stored, given)."""
    return {name: (stored.get(name), given.get(name)) for name in CONTENT_FIELDS
            if not _same(name, stored.get(name), given.get(name))}


def store_usage(store: StateStore, events: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Store parsed events once per event id, all or none; returns (accepted, duplicates).

    Raises ``UsageConflict`` — and stores nothing of ``events`` — when an id is already stored,
    or repeated in ``events``, with different content: a file is imported whole or not at all.
    """
    batch = list(events)
    first: dict[str, int] = {}
    for index, event in enumerate(batch):
        earlier = first.setdefault(event["event_id"], index)
        if earlier != index and (differs := differences(batch[earlier], event)):
            raise UsageConflict(event["event_id"], differs, index, earlier)
    with store.transaction() as tx:
        # Insert first (ON CONFLICT DO NOTHING), then read back: an id a concurrent request stored
        # meanwhile is then compared too. A conflict raises inside the transaction: nothing kept.
        accepted = tx.add_inbox_many(USAGE, ((batch[i]["event_id"], batch[i], "usage") for i in first.values()))
        stored = tx.inbox_payloads(USAGE, first)
        for event_id, index in first.items():
            if differs := differences(stored[event_id], batch[index]):
                raise UsageConflict(event_id, differs, index, None)
    return accepted, len(batch) - accepted


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
                       timestamp=read_timestamp(timestamp) if timestamp else None)
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
