"""What the command line prints: one error style, JSON for scripts, and the tables people read.

Every command reports a problem the same way (``error: …`` on stderr, exit 2 for usage, config
or database problems, 1 for findings or failures worth attention) and never shows a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connectors.base import ConnectorError
from mapping import exact_json
from state.errors import StateError
from sync.config import ConfigError
from sync.engine import SyncSummary
from sync.repair import RepairError

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """The one way a command reports a problem: ``error: …`` on stderr, then the exit code."""
    # The message is text, not markup (it may name ``[connections.x]``), and stays one line so
    # scripts can match it.
    line = Text("error:", style="bold red")
    line.append(f" {message}")
    err_console.print(line, highlight=False, soft_wrap=True)
    sys.exit(code)


def handles_errors(fn: F) -> F:
    """Turn domain errors into a one-line message and exit code 2 — never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            fail(f"config: {exc}")
        except (StateError, RepairError, ConnectorError, LookupError) as exc:
            fail(str(exc))
        except OSError as exc:  # a file the user named: -o into a missing folder, an unreadable input
            fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
        return None

    return wrapper  # type: ignore[return-value]


def json_text(value: Any) -> str:
    """The JSON commands print: exact decimals, ISO datetimes, sorted keys, indented."""
    return exact_json.dumps(value, default=exact_json.readable, allow_float=True, indent=2, sort_keys=True)


def print_json(value: Any) -> None:
    click.echo(json_text(value))


def print_summary(summary: SyncSummary, as_json: bool, title: str = "Sync") -> None:
    if as_json:
        print_json(summary.to_json())
        return
    columns = ("read", "added", "changed", "unchanged", "linked", "written", "held", "dead", "retried", "failed")
    table = Table(title=title)
    table.add_column("system")
    table.add_column("entity")
    for column in columns:
        table.add_column(column, justify="right")
    for (connection, entity), stats in sorted(summary.streams.items()):
        table.add_row(connection, entity, *(str(getattr(stats, c)) for c in columns))
    console.print(table)
    for name, reason in summary.paused.items():
        console.print(f"[yellow]paused[/] {name}: {reason}")
    for error in summary.errors[:20]:
        console.print(f"[red]error[/] {error}")
    for name, queued in sorted(summary.waiting_review.items()):
        console.print(f"[yellow]held for review[/] {name}: {queued} writes planned, none sent "
                      f"(first_contact = \"review\"); `hub review` lists them, "
                      f"`hub review approve --connection {name}` lets them go")
    if summary.first_contact:
        plan = Table(title="Dry run: what the push would do with each planned record (nothing was written)")
        for column in ("system", "entity", "linked", "unchanged", "updated", "created", "held"):
            plan.add_column(column, justify="left" if column in ("system", "entity") else "right")
        plan.add_column("why")
        for row in summary.first_contact:
            plan.add_row(row["connection"], row["entity"],
                         *(str(row[c]) for c in ("linked", "unchanged", "updated", "created", "held")),
                         "; ".join(f"{n} {why}" for why, n in row["why"].items()))
        console.print(plan)
    if summary.planned:
        plan = Table(title="Dry run: writes it would make (none were made)")
        for column in ("system", "operation", "entity", "record", "changed fields"):
            plan.add_column(column)
        for p in summary.planned:
            plan.add_row(p["system"], p["operation"], p["entity"], p["record"], ", ".join(p["changed_fields"]))
        console.print(plan)


def print_checks(rows: list[dict[str, Any]]) -> None:
    """``hub check`` for people: one block per connection."""
    for row in rows:
        mark = "[green]ok[/]" if row["ok"] else "[red]FAILED[/]"
        console.print(f"{mark} {row['name']} ({row['system']})")
        if row["account"]:
            console.print(f"    account: {row['account']}; base currency {row['base_currency'] or 'per record'}")
        if row["scopes"]:
            console.print(f"    scopes: {', '.join(row['scopes'])}")
        for key, value in sorted(row["details"].items()):
            console.print(f"    {key}: {value}")
        if row["problem"]:
            console.print(f"    [yellow]{row['problem']}[/]")


def print_status(data: dict[str, Any]) -> None:
    """``hub status`` for people (``gather_status`` data)."""
    table = Table(title="Connections")
    for column in ("name", "system", "status", "reason / resumes"):
        table.add_column(column)
    for c in data["connections"]:
        note = c["reason"] or ""
        if c["paused_until"]:
            note = f"{note} (resumes {c['paused_until']:%Y-%m-%d %H:%M} UTC)".strip()
        style = "green" if c["status"] == "ok" else "yellow"
        table.add_row(c["name"], c["system"], f"[{style}]{c['status']}[/]", note)
    console.print(table)
    cursors = Table(title="Cursors")
    for column in ("connection", "stream", "last success"):
        cursors.add_column(column)
    for c in data["cursors"]:
        cursors.add_row(c["connection"], c["stream"], str(c["last_success"] or "never"))
    console.print(cursors)
    runs = Table(title="Last runs")
    for column in ("kind", "scope", "status", "started", "counts"):
        runs.add_column(column)
    for r in data["runs"]:
        runs.add_row(r["kind"], r["scope"], r["status"], f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                     json.dumps(r["counts"], sort_keys=True)[:80])
    console.print(runs)
    outbox = ", ".join(f"{k} {v}" for k, v in sorted(data["outbox"].items())) or "empty"
    findings = ", ".join(f"{k} {v}" for k, v in sorted(data["open_findings"].items())) or "none"
    console.print(f"outbox: {outbox}\nopen findings: {findings}")


def print_export(entity: str, data: dict[str, Any]) -> None:
    """``hub export`` for people (``export_records`` data)."""
    table = Table(title=f"{entity} ({len(data['records'])})")
    for column in ("id", "name / number", "links"):
        table.add_column(column)
    for record in data["records"]:
        label = record["data"].get("name") or record["data"].get("number") or ""
        links = "; ".join(f"{s}: {', '.join(ids)}" for s, ids in sorted(record["links"].items()))
        table.add_row(record["id"], str(label), links)
    console.print(table)
