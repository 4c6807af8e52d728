"""Drift reports for people: rich tables, CSV, and a single self-contained HTML file."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rich.console import Group
from rich.table import Table
from rich.text import Text

from mapping.money import Money, format_money
from sync.findings import KINDS
from sync.output_formats import Column, Listing, csv_text

COLORS = {"missing": "#d92d20", "orphan": "#7a5af8", "duplicate": "#f79009", "mismatch": "#2e90fa",
          "stale": "#667085", "broken_link": "#c11574", "totals": "#12b76a",
          "unreadable": "#475467"}
_ENV = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                   autoescape=select_autoescape(["html"]))


def finding_detail(finding: dict[str, Any]) -> Group:
    """One finding for ``hub drift show``: who and what (customer, document, date, amount with its
    currency), every system's value side by side, a duplicate's candidates, the neutral detail
    and the command that settles it (``about``, ``sync/finding_view.py``)."""
    about = finding.get("about") or {}
    parts: list[Any] = [Text(f"{finding['kind']} {finding['entity']} in {finding['system']} "
                             f"({finding['status']})", style="bold"), Text(f"finding {finding['id']}")]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column(overflow="fold")
    for label, value in (("customer", about.get("customer")), ("document", about.get("document")),
                         ("date", about.get("date")), ("amount", about.get("amount_text"))):
        facts.add_row(label, value or "—")
    parts.append(facts)
    for system, url in sorted((about.get("links") or {}).items()):  # whole, to be clicked or copied
        parts.append(Text(f"in {system}: {url}", no_wrap=True, overflow="ignore"))
    values = about.get("values") or {}
    if values.get("rows"):
        table = Table(title="each system's value")
        table.add_column("field")
        for system in values["systems"]:
            table.add_column(system, overflow="fold")
        for row in values["rows"]:
            table.add_row(row["field"], *(row["values"].get(s, "—") for s in values["systems"]))
        parts.append(table)
    if about.get("candidates"):
        parts.append(candidates_lines(about["candidates"], finding["system"]))
    parts.append(Text(about.get("said") or finding["detail"]))
    words, command = cli_action(finding)
    parts.append(Text(f"next: {words}", style="bold"))
    if command:  # on a line of its own, never wrapped: it is copied into a shell
        parts.append(Text(f"  {command}", no_wrap=True, overflow="ignore"))
    parts.append(Text(f"external ids: {', '.join(finding['external_ids']) or '—'} · first seen "
                      f"{finding['first_seen'][:16]} · last seen {finding['last_seen'][:16]}", style="dim"))
    return Group(*parts)


def candidates_lines(candidates: list[dict[str, Any]], system: str) -> Text:
    """A duplicate's or an orphan's records, one block each, with what tells them apart (lines,
    not a table: a name or an email is never cut into a narrow column)."""
    lines = [f"the {system} records:"]
    for c in candidates:
        docs = ", ".join(f"{d.get('number') or d.get('external_id')} ({d.get('amount_text') or '—'})"
                         for d in c.get("documents") or [])
        more = (c.get("documents_count") or 0) - len(c.get("documents") or [])
        docs += f" and {more} more" if more > 0 else ""
        who = ", ".join(x for x in (c.get("name") or c.get("number"), c.get("email")) if x) or "—"
        lines.append(f"  {c['external_id']}{' (linked)' if c.get('linked') else ''}: {who}")
        facts = [f"open balance {c['balance_text']}" if c.get("balance_text") else None,
                 f"amount {c['amount_text']}" if c.get("amount_text") else None,
                 f"created {c['created']}" if c.get("created") else None,
                 "documents the hub linked there: " + (docs or "none") if c.get("linked")
                 else "documents: none known to the hub"]
        lines.append("      " + " · ".join(f for f in facts if f))
        if c.get("link"):
            lines.append(f"      {c['link']}")
    return Text("\n".join(lines))


def cli_action(finding: dict[str, Any]) -> tuple[str, str | None]:
    """The finding's suggested action the command line's way: its words, and the command with
    the finding's real id (None when there is nothing to run)."""
    action = (finding.get("about") or {}).get("action") or {}
    kind, words = action.get("kind"), action.get("words") or ""
    if finding["status"] == "resolved":
        return "nothing: it is resolved", None
    if kind == "keep":
        example = finding["external_ids"][0] if finding["external_ids"] else "EXTERNAL_ID"
        return f"{words} (any of the ids above)", f"hub resync --finding {finding['id']} --keep {example}"
    if kind == "resync":
        return f"{words} (add --dry-run to preview)", f"hub resync --finding {finding['id']}"
    return words, f"hub drift ack {finding['id']}"


