"""The listings of ``hub status``, ``hub export``, ``hub outbox list``, ``hub check``,
``hub drift list`` / ``hub diff``, ``hub usage totals`` and ``hub review``: the JSON-able data each
command already has, turned into ``sync.output_formats.Listing`` columns for tables and CSV.

Findings read the ``about`` keys each finding carries (customer, document, date, amount) when
present, so a finance reader sees "INV-0031, Acme, 1,001.00 USD" rather than hub ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sync.output_formats import Column, Listing

# The canonical fields that say "when" and "how much" of a record, in the order they are tried.
WHEN_FIELDS = ("issued_at", "paid_at", "refunded_at", "arrival_date", "created_at", "closed_at")
AMOUNT_FIELDS = ("total", "amount", "unit_amount")


def _when(value: Any, *, minutes: bool = True) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}" if minutes else f"{value:%Y-%m-%d}"
    text = str(value)
    return text[:16].replace("T", " ") if minutes else text[:10]


def _money(value: Any) -> tuple[int, str] | None:
    """A canonical ``{"minor": int, "currency": str}`` as a money cell; None otherwise."""
    if isinstance(value, Mapping) and isinstance(value.get("minor"), int) and value.get("currency"):
        return int(value["minor"]), str(value["currency"])
    return None


def _counts(counts: Mapping[str, Any]) -> str:
    """A run's counts in words, those not zero: "read 1,200, written 310" (never cut)."""
    said = [f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in sorted(counts.items()) if v]
    return ", ".join(said) or "nothing to do"


def status_listings(data: Mapping[str, Any]) -> list[Listing]:
    """``hub status``: connections, cursors, last runs (``sync.queries.gather_status`` data)."""
    connections = Listing("Connections", [Column("name"), Column("system"), Column("status"),
                                          Column("reason / resumes")], empty="none configured")
    for c in data["connections"]:
        note = c["reason"] or ""
        if c["paused_until"]:
            note = f"{note} (resumes {_when(c['paused_until'])} UTC)".strip()
        connections.add(c["name"], c["system"], c["status"], note)
    cursors = Listing("Cursors", [Column("connection"), Column("stream"), Column("last success", "when")],
                      empty="none yet (no sync has run)")
    for cursor in data["cursors"]:
        cursors.add(cursor["connection"], cursor["stream"], _when(cursor["last_success"]) or "never")
    runs = Listing("Last runs", [Column("kind"), Column("scope"), Column("status"), Column("started", "when"),
                                 Column("counts")], empty="none yet")
    for r in data["runs"]:
        runs.add(r["kind"], ", ".join(r["scope"].split(",")), r["status"], _when(r["started_at"]), _counts(r["counts"] or {}))
    return [connections, cursors, runs]


def export_listing(entity: str, data: Mapping[str, Any]) -> Listing:
    """``hub export``: one row per canonical record with its date, amount and links."""
    records = data["records"]
    listing = Listing(f"{entity} ({len(records):,})", [
        Column("id", "id", short=8), Column("name / number"), Column("date", "when"), Column("amount", "money"),
        Column("links")], empty="no records")
    for record in records:
        fields = record["data"]
        label = fields.get("name") or fields.get("number") or ""
        when = next((fields[k] for k in WHEN_FIELDS if fields.get(k)), None)
        amount = next((m for k in AMOUNT_FIELDS if (m := _money(fields.get(k))) is not None), None)
        links = "; ".join(f"{s}: {', '.join(ids)}" for s, ids in sorted(record["links"].items()))
        listing.add(record["id"], str(label), _when(when, minutes=False), amount, links)
    return listing


def outbox_listing(items: Sequence[Any], *, for_csv: bool = False) -> Listing:
    """``hub outbox list``: ``state.records.OutboxItem`` rows. In a table the write and its status
    take two lines each (target and entity over the record; status over the next attempt), so the
    last error, what a person reads, keeps the width; in CSV each is a column of its own."""
    if for_csv:
        listing = Listing("Outbox", [
            Column("id", "number"), Column("target"), Column("entity"), Column("record", "id"),
            Column("status"), Column("next_attempt", "when"), Column("attempts", "number"), Column("last_error")])
        for i in items:
            listing.add(i.id, i.target, i.entity_type, i.canonical_id, i.status, i.next_attempt_at.isoformat(),
                        i.attempts, i.last_error or "")
        return listing
    listing = Listing("Outbox", [
        Column("id", "number"), Column("write"), Column("status / next try"), Column("tries", "number"),
        Column("last error")], empty="nothing pending or dead")
    for i in items:
        listing.add(i.id, f"{i.target} {i.entity_type}\n{i.canonical_id[:8]}",
                    f"{i.status}\n{_when(i.next_attempt_at)}", i.attempts, i.last_error or "")
    return listing


def checks_listing(rows: Sequence[Mapping[str, Any]]) -> Listing:
    """``hub check``: one row per connection (``sync.checks.check_connections`` rows)."""
    listing = Listing("Connections checked", [
        Column("connection"), Column("ok"), Column("account"), Column("currency", "id"),
        Column("problem / details")], empty="no connection configured")
    for row in rows:
        details = "; ".join(f"{k}: {v}" for k, v in sorted(row["details"].items()))
        scopes = f"scopes: {', '.join(row['scopes'])}" if row["scopes"] else ""
        said = "; ".join(p for p in (row["problem"] or "", scopes, details) if p)
        name = row["name"] if row["name"] == row["system"] else f"{row['name']} ({row['system']})"
        listing.add(name, "ok" if row["ok"] else "FAILED", row["account"] or "",
                    row["base_currency"] or "per record", said)
    return listing


