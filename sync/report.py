"""Drift reports for people: rich tables, CSV, and a single self-contained HTML file."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rich.table import Table

from sync.findings import KINDS

COLORS = {"missing": "#d92d20", "orphan": "#7a5af8", "duplicate": "#f79009", "mismatch": "#2e90fa",
          "stale": "#667085", "broken_link": "#c11574", "totals": "#12b76a",
          "unreadable": "#475467"}
_ENV = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                   autoescape=select_autoescape(["html"]))


def findings_table(report: dict[str, Any], title: str = "Drift findings") -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("id", "kind", "entity", "system", "status", "values", "detail"):
        table.add_column(column, overflow="fold")
    for f in report["findings"]:
        values = "\n".join(f"{name}: " + " | ".join(f"{s}={v}" for s, v in vals.items())
                           for name, vals in f["fields"].items())
        table.add_row(f["id"][:8], f["kind"], f["entity"], f["system"], f["status"], values, f["detail"])
    return table


def summary_table(summary: dict[str, int]) -> Table:
    table = Table(title="Drift summary")
    for kind in KINDS:
        table.add_column(kind, justify="right")
    table.add_row(*(str(summary.get(k, 0)) for k in KINDS))
    return table


def finding_detail(finding: dict[str, Any]) -> Table:
    """One finding with each system's value side by side."""
    systems = sorted({s for vals in finding["fields"].values() for s in vals})
    table = Table(title=f"{finding['kind']} {finding['entity']} in {finding['system']} ({finding['status']})")
    table.add_column("field")
    for system in systems:
        table.add_column(system)
    for name, vals in finding["fields"].items():
        table.add_row(name, *(str(vals.get(s, "")) for s in systems))
    return table


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "kind", "entity", "system", "canonical_id", "external_ids", "status", "fields",
                     "detail", "first_seen", "last_seen"])
    for f in report["findings"]:
        fields = "; ".join(f"{n}: " + ", ".join(f"{s}={v}" for s, v in vals.items())
                           for n, vals in f["fields"].items())
        writer.writerow([f["id"], f["kind"], f["entity"], f["system"], f["canonical_id"] or "",
                         " ".join(f["external_ids"]), f["status"], fields, f["detail"], f["first_seen"],
                         f["last_seen"]])
    return out.getvalue()


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
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"))
