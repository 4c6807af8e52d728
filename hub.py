"""``hub``: billhub's command line (and, via ``hub run``, its daemon entry point).

Exit codes: 0 ok, 1 findings or failures worth attention, 2 usage or config error.
Every command takes ``--config PATH`` (else ``$HUB_CONFIG``, else ``hub.toml``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mapping.model import ENTITY_TYPES
from state.queues import OUTBOX_ID_MAX
from sync import report as reports
from sync.admin_commands import forget_customer_command, rotate_key_command
from sync.alerts import findings_alert, raise_alerts
from sync.audit import cli_actor
from sync.audit_commands import audit
from sync.checks import check_connections
from sync.cli_context import HubContext
from sync.config_new import new_config_command
from sync.connect_commands import connect_command, disconnect_command
from sync.daemon import run_command
from sync.finding_actions import acknowledge
from sync.finding_view import places_of
from sync.findings import KINDS, finding_json, findings_report
from sync.listings import checks_listing, export_listing, findings_listing, outbox_listing, status_listings
from sync.outbox_actions import drop_write, retry_write
from sync.output_formats import emit, format_option, print_table
from sync.progress import engine_progress
from sync.queries import export_records, gather_status
from sync.repair import repair_finding, resync_since
from sync.resync_audit import audit_finding_resync, audit_range_resync, audit_record_resync
from sync.review_commands import review
from sync.runtime import Hub
from sync.setup_commands import mappings, setup
from sync.summary import SyncSummary
from sync.terminal import (
    console,
    err_console,
    fail,
    handles_errors,
    json_text,
    print_json,
    print_status,
    print_summary,
)
from sync.usage_commands import usage
from sync.user_commands import users

# Outbox ids are database integers: a larger number is a usage error, not an overflow.
OUTBOX_ID = click.IntRange(1, OUTBOX_ID_MAX)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="HUB_CONFIG", default=None,
              help="Config file (default: $HUB_CONFIG, else hub.toml).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """billhub keeps Salesforce, Stripe, QuickBooks Online and Xero in agreement."""
    ctx.obj = HubContext(config_path)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.option("--interactive", is_flag=True, help="Write a new config from answers first (see --force).")
@click.option("--force", is_flag=True, help="With --interactive: replace an existing config file.")
@click.pass_obj
@handles_errors
def init(hub: HubContext, interactive: bool, force: bool) -> None:
    """Create or migrate the database named in the config (safe to run again)."""
    if interactive:
        new_config_command(Path(hub.config_path or "hub.toml"), force=force)
        return
    version = hub.store.init()
    console.print(f"database {hub.store.safe_url} is at schema version {version}")


@cli.command()
@click.option("--connection", "names", multiple=True, help="Only this connection (repeatable).")
@format_option
@click.pass_obj
@handles_errors
def check(hub: HubContext, names: tuple[str, ...], fmt: str) -> None:
    """Call each vendor with the stored credentials: reachable, authorised, account, currency,
    scopes, missing setup. Exit 1 if any connection fails."""
    hub.store.init()
    rows = check_connections(hub.hub, names)
    emit(fmt, {"connections": rows}, lambda: [checks_listing(rows)], console, print_json)
    if not all(r["ok"] for r in rows):
        sys.exit(1)


@cli.command()
@format_option
@click.pass_obj
@handles_errors
def status(hub: HubContext, fmt: str) -> None:
    """Connections, cursors, last runs, outbox depth and open findings (CSV: the connections)."""
    hub.store.init()
    data = gather_status(hub.store, hub.config)
    if fmt == "table":
        print_status(data)
    else:
        emit(fmt, data, lambda: status_listings(data)[:1], console, print_json)
    if data["attention"]:
        if fmt == "table":
            err_console.print(f"[yellow]needs attention:[/] {'; '.join(data['attention'])}")
        sys.exit(1)


@cli.command()
@click.option("--entity", required=True, type=click.Choice(ENTITY_TYPES), help="Entity type.")
@format_option
@click.pass_obj
@handles_errors
def export(hub: HubContext, entity: str, fmt: str) -> None:
    """Canonical records of one entity type, with their links in every system."""
    hub.store.init()
    data = export_records(hub.store, entity)
    emit(fmt, data, lambda: [export_listing(entity, data)], console, print_json)


# --------------------------------------------------------------------------- sync


def _progress(hub: HubContext, quiet: bool) -> Any:
    """The engine's progress on stderr while a long pass runs (``sync/progress.py``)."""
    return engine_progress(hub.hub.engine, hub.store, err_console, quiet=quiet)


