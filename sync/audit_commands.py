"""``hub audit list`` and ``hub audit export``: who did what, filtered, for people or for files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from state.audit import AuditEntry, AuditFilter
from sync.audit import audit_csv, audit_filter, audit_json
from sync.cli_context import HubContext
from sync.output_formats import Column, Listing, format_option, print_table
from sync.terminal import console, fail, handles_errors


def _filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--actor", help='Who: a user name ("alice") or a whole actor ("cli:root").'),
        click.option("--action", help='What: an action ("finding.ack") or its family ("finding").'),
        click.option("--target", "target_kind", help="What kind of thing: finding, outbox, record, user, ..."),
        click.option("--target-id", help="Which one (with --target)."),
        click.option("--record", help="Everything about one hub record (its canonical id)."),
        click.option("--since", help="From this date (YYYY-MM-DD, UTC) or ISO date and time."),
        click.option("--until", help="Up to and including this date (YYYY-MM-DD), or before an ISO time."),
    ]):
        fn = option(fn)
    return fn


def _where(options: dict[str, Any]) -> AuditFilter:
    try:
        return audit_filter(**{k: options.get(k) for k in
                               ("actor", "action", "target_kind", "target_id", "record", "since", "until")})
    except ValueError as exc:
        fail(str(exc))


def _all(hub: HubContext, where: AuditFilter) -> list[AuditEntry]:
    """Every matching entry, newest first: one read (all of them are held to be written out
    anyway, so batches by OFFSET would only rescan the rows before each batch)."""
    hub.store.init()
    with hub.store.transaction() as tx:
        return tx.list_audit(where, limit=tx.count_audit(where))


@click.group()
def audit() -> None:
    """The audit log: every state-changing action of a person (console, API, CLI)."""


@audit.command("list")
@_filters
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="At most this many.")
@format_option
@click.pass_obj
@handles_errors
def audit_list(hub: HubContext, limit: int, fmt: str, **options: Any) -> None:
    """The newest entries first."""
    where = _where(options)
    hub.store.init()
    with hub.store.transaction() as tx:
        entries = tx.list_audit(where, limit=limit)
        total = tx.count_audit(where)
    if fmt == "json":
        click.echo(audit_json(entries))
        return
    if fmt == "csv":
        click.echo(audit_csv(entries), nl=False)
        return
    if not entries:
        console.print("no audit entries match")
        return
    # what changed (before/after) is in --format json|csv: a table 80 columns wide keeps who, what, why
    listing = Listing(f"Audit log ({len(entries):,} of {total:,}, newest first)", [
        Column("when (UTC)", "when"), Column("who"), Column("what"), Column("why")])
    for entry in entries:
        target = entry.target_id[:8] if entry.target_kind == "finding" else entry.target_id
        listing.add(entry.at.strftime("%Y-%m-%d %H:%M"), entry.actor, f"{entry.action} {entry.target_kind} {target}",
                    entry.reason or "")
    print_table(listing, console)


@audit.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.pass_obj
@handles_errors
def audit_export(hub: HubContext, fmt: str, output: str | None, **options: Any) -> None:
    """Every matching entry (newest first) as JSON or CSV, for an auditor or a spreadsheet."""
    entries = _all(hub, _where(options))
    text = audit_json(entries) + "\n" if fmt == "json" else audit_csv(entries)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {len(entries)} audit entries to {output}")
        return
    click.echo(text, nl=False)


__all__ = ["audit"]
