"""One hub record said for a person: its fields without Python reprs (money by
``mapping.money.format_money``, dates readable), and its history across systems in words —
what each system changed (entity history), what the hub wrote where (the outbox), what it linked
(links) and what people did (the audit log), one line each, oldest first:
"12 Mar 10:04 — Stripe changed the total from 99.00 USD to 199.00 USD",
"12 Mar 10:05 — written to QuickBooks (invoice 1042)"."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sync.finding_view import money_text
from sync.web.console_words import when

SYSTEM_NAMES = {"stripe": "Stripe", "quickbooks": "QuickBooks", "xero": "Xero", "salesforce": "Salesforce",
                "hub": "the hub"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
SHOWN_CHANGES = 6  # fields named in one history line; the rest counted


def system_name(connection: str, systems: Mapping[str, str]) -> str:
    """"QuickBooks" for connection quickbooks; "QuickBooks (qbo-eu)" when the name differs."""
    system = systems.get(connection, connection)
    said = SYSTEM_NAMES.get(system, system)
    return said if connection in (system, "hub") else f"{said} ({connection})"


def say(value: Any) -> str:
    """A stored value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        money = money_text(value.get("minor"), str(value.get("currency") or ""))
        if money is not None:
            return money
        return "; ".join(f"{k.replace('_', ' ')} {say(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        if all(isinstance(v, Mapping) for v in value):
            return f"{len(value)} line{'s' if len(value) != 1 else ''}"
        return ", ".join(say(v) for v in value)
    if isinstance(value, str) and _DAY.match(value):
        return when(datetime.fromisoformat(value).date())
    if isinstance(value, str) and _MOMENT.match(value):
        return when(value, year=True)
    return str(value)


def lines_of(value: Any) -> list[str]:
    """An invoice's or credit note's lines, one string each ("Consulting — 2 × 100.00 USD = 200.00 USD")."""
    if not isinstance(value, list | tuple):
        return []
    said = []
    for line in value:
        if not isinstance(line, Mapping):
            continue
        name = line.get("description") or line.get("name") or line.get("price_id") or "line"
        quantity = line.get("quantity")
        amount = say(line.get("amount")) if line.get("amount") is not None else ""
        unit = say(line.get("unit_amount")) if line.get("unit_amount") is not None else ""
        each = f"{quantity} × {unit} = " if str(quantity) not in ("None", "1", "1.0") and unit else ""
        said.append(f"{name} — {each}{amount}".rstrip(" —"))
    return said


@dataclass(frozen=True)
class Event:
    at: datetime | None
    text: str
    kind: str  # change | write | link | action

    @property
    def when(self) -> str:
        return when(self.at)


def _change_text(who: str, action: str, entity: str, changes: Mapping[str, Any]) -> str:
    noun = entity.replace("_", " ")
    if action == "added":
        return f"{who} added the {noun}"
    if action == "deleted":
        return f"{who} deleted the {noun}"
    if action == "erased":
        return f"{who} erased the {noun}'s personal data"
    if action != "changed" or not changes:
        return f"{who} {action} the {noun}"
    said = []
    for name, pair in list(changes.items())[:SHOWN_CHANGES]:
        old, new = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        field = name.replace("_", " ")
        said.append(f"set the {field} to {say(new)}" if old in (None, "") else
                    f"changed the {field} from {say(old)} to {say(new)}")
    more = len(changes) - SHOWN_CHANGES
    return f"{who} " + "; ".join(said) + (f" and {more} more field{'s' if more != 1 else ''}" if more > 0 else "")


_WROTE = {"upsert": "written to", "void": "voided in", "delete": "deleted in", "replace": "replaced in"}


def _write_text(item: Mapping[str, Any], where: str, noun: str) -> str:
    status, op = item["status"], str(item["operation"])
    wrote = _WROTE.get(op, f"{op} to")
    if status == "done":
        return f"{wrote} {where}" + (f" ({noun} {item['external_id']})" if item.get("external_id") else "")
    if status == "dead":
        return (f"gave up writing to {where} after {item['attempts']} attempt{'s' if item['attempts'] != 1 else ''}"
                f": {item.get('last_error') or 'no error kept'} (a dead letter: retry or drop it on the Outbox page)")
    if status == "dropped":
        return f"the write to {where} was dropped"
    if status == "in_flight":
        return f"being written to {where}"
    waited = f" (last try: {item['last_error']})" if item.get("last_error") else ""
    return f"waiting to be {wrote} {where}{waited}"


def _action_text(entry: Any) -> str:
    verb = str(entry.action).replace(".", " ").replace("_", " ")
    reason = f" — “{entry.reason}”" if getattr(entry, "reason", None) else ""
    return f"{entry.actor}: {verb} ({entry.target_kind} {str(entry.target_id)[:12]}){reason}"


def timeline(entity: str, history: Sequence[Mapping[str, Any]], writes: Sequence[Mapping[str, Any]],
             links: Sequence[Mapping[str, Any]], actions: Sequence[Any], systems: Mapping[str, str]) -> list[Event]:
    """The record's history across systems, oldest first."""
    noun = entity.replace("_", " ")
    events: list[Event] = []
    for h in history:
        who = system_name(str(h["system"]), systems)
        events.append(Event(h.get("at"), _change_text(who, str(h["action"]), entity, h.get("changes") or {}),
                            "change"))
    written_to = {(str(w["target"]), str(w.get("external_id") or "")) for w in writes if w["status"] == "done"}
    for w in writes:
        at = w.get("updated_at") or w.get("created_at")
        events.append(Event(at, _write_text(w, system_name(str(w["target"]), systems), noun), "write"))
    for link in links:
        where = system_name(str(link["system"]), systems)
        if (str(link["system"]), str(link["external_id"])) not in written_to:
            events.append(Event(link.get("created_at"), f"linked to {where} {noun} {link['external_id']}", "link"))
        if link.get("deleted"):
            events.append(Event(link.get("updated_at"), f"{where} {noun} {link['external_id']} was deleted there",
                                "link"))
    events.extend(Event(getattr(a, "at", None), _action_text(a), "action") for a in actions)
    order = {"change": 0, "link": 1, "write": 2, "action": 3}
    start = datetime.min.replace(tzinfo=UTC)
    return sorted(events, key=lambda e: (_aware(e.at) or start, order[e.kind]))


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


__all__ = ["Event", "lines_of", "say", "system_name", "timeline"]