@cli.command()
@click.option("--system", "systems", multiple=True, help="Only this system or connection (repeatable).")
@click.option("--entity", "entities", multiple=True, type=click.Choice(ENTITY_TYPES), help="Only this entity.")
@click.option("--dry-run", is_flag=True, help="Print the writes it would make; make none.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handles_errors
def sync(hub: HubContext, systems: tuple[str, ...], entities: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Run one incremental sync pass now."""
    connectors = hub.hub.connectors
    known = {n for n in connectors} | {c.system for c in connectors.values()}
    unknown = [s for s in systems if s not in known]
    if unknown:
        fail(f"no system or connection {', '.join(map(repr, unknown))}; configured: "
             + (", ".join(f"{n} ({c.system})" for n, c in sorted(connectors.items())) or "none"))
    with _progress(hub, as_json):
        summary = hub.hub.engine.sync(systems=systems or None, entities=entities or None, dry_run=dry_run)
    print_summary(summary, as_json, "Dry run" if dry_run else "Sync")
    if not dry_run:
        raise_alerts(hub.store, hub.config, hub.store.clock())
    exit_for(summary)


def exit_for(summary: SyncSummary | None) -> None:
    """Exit 1 when the pass needs a person (errors, dead letters, a paused connection), saying why
    on stderr; return otherwise."""
    reasons = summary.attention() if summary is not None else []
    if reasons:
        err_console.print(f"[yellow]needs attention:[/] {'; '.join(reasons)}")
        sys.exit(1)


@cli.command()
@click.argument("target", nargs=-1)
@click.option("--entity", type=click.Choice(ENTITY_TYPES), help="With --since: re-read this entity.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="With --entity: re-read from this date.")
@click.option("--finding", "finding_id", help="Do what a drift finding calls for.")
@click.option("--keep", help="For a duplicate or orphan finding: the external id to link.")
@click.option("--dry-run", is_flag=True, help="Say what it would do; do nothing.")
@click.option("--reason", help="Why (kept in the audit log with your name).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handles_errors
def resync(hub: HubContext, target: tuple[str, ...], entity: str | None, since: Any, finding_id: str | None,
           keep: str | None, dry_run: bool, reason: str | None, as_json: bool) -> None:
    """Re-read from the source and re-push: `S E ID`, `--entity E --since DATE`, or `--finding ID`."""
    if finding_id:
        plan = repair_finding(hub.hub, finding_id, keep=keep, dry_run=dry_run)
        if not dry_run:
            audit_finding_resync(hub.store, cli_actor(), plan, keep=keep, reason=reason)
        if as_json:
            print_json(plan.to_json())
        else:
            for action in plan.actions:
                console.print(("[dim]would[/] " if dry_run else "") + action)
            if plan.summary is not None:
                console.print(f"written: {plan.summary.totals().written}")
        exit_for(plan.summary)
        return
    if len(target) == 3:
        system, entity_type, external_id = target
        if entity_type not in ENTITY_TYPES:
            fail(f"unknown entity {entity_type!r}; expected one of {', '.join(ENTITY_TYPES)}")
        if system not in hub.hub.connectors:
            fail(f"no connection {system!r}; configured: {', '.join(hub.hub.connectors) or 'none'}")
        if dry_run:
            console.print(f"would re-read {system} {entity_type} {external_id} and push it to its targets")
            return
        summary = hub.hub.engine.resync_record(system, entity_type, external_id)
        audit_record_resync(hub.store, cli_actor(), system, entity_type, external_id, summary, reason=reason)
        print_summary(summary, as_json, "Resync")
        exit_for(summary)
        return
    if entity and since:
        with _progress(hub, as_json or dry_run):
            summary = resync_since(hub.hub, entity, since, dry_run=dry_run)
        if not dry_run:
            audit_range_resync(hub.store, cli_actor(), entity, since, summary, reason=reason)
        print_summary(summary, as_json, "Dry run" if dry_run else f"Resync {entity} since {since:%Y-%m-%d}")
        exit_for(summary)
        return
    fail("say what to resync: `hub resync SYSTEM ENTITY ID`, `--entity E --since YYYY-MM-DD`, or `--finding ID`")


# --------------------------------------------------------------------------- drift


@cli.command()
@click.option("--entity", "entities", multiple=True, type=click.Choice(ENTITY_TYPES),
              help="Entity to reconcile (repeatable; default: all the configured flows cover).")
@format_option
@click.pass_obj
@handles_errors
def diff(hub: HubContext, entities: tuple[str, ...], fmt: str) -> None:
    """Reconcile every system against the hub now. Exit 1 when unacknowledged findings are open."""
    chosen = list(entities) or default_diff_entities(hub.hub)
    result = hub.hub.differ.run(chosen)
    raise_alerts(hub.store, hub.config, hub.store.clock(), extra=[findings_alert(result, hub.config.alerts)])
    report = findings_report(hub.store, status=None, places=places_of(hub.config.connections, hub.store))
    report["findings"] = [f for f in report["findings"] if f["status"] != "resolved"]
    if fmt == "json":
        print_json({**result.to_json(), "findings": report["findings"], "summary": report["summary"],
                    "errors": result.errors})
    elif fmt == "csv":
        click.echo(reports.to_csv(report), nl=False)
    else:
        print_table(findings_listing(report["findings"]), console)
        console.print(", ".join(f"{kind} {n:,}" for kind, n in report["summary"].items()))
        console.print(f"{result.new:,} new, {result.resolved:,} resolved")
    for error in result.errors:
        err_console.print(f"[yellow]{error}[/]")
    # Acknowledged findings are shown but no longer fail the command: a person has seen them.
    if any(f["status"] == "open" for f in report["findings"]) or result.errors:
        sys.exit(1)


def default_diff_entities(hub: Hub) -> list[str]:
    covered = {t for c in hub.connectors.values() for t in hub.routing.reads(c.system)}
    return [e for e in ("customer", "product", "invoice", "payment", "refund", "credit_note") if e in covered]


@cli.group()
def drift() -> None:
    """Review drift findings: list, show, ack, export."""


@drift.command("list")
@click.option("--kind", type=click.Choice(KINDS))
@click.option("--system")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]))
@click.option("--entity", type=click.Choice(ENTITY_TYPES))
@format_option
@click.pass_obj
@handles_errors
def drift_list(hub: HubContext, kind: str | None, system: str | None, status: str | None, entity: str | None,
               fmt: str) -> None:
    """Findings with who and what they are about (customer, document, date, amount)."""
    hub.store.init()
    report = findings_report(hub.store, kind=kind, system=system, status=status, entity=entity,
                             places=places_of(hub.config.connections, hub.store))
    if fmt == "csv":  # the findings CSV of `hub drift export --format csv`, one copy
        click.echo(reports.to_csv(report), nl=False)
        return
    emit(fmt, report, lambda: [findings_listing(report["findings"])], console, print_json)


@drift.command("show")
@click.argument("finding_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handles_errors
def drift_show(hub: HubContext, finding_id: str, as_json: bool) -> None:
    """One finding as finance reads it: customer, document, date and amount, each system's value,
    the candidates of a duplicate, links into each vendor's app and the command that settles it."""
    hub.store.init()
    places = places_of(hub.config.connections, hub.store)
    with hub.store.transaction() as tx:
        finding = finding_json(tx, finding_id, places)
    if as_json:
        print_json(finding)
        return
    console.print(reports.finding_detail(finding))


@drift.command("ack")
@click.argument("finding_id")
@click.option("--comment", help="Why it is acknowledged (kept in the audit log with your name).")
@click.pass_obj
@handles_errors
def drift_ack(hub: HubContext, finding_id: str, comment: str | None) -> None:
    """Acknowledge a finding: known and accepted, no longer counted as open."""
    hub.store.init()
    with hub.store.transaction() as tx:
        finding = acknowledge(tx, finding_id, actor=cli_actor(), comment=comment)
    console.print(f"finding {finding.id[:8]} is {finding.status}")


@drift.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "html"]), default="json")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]))
@click.pass_obj
@handles_errors
def drift_export(hub: HubContext, fmt: str, output: str | None, status: str | None) -> None:
    hub.store.init()
    report = findings_report(hub.store, status=status, places=places_of(hub.config.connections, hub.store))
    text = {"json": lambda: json_text(report), "csv": lambda: reports.to_csv(report),
            "html": lambda: reports.to_html(report)}[fmt]()
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        err_console.print(f"wrote {output}")
    else:
        click.echo(text)


