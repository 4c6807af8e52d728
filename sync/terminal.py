"""What the command line prints: one error style, JSON for scripts, and the tables people read.

Every command reports a problem the same way (``error: …`` on stderr, exit 2 for usage, config
or database problems, 1 for findings or failures worth attention) and never shows a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from connectors.base import ConnectorError
from mapping import exact_json
from state.errors import StateError
from sync.config import ConfigError
from sync.engine import SyncSummary
from sync.listings import status_listings
from sync.output_formats import Column, Listing, print_table
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
    print_table(summary_listing(summary, title), console)
    for name, reason in summary.paused.items():
        console.print(f"[yellow]paused[/] {name}: {reason}")
    for error in summary.errors[:20]:
        console.print(f"[red]error[/] {error}")
    for name, queued in sorted(summary.waiting_review.items()):
        console.print(f"[yellow]held for review[/] {name}: {queued:,} writes planned, none sent "
                      f"(first_contact = \"review\"); `hub review` lists them, "
                      f"`hub review approve --connection {name}` lets them go")
    if summary.first_contact:
        plan = Listing("Dry run: what the push would do with each planned record (nothing was written)", [
            Column("stream"), *(Column(c, "number") for c in FIRST_CONTACT), Column("why")])
        for row in summary.first_contact:
            plan.add(f"{row['connection']} {row['entity']}", *(row[c] for c in FIRST_CONTACT),
                     "; ".join(f"{n:,} {why}" for why, n in row["why"].items()))
        print_table(plan, console)
    if summary.planned:
        writes = Listing("Dry run: writes it would make (none were made)", [
            Column("system"), Column("operation"), Column("entity"), Column("record", "id", short=8),
            Column("changed fields")])
        for p in summary.planned:
            writes.add(p["system"], p["operation"], p["entity"], p["record"], ", ".join(p["changed_fields"]))
        print_table(writes, console)


FIRST_CONTACT = ("linked", "unchanged", "updated", "created", "held")
SUMMARY_COUNTS = ("added", "changed", "unchanged", "linked", "held", "dead", "retried", "failed")


def summary_listing(summary: SyncSummary, title: str) -> Listing:
    """A pass per stream: what it read and wrote in columns of their own, the other counts that
    are not zero in words (ten count columns never fit 80: they cut "1,001" to "10…")."""
    listing = Listing(title, [Column("system"), Column("entity"), Column("read", "number"),
                              Column("written", "number"), Column("besides")], empty="nothing to sync")
    for (connection, entity), stats in sorted(summary.streams.items()):
        besides = ", ".join(f"{c} {getattr(stats, c):,}" for c in SUMMARY_COUNTS if getattr(stats, c))
        listing.add(connection, entity, stats.read, stats.written, besides)
    return listing


def print_status(data: dict[str, Any]) -> None:
    """``hub status`` for people (``gather_status`` data): its three tables, then the outbox and
    the open findings in a line each."""
    for listing in status_listings(data):
        print_table(listing, console)
    outbox = ", ".join(f"{k} {v:,}" for k, v in sorted(data["outbox"].items())) or "empty"
    findings = ", ".join(f"{k} {v:,}" for k, v in sorted(data["open_findings"].items())) or "none"
    console.print(f"outbox: {outbox}\nopen findings: {findings}")
