"""The ``hub demo`` run: emulators, seed, first sync, planted drift, diff, report."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from rich.console import Console

from state.crypto import generate_key
from sync import report as reports
from sync.config import load_config
from sync.demo import Emulators, plant_drift, seed_company, start_emulators
from sync.finding_view import places_of
from sync.findings import findings_report
from sync.listings import findings_listing
from sync.output_formats import print_table
from sync.progress import RichStreams, queued_writes, rich_progress
from sync.runtime import Hub
from sync.terminal import json_text

DB_NAME = "billhub-demo.db"
REPORT_NAME = "billhub-drift-report.html"
CONFIG_NAME = "billhub-demo.toml"
DIFF_ENTITIES = ["customer", "invoice", "payment", "refund"]


def fresh_folder(parent: Path) -> Path:
    """A folder of the demo's own under ``parent`` (``billhub-demo``, else ``billhub-demo-2`` ...),
    so its database, config with an encryption key, certificates and report never land among
    the user's files."""
    for n in range(1, 1000):
        folder = parent / ("billhub-demo" if n == 1 else f"billhub-demo-{n}")
        if not folder.exists():
            return folder
    raise OSError(f"{parent}: billhub-demo .. billhub-demo-999 all exist; pass --dir")


def port_problem(port: int) -> str | None:
    """Why the console cannot listen on 127.0.0.1:``port``, or None: checked before the demo
    runs, so a busy port is one clear line instead of a traceback after the whole demo."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return f"port {port} on 127.0.0.1 is not free ({exc.strerror}): pass --port N, or stop what listens there"
    return None


def run_demo(workdir: Path, *, as_json: bool, serve: bool, console: Console, err_console: Console,
             port: int = 8080) -> int:
    started = time.monotonic()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (workdir / stale).unlink(missing_ok=True)
    out = err_console if as_json else console
    progress = rich_progress(err_console)
    emulators: Emulators | None = None
    hub: Hub | None = None
    try:
        with progress:
            steps = progress.add_task("starting the four emulators", total=6)
            emulators = start_emulators(workdir)
            config_path = workdir / CONFIG_NAME
            admin_token = "demo-admin-token" if serve else ""
            server = f"\n[server]\nport = {port}\n" if serve else ""
            config_path.write_text(emulators.config_toml(f"sqlite:///{workdir / DB_NAME}", generate_key(),
                                                         admin_token=admin_token) + server)
            progress.update(steps, advance=1, description="seeding a small company in Stripe and Salesforce")
            facts = seed_company(emulators)
            progress.update(steps, advance=1, description="first sync: Stripe and Salesforce -> every system")
            config = load_config(config_path)
            hub = Hub.from_config(config)
            hub.store.init()
            # one bar per stream: a push's with its total (the writes queued), a read's with its count
            hub.engine.on_progress = RichStreams(progress, queued_writes(hub.store)).advance
            summary = hub.engine.sync()
            progress.update(steps, advance=1, description="planting drift behind the hub's back")
            planted = plant_drift(emulators)
            progress.update(steps, advance=1, description="reconciling every system (diff)")
            result = hub.differ.run(DIFF_ENTITIES)
            progress.update(steps, advance=1, description="writing the report")
            report = findings_report(hub.store, places=places_of(hub.config.connections, hub.store))
            report["findings"] = [f for f in report["findings"] if f["status"] != "resolved"]
            (workdir / REPORT_NAME).write_text(reports.to_html(report))
            progress.update(steps, advance=1)
        totals = summary.totals()
        if as_json:
            print(json_text({**result.to_json(), "summary": report["summary"], "findings": report["findings"]}))
        else:
            out.print(f"[bold]billhub demo[/] — seeded {facts.customers} customers, {facts.invoices} invoices, "
                      f"{facts.payments} payments, {facts.refunds} refunds, {facts.deals} deals "
                      f"({', '.join(c.upper() for c in facts.currencies)})")
            out.print(f"first sync: read {totals.read}, added {totals.added}, linked {totals.linked}, "
                      f"written {totals.written}, held {totals.held}, dead {totals.dead}")
            for error in summary.errors[:10]:
                out.print(f"[red]sync error[/] {error}")
            out.print("planted drift:")
            for line in planted:
                out.print(f"  • {line}")
            print_table(findings_listing(report["findings"]), out)
            out.print(", ".join(f"{kind} {n:,}" for kind, n in report["summary"].items()))
            out.print(f"HTML report: {workdir / REPORT_NAME}\nconfig: {config_path}\n"
                      f"database: {workdir / DB_NAME}\ntook {time.monotonic() - started:.1f} s")
        if serve and hub is not None:
            from sync.daemon import serve_forever

            out.print(f"serving the console at http://127.0.0.1:{port}/ (token: demo-admin-token); Ctrl-C stops")
            serve_forever(config)
        return 0
    finally:
        if hub is not None:
            hub.close()
        if emulators is not None:
            emulators.stop()