# --------------------------------------------------------------------------- outbox


@cli.group()
def outbox() -> None:
    """Pending and dead writes: list, retry, drop."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["pending", "in_flight", "done", "dead", "dropped"]), default=None)
@format_option
@click.pass_obj
@handles_errors
def outbox_list(hub: HubContext, status: str | None, fmt: str) -> None:
    """Writes not landed yet (pending, in flight, dead), or those of one --status."""
    hub.store.init()
    with hub.store.transaction() as tx:
        items = tx.list_outbox(status or None, limit=1000) if status else [
            i for i in tx.list_outbox(None, limit=100000) if i.status in ("pending", "in_flight", "dead")]
    emit(fmt, [{k: getattr(i, k) for k in i.__slots__} for i in items], lambda: [outbox_listing(items, for_csv=fmt == "csv")],
         console, print_json)


@outbox.command("retry")
@click.argument("item_id", type=OUTBOX_ID)
@click.option("--reason", help="Why (kept in the audit log with your name).")
@click.pass_obj
@handles_errors
def outbox_retry(hub: HubContext, item_id: int, reason: str | None) -> None:
    """Put a dead or dropped write back in the queue, due now."""
    hub.store.init()
    with hub.store.transaction() as tx:
        retry_write(tx, item_id, actor=cli_actor(), reason=reason)
    console.print(f"outbox item {item_id} is pending again; the next sync pass or `hub run` writes it")


@outbox.command("drop")
@click.argument("item_id", type=OUTBOX_ID)
@click.option("--reason", required=True, help="Why the write is given up on (kept in the audit log and on "
                                               "the diff's finding).")
@click.pass_obj
@handles_errors
def outbox_drop(hub: HubContext, item_id: int, reason: str) -> None:
    """Give up on a pending or dead write; the diff keeps the record in sight as missing
    (acknowledged, with who and why) until `hub outbox retry ID` lands it."""
    hub.store.init()
    try:  # drop_write is the one check of the reason, after the item (an unknown id is the answer)
        with hub.store.transaction() as tx:
            drop_write(tx, item_id, actor=cli_actor(), reason=reason)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"outbox item {item_id} dropped (in the audit log with your reason); `hub diff` shows the "
                  "record as missing, acknowledged")


# --------------------------------------------------------------------------- demo, emulate


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the drift report JSON.")
@click.option("--serve", is_flag=True, help="Keep the daemon and console running on the demo data.")
@click.option("--dir", "workdir", default=None, type=click.Path(file_okay=False),
              help="Where the SQLite file, config, certificates and HTML report go (default: a new "
                   "folder billhub-demo[-N] here).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="With --serve: the console's port on 127.0.0.1.")
def demo(as_json: bool, serve: bool, workdir: str | None, port: int) -> None:
    """Seeded emulators + SQLite: sync, plant drift, diff, print the drift report."""
    from sync.demo_run import fresh_folder, port_problem, run_demo

    problem = port_problem(port) if serve else None
    if problem:
        fail(problem)  # before any work, not after the whole demo
    folder = Path(workdir) if workdir else fresh_folder(Path.cwd())
    sys.exit(run_demo(folder, as_json=as_json, serve=serve, port=port, console=console, err_console=err_console))


@cli.command()
@click.option("--port-base", type=click.IntRange(1024, 65000), default=None,
              help="Serve on PORT_BASE..PORT_BASE+3 (default: free ports).")
@click.option("--dir", "workdir", default=".", type=click.Path(file_okay=False),
              help="Where the Salesforce emulator's TLS certificate and hub.toml snippet go.")
@click.option("--toml", "as_toml", is_flag=True, help="Print the config snippet (TOML) instead of the JSON.")
def emulate(port_base: int | None, workdir: str, as_toml: bool) -> None:
    """Run the four emulators standalone on loopback; print their base URLs as JSON (one
    document on stdout, for scripts; the config snippet is written beside it, or printed with
    --toml)."""
    import signal
    import threading

    from state.crypto import generate_key
    from sync.demo import start_emulators

    target = Path(workdir)
    target.mkdir(parents=True, exist_ok=True)
    emulators = start_emulators(target.resolve(), port_base=port_base)
    snippet = emulators.config_toml("sqlite:///hub.db", generate_key())
    (target / "hub.emulators.toml").write_text(snippet)
    if as_toml:
        click.echo(snippet, nl=False)
    else:
        click.echo(json.dumps({**emulators.urls(), "config": str((target / "hub.emulators.toml").resolve()),
                               "salesforce_ca_bundle": str(emulators.sf_cert)}, indent=2), nl=True)
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulators.stop()


cli.add_command(run_command)
cli.add_command(usage)
cli.add_command(review)
cli.add_command(setup)
cli.add_command(mappings)
cli.add_command(rotate_key_command)
cli.add_command(forget_customer_command)
cli.add_command(connect_command)
cli.add_command(disconnect_command)
cli.add_command(users)
cli.add_command(audit)


def main() -> None:
    cli(prog_name="hub")


if __name__ == "__main__":
    main()


__all__ = ["cli", "main"]