def findings_listing(findings: Sequence[Mapping[str, Any]], title: str = "Drift findings") -> Listing:
    """``hub drift list`` / ``hub diff``: what each finding is (kind, system, status), who and
    what it is about (``about`` keys: document, customer, date; its amount), and what it says.
    The id's first 8 characters are enough for ``hub drift show`` and ``hub resync --finding``."""
    listing = Listing(title, [
        Column("id", "id"), Column("finding"), Column("about"), Column("amount", "money"), Column("detail")],
        empty="no findings")
    for f in findings:
        about = f.get("about") or {}
        amount = about.get("amount")
        what = f"{f['kind']} in {f['system']}" + ("" if f["status"] == "open" else f"\n{f['status']}")
        said = [about.get("document") or f"{f['entity']} {', '.join(f['external_ids'])}".strip(),
                about.get("customer") or "", about.get("date") or ""]
        listing.add(f["id"][:8], what, "\n".join(line for line in said if line),
                    (amount["minor"], amount["currency"]) if amount else None, about.get("said") or f["detail"])
    return listing


def usage_listing(rows: Sequence[Mapping[str, Any]]) -> Listing:
    """``hub usage totals`` (its JSON rows: value is an exact decimal string)."""
    listing = Listing("Usage totals", [Column("customer"), Column("meter"), Column("period", "when"),
                                       Column("value", "number"), Column("events", "number")],
                      empty="no usage recorded")
    for row in rows:
        listing.add(row["customer"], row["event_name"], row["period"], row["value"], row["events"])
    return listing


def review_listing(rows: Sequence[Mapping[str, Any]]) -> Listing:
    """``hub review``: per connection in review, what waits (planned, not sent)."""
    listing = Listing("Writes held for review (planned, not sent)", [
        Column("connection"), Column("state"), Column("waiting")],
        empty='no connection has first_contact = "review"; every connection is written to as it syncs')
    for row in rows:
        waiting = ", ".join(f"{n:,} {what}" for what, n in row["pending"].items()) or "-"
        listing.add(row["connection"], "approved" if row["approved"] else "waiting for approval", waiting)
    return listing


def _rate(tax: Any) -> str:
    if tax.rate is None:
        return "—"
    if len(tax.parts) > 1:  # a tax group: its rates in order
        return " + ".join(format(p.normalize(), "f") for p in tax.parts)
    return format(tax.rate.normalize(), "f")


def ledger_json(ledger: Any, suggestion: str) -> dict[str, Any]:
    """``hub mappings --format json``: one ledger's accounts, tax codes (rates as exact decimal
    strings), items and the suggested config (``sync.mappings.Ledger``)."""
    return {"connection": ledger.connection, "system": ledger.system,
            "accounts": [{"key": a.key, "name": a.name, "type": a.type} for a in ledger.accounts],
            "tax_codes": [{"code": t.code, "name": t.name, "rate": None if t.rate is None else _rate(t)}
                          for t in ledger.tax_codes],
            "items": [{"key": key, "name": name, "type": kind} for key, name, kind in ledger.items],
            "suggestion": suggestion}


def ledger_listings(ledger: Any) -> list[Listing]:
    """``hub mappings``' tables for people: accounts, tax codes, items of one ledger."""
    key = "Id" if ledger.system == "quickbooks" else "Code"
    accounts = Listing(f"{ledger.connection} ({ledger.system}): accounts", [
        Column(key, "id"), Column("name"), Column("type")], empty="none")
    for a in ledger.accounts:
        accounts.add(a.key, a.name, a.type)
    taxes = Listing(f"{ledger.connection}: tax codes ({'TaxCode' if key == 'Id' else 'TaxType'})", [
        Column("code", "id"), Column("name"), Column("sales rate %", "id")], empty="none")
    for t in ledger.tax_codes:
        taxes.add(t.code, t.name, _rate(t))
    items = Listing(f"{ledger.connection}: items", [
        Column("id" if key == "Id" else "code", "id"), Column("name"), Column("type")], empty="none")
    for row in ledger.items:
        items.add(*row)
    return [accounts, taxes, items]


def ledgers_csv_listing(ledgers: Sequence[Any]) -> Listing:
    """``hub mappings --format csv``: every ledger's accounts, tax codes and items in one sheet."""
    listing = Listing("Ledger mappings", [Column("connection"), Column("list"), Column("key", "id"),
                                          Column("name"), Column("type_or_rate")])
    for ledger in ledgers:
        for a in ledger.accounts:
            listing.add(ledger.connection, "account", a.key, a.name, a.type)
        for t in ledger.tax_codes:
            listing.add(ledger.connection, "tax_code", t.code, t.name, "" if t.rate is None else _rate(t))
        for key, name, kind in ledger.items:
            listing.add(ledger.connection, "item", key, name, kind)
    return listing


__all__ = ["checks_listing", "export_listing", "ledger_json", "ledger_listings", "ledgers_csv_listing", "findings_listing", "outbox_listing",
           "review_listing", "status_listings", "usage_listing"]
