"""``hub review`` and ``hub review approve``: the writes ``first_contact = "review"`` holds."""

from __future__ import annotations

from typing import Any

import click

from sync.audit import cli_actor
from sync.cli_context import HubContext
from sync.listings import review_listing
from sync.output_formats import emit, format_option
from sync.review import approve, approved, pending_counts
from sync.terminal import console, fail, handles_errors, print_json


@click.group(invoke_without_command=True)
@format_option
@click.pass_context
@handles_errors
def review(ctx: click.Context, fmt: str) -> None:
    """List what waits for approval: per connection in review, the writes planned, none sent.

    Run `hub sync --dry-run` first to see per record whether each would be linked, updated or
    created, and why."""
    if ctx.invoked_subcommand is not None:
        return
    hub: HubContext = ctx.obj
    engine = hub.hub.engine
    with hub.hub.store.transaction() as tx:
        done = approved(tx)
        names = sorted(engine.review_connections)
        counts = pending_counts(tx, names)
    rows: list[dict[str, Any]] = [{"connection": name, "approved": name in done, "pending": counts.get(name, {})} for name in names]
    if not rows and fmt == "table":
        console.print('no connection has first_contact = "review"; every connection is written to as it syncs')
        return
    emit(fmt, {"connections": rows}, lambda: [review_listing(rows)], console, print_json)


@review.command("approve")
@click.option("--connection", "connections", multiple=True, help="Approve this connection (default: all).")
@click.pass_obj
@handles_errors
def review_approve(hub: HubContext, connections: tuple[str, ...]) -> None:
    """Let a connection's held writes go; the next `hub sync` (or `hub run` pass) sends them."""
    held = hub.hub.engine.review_connections
    unknown = [c for c in connections if c not in held]
    if unknown:
        fail(f"{', '.join(unknown)}: not a connection with first_contact = \"review\" "
             f"(those are: {', '.join(sorted(held)) or 'none'})")
    now = approve(hub.hub.store, connections or sorted(held), actor=cli_actor())
    for name in now:
        console.print(f"approved {name}: its writes go with the next sync")
    if not now:
        console.print("nothing to approve: already approved")


__all__ = ["review"]