_ENV.globals["cli_command"] = lambda finding: cli_action(finding)[1]  # the HTML report's command, the same


CSV_COLUMNS = ("id", "kind", "entity", "system", "customer", "document", "date", "amount", "amount_decimal",
               "currency", "detail", "status", "values", "external_ids", "canonical_id", "first_seen", "last_seen")


def to_csv(report: dict[str, Any]) -> str:
    """One row per finding, finance's columns first (money with its currency, the document number
    people know; the amount also as an exact decimal and a currency column), then what tells the
    systems apart and the ids. Written by ``sync.output_formats.csv_text``, every CSV's one writer."""
    listing = Listing("Drift findings", [Column(name) for name in CSV_COLUMNS])
    for f in report["findings"]:
        about = f.get("about") or {}
        values = "; ".join(f"{row['field']}: " + ", ".join(f"{s} {v}" for s, v in row["values"].items())
                           for row in (about.get("values") or {}).get("rows", []))
        amount = about.get("amount")  # for a sheet's sums: the exact decimal and its currency, never a float
        exact = Money(int(amount["minor"]), amount["currency"]).to_decimal_str() if amount else ""
        listing.add(f["id"], f["kind"], f["entity"], f["system"], about.get("customer") or "",
                    about.get("document") or "", about.get("date") or "", about.get("amount_text") or "",
                    exact, amount["currency"] if amount else "", about.get("said") or f["detail"], f["status"],
                    values, " ".join(f["external_ids"]), f["canonical_id"] or "", f["first_seen"], f["last_seen"])
    return csv_text(listing)


def at_stake(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The amounts the unresolved findings name, per currency, and the period they were first seen in."""
    rows: dict[str, dict[str, int]] = {}
    seen = sorted(f["first_seen"][:10] for f in findings if f["status"] != "resolved")
    for f in findings:
        amount = (f.get("about") or {}).get("amount")
        if f["status"] == "resolved" or not amount:
            continue
        row = rows.setdefault(amount["currency"], {"findings": 0, "minor": 0})
        row["findings"] += 1
        row["minor"] += abs(int(amount["minor"]))
    return {"period": (seen[0], seen[-1]) if seen else None,
            "rows": [{"currency": c, "findings": r["findings"], "text": format_money(r["minor"], c)}
                     for c, r in sorted(rows.items())]}


def _chart(findings: list[dict[str, Any]], width: int = 720, height: int = 160) -> dict[str, Any]:
    """Stacked bars: findings first seen per day, by kind (server-side SVG, no script needed)."""
    per_day: dict[str, Counter[str]] = {}
    for f in findings:
        per_day.setdefault(f["first_seen"][:10], Counter())[f["kind"]] += 1
    days = sorted(per_day)[-30:]
    peak = max((sum(c.values()) for c in per_day.values()), default=1) or 1
    slot = width / max(1, len(days))
    bars, ticks = [], []
    for i, day in enumerate(days):
        y = float(height)
        for kind in KINDS:
            n = per_day[day][kind]
            if not n:
                continue
            h = n / peak * (height - 10)
            y -= h
            bars.append({"x": round(i * slot + 4, 1), "y": round(y, 1), "w": round(max(4.0, slot - 8), 1),
                         "h": round(h, 1), "color": COLORS[kind], "label": f"{day}: {n} {kind}"})
        ticks.append({"x": round(i * slot + 4, 1), "label": day[5:]})
    legend = [{"x": 10 + i * 100, "kind": k, "color": COLORS[k]} for i, k in enumerate(KINDS)]
    return {"width": width, "height": height, "bars": bars, "ticks": ticks, "legend": legend}


def to_html(report: dict[str, Any], now: datetime | None = None) -> str:
    findings = report["findings"]
    return _ENV.get_template("report.html").render(
        report=report, chart=_chart(findings), systems=sorted({f["system"] for f in findings}),
        stake=at_stake(findings),
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"))
