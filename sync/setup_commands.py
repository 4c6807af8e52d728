"""``hub setup salesforce`` and ``hub setup webhooks``: what each vendor needs before billhub can
run there, done through the vendor's API where it has one, printed step by step where it has not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from connectors.salesforce.setup import FLS_ADVICE, PERMISSION_SET, setup_org
from sync.audit import cli_actor, record_action
from sync.cli_context import HubContext
from sync.listings import ledger_json, ledger_listings, ledgers_csv_listing
from sync.mappings import read_ledger, suggest
from sync.output_formats import csv_text, format_option, print_table
from sync.terminal import console, err_console, fail, handles_errors, print_json
from sync.webhook_setup import ledger_instructions, register_stripe


def connectors_of(hub: HubContext, system: str, name: str | None) -> list[Any]:
    """The configured connectors of ``system`` (just ``name`` when given); a usage error if none."""
    found = [c for n, c in sorted(hub.hub.connectors.items())
             if c.system == system and (name is None or n == name)]
    if not found:
        configured = ", ".join(f"{n} ({c.system})" for n, c in sorted(hub.hub.connectors.items())) or "none"
        fail(f"no {system} connection{f' named {name!r}' if name else ''}; configured: {configured}")
    return found


@click.group()
def setup() -> None:
    """Create what billhub needs in each vendor: Salesforce's schema, webhook endpoints."""


@setup.command("salesforce")
@click.option("--connection", "name", help="Only this Salesforce connection.")
@click.option("--check", is_flag=True, help="List what is missing; create nothing. Exit 1 if anything is.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handles_errors
def setup_salesforce(hub: HubContext, name: str | None, check: bool, as_json: bool) -> None:
    """Create billhub's custom object and fields (Tooling API), skipping what the org has."""
    reports = {c.name: setup_org(c.client, c.settings, check=check) for c in connectors_of(hub, "salesforce", name)}
    for n, r in reports.items():
        if not check and (r.created or r.granted):  # what it made in the org, in the audit log
            _audit(hub, "setup.salesforce", n, {"created": [c.full_name for c in r.created],
                                                "granted": list(r.granted)})
    if as_json:
        print_json({n: r.to_json() for n, r in reports.items()})
    bad = False
    for n, r in reports.items():
        if not as_json:
            verb = "missing" if check else "created"
            listed = r.missing if check else r.created
            console.print(f"{n}: {len(r.wanted)} wanted, {len(r.missing)} missing"
                          + ("" if check else f", {len(r.created)} created"))
            for c in listed:
                console.print(f"  {verb} {c.kind} {c.full_name} ({c.metadata.get('type', 'object')})")
            if r.granted:
                console.print(f"  granted through permission set {PERMISSION_SET}: {', '.join(r.granted)}")
        if check and r.missing:
            bad = True
        if not check and r.hidden:
            bad = True
            err_console.print(f"{n}: these exist but the integration user cannot see them: "
                              f"{', '.join(c.full_name for c in r.hidden)}. {FLS_ADVICE}")
    if bad:
        sys.exit(1)


@setup.command("webhooks")
@click.option("--url", "public_url", help="The public https address of `hub run` (default: [server] public_url).")
@click.option("--connection", "name", help="Only this connection.")
@click.pass_obj
@handles_errors
def setup_webhooks(hub: HubContext, public_url: str | None, name: str | None) -> None:
    """Register Stripe's webhook endpoint (and store its signing secret); print QuickBooks' and
    Xero's steps."""
    base = (public_url or _configured_public_url(hub) or "").rstrip("/")
    if not base.startswith(("https://", "http://")):
        fail("say where `hub run` is reachable from the internet: --url https://billhub.example.com")
    chosen = [c for n, c in sorted(hub.hub.connectors.items()) if name is None or n == name]
    if not chosen:
        fail(f"no connection {name!r}; configured: {', '.join(sorted(hub.hub.connectors)) or 'none'}")
    for connector in chosen:
        url = f"{base}/webhooks/{connector.name}"
        if connector.system == "stripe":
            done = register_stripe(connector, url, hub.store)
            _audit(hub, "setup.webhooks", connector.name, {"endpoint": done.endpoint_id, "action": done.action,
                                                           "url": url, "events": len(done.events)})
            console.print(f"{connector.name} (stripe): endpoint {done.endpoint_id} {done.action} for {url} "
                          f"with {len(done.events)} event types")
            console.print(f"  {done.secret_note}")
        elif connector.system in ("quickbooks", "xero"):
            console.print(ledger_instructions(connector.system, connector.name, url))
        else:
            console.print(f"{connector.name} ({connector.system}): no webhooks to set up")


def _audit(hub: HubContext, action: str, connection: str, after: dict[str, Any]) -> None:
    with hub.store.transaction() as tx:
        record_action(tx, cli_actor(), action, "connection", connection, after=after)


@click.command("mappings")
@click.option("--connection", "name", help="Only this ledger connection (default: every QuickBooks and Xero one).")
@click.option("--write", "out", type=click.Path(dir_okay=False), help="Write the suggested config here (not hub.toml).")
@format_option
@click.pass_obj
@handles_errors
def mappings(hub: HubContext, name: str | None, out: str | None, fmt: str) -> None:
    """List each ledger's accounts, tax codes and items; suggest the account and tax-code keys."""
    chosen = [c for n, c in sorted(hub.hub.connectors.items())
              if c.system in ("quickbooks", "xero") and (name is None or n == name)]
    if not chosen:
        fail(f"no ledger connection{f' named {name!r}' if name else ''} (quickbooks or xero) is configured")
    ledgers = [read_ledger(connector) for connector in chosen]
    suggestions = [suggest(ledger) for ledger in ledgers]
    text = "\n".join(suggestions)
    if fmt == "json":
        print_json({"ledgers": [ledger_json(ledger, said) for ledger, said in zip(ledgers, suggestions, strict=True)]})
    elif fmt == "csv":
        click.echo(csv_text(ledgers_csv_listing(ledgers)), nl=False)
    else:
        for ledger in ledgers:
            for listing in ledger_listings(ledger):
                print_table(listing, console)
    if out:
        target = Path(out)
        if target.exists():
            fail(f"{out} exists; name a new file (the suggestion is for you to review and merge)")
        target.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}: review each line, then merge it into your config")
    elif fmt == "table":
        click.echo(text)


def _configured_public_url(hub: HubContext) -> str | None:
    value = hub.config.server.get("public_url")
    return str(value) if value else None


__all__ = ["mappings", "setup"]
