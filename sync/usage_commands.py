"""``hub usage import`` and ``hub usage totals``: usage events -> Stripe meter events."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sync.cli_context import HubContext
from sync.listings import usage_listing
from sync.output_formats import emit, format_option
from sync.terminal import console, fail, handles_errors, print_json


@click.group()
def usage() -> None:
    """Usage events -> Stripe meter events (each event id counted once)."""


@usage.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-send", is_flag=True, help="Only store the events; `hub run` sends them.")
@click.pass_obj
@handles_errors
def usage_import(hub: HubContext, path: Path, no_send: bool) -> None:
    """Import usage events from JSON Lines or CSV (event_id, event_name, customer, value, timestamp)."""
    from sync.usage import UsageConflict, UsageError, read_usage_file, send_pending, store_usage

    try:
        events = list(read_usage_file(path))
    except UsageError as exc:
        fail(f"{exc}; fix the file and import it again (events already stored are not counted twice)")
    try:  # all or nothing: a file with one conflicting event stores none of its events
        accepted, duplicates = store_usage(hub.hub.store, events)
    except UsageConflict as exc:
        fail(f"{path}: event {exc.index + 1}: {exc}; nothing from this file was stored")
    console.print(f"stored {accepted} new usage events, {duplicates} already known")
    if no_send:
        return
    sent, errors = send_pending(hub.hub)
    console.print(f"sent {sent} to Stripe")
    for error in errors[:20]:
        console.print(f"[red]not sent[/] {error}")
    if errors:
        sys.exit(1)


@usage.command("totals")
@click.option("--customer", help="Only this customer (hub id or Stripe customer id).")
@format_option
@click.pass_obj
@handles_errors
def usage_totals_command(hub: HubContext, customer: str | None, fmt: str) -> None:
    """Usage per customer, meter and month, as the hub counted it."""
    from sync.usage import usage_totals

    hub.store.init()
    totals = [t for t in usage_totals(hub.store) if customer in (None, t.customer)]
    rows = [{"customer": t.customer, "event_name": t.event_name, "period": t.period,
             "value": str(t.value), "events": t.events} for t in totals]
    emit(fmt, rows, lambda: [usage_listing(rows)], console, print_json)


__all__ = ["usage"]
