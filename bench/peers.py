"""Peer table: the same streams read by billhub and by the Singer taps, side by side in one run.

    python -m bench.peers                                  # 300 customers, 1,500 invoices
    python -m bench.peers --customers 1000 --invoices 5000

One seeded company (``sync.demo.seed_company``: Stripe and Salesforce hold it) is synced once by
billhub, so QuickBooks, Xero and Salesforce hold what billhub wrote; then, from those same
emulators, one after another, each system's customers and invoices are read in full by

* **billhub** — its own connector (``fetch_all``, as ``hub resync`` reads), in a child process
  (``python -m bench.peers --read``: the hub's config and stored tokens, nothing written);
* **the Singer tap** — tap-stripe, tap-quickbooks, tap-xero, tap-salesforce in their own venvs
  (``tests/peers/venvs.py``), through the same entry scripts the peer tests use
  (``tests/peers/run_tap_*.py``), a sync of the same two streams (discovery is run first and not
  counted).

Both are child processes, timed the same way: wall time, CPU (user + system,
``resource.getrusage(RUSAGE_CHILDREN)`` around the run) and the API calls the emulator saw
(``bench/wire.py``; token requests not counted). From nothing to records on each side: billhub's
process learns what it needs (Salesforce's describes, the org facts) and reads; the tap runs its
discovery and then its sync (two processes, both counted). Each client's start-up (the
interpreter and its imports, measured alone right before: ``--startup`` for billhub, the tap's
``--help``) is taken out of its wall and CPU once per process, so the figures are the reading,
not the imports; the whole-process figures are printed too. Records are distinct objects per
stream (tap-stripe also emits an object again for each of its events). Printed per system:
records/s, CPU ms per record and API calls per record for both, and the ratios (>1: billhub
ahead). The machine is shared: the ratios, measured side by side in one run, are what count.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from bench.wire import WireLog

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "tests" / "peers"
AUTH_PATHS = ("token", "oauth", "connect/", "/__emulator")
# system -> (billhub entity types, the tap, its streams for the same records)
STREAMS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "stripe": (("customer", "invoice"), "tap-stripe", ("customers", "invoices")),
    "quickbooks": (("customer", "invoice"), "tap-quickbooks", ("customers", "invoices")),
    "xero": (("customer", "invoice"), "tap-xero", ("contacts", "invoices")),
    "salesforce": (("customer", "invoice"), "tap-salesforce", ("Account", "Billing_Invoice__c")),
}
HISTORY_DAYS = 400  # the taps' start_date: before the seeded company's first object


@dataclass
class Measured:
    records: int
    wall: float  # start-up taken out (``net``)
    cpu: float
    calls: int
    whole_wall: float = 0.0  # as run, start-up included
    whole_cpu: float = 0.0
    routes: dict[str, int] = dataclasses.field(default_factory=dict)  # API calls by route

    def per_second(self) -> float:
        return self.records / self.wall if self.wall else 0.0

    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.records if self.records else float("nan")

    def calls_per(self) -> float:
        return self.calls / self.records if self.records else float("nan")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def api_calls(log: WireLog) -> dict[str, int]:
    """API calls by route (token requests and the emulator's own control routes left out)."""
    routes: dict[str, int] = {}
    for call in log.calls:
        if not any(p in call.path for p in AUTH_PATHS):
            route = f"{call.route} [{call.entity}]" if call.entity else call.route
            routes[route] = routes.get(route, 0) + 1
    return routes


def measure(log: WireLog, run: Callable[[], int], startup: tuple[float, float], processes: int) -> Measured:
    """Run a client (``run`` returns the distinct records it emitted; ``processes`` it starts)
    and measure it; ``startup``: (wall, CPU) of one bare start of that client's process."""
    log.clear()
    cpu0, t0 = children_cpu(), time.perf_counter()
    records = run()
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    routes = api_calls(log)
    return Measured(records, max(wall - processes * startup[0], 1e-6), max(cpu - processes * startup[1], 1e-6),
                    sum(routes.values()), wall, cpu, routes)


def startup_cost(command: list[str], env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) of one start of a client's process that imports what it reads with and stops;
    the least of three (the machine is shared)."""
    best = (float("inf"), float("inf"))
    for _ in range(3):
        cpu0, t0 = children_cpu(), time.perf_counter()
        subprocess.run(command, capture_output=True, check=False, cwd=ROOT, env=dict(env) if env else None)
        best = min(best, (time.perf_counter() - t0, children_cpu() - cpu0))
    return best


# ------------------------------------------------------------------ billhub, in a child process

def read_with_billhub(config: Path, connection: str, entity_types: tuple[str, ...]) -> int:
    done = subprocess.run([sys.executable, "-m", "bench.peers", "--read", str(config), connection,
                           ",".join(entity_types)], capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"billhub read of {connection} exited {done.returncode}: {done.stderr[-3000:]}")
    return int(json.loads(done.stdout.strip().splitlines()[-1])["records"])


def billhub_startup(system: str) -> int:
    """The child's start-up alone: what ``billhub_read`` imports for one system's connection."""
    import importlib

    import sync.config
    import sync.runtime  # noqa: F401

    importlib.import_module(f"connectors.{system}.connector")  # as connectors.registry does
    return 0


def billhub_read(config: Path, connection: str, entity_types: list[str]) -> int:
    """The child's side: every record of the streams through billhub's connector; prints the count."""
    from sync.config import load_config
    from sync.runtime import Hub

    whole = load_config(config)
    # only the connection read: its connector alone is built (and imported), like a tap's process
    hub = Hub.from_config(dataclasses.replace(whole, connections={connection: whole.connections[connection]}))
    try:
        connector = hub.engine.connectors[connection]
        facts = connector.capabilities().facts
        if facts is not None:
            facts.learn()  # as Ingest.pull does before a stream is read (Salesforce's org facts)
        records = sum(len(page.records) for entity_type in entity_types
                      for page in connector.fetch_all(entity_type))
    finally:
        hub.close()
    print(json.dumps({"records": records}))
    return 0


# ------------------------------------------------------------------ the taps

def tap_for(system: str, emus: Any, workdir: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(SingerTap, discovery config, sync config) for one system's tap against the emulators."""
    from sync.demo import QBO_CLIENT, QBO_REALM, STRIPE_KEY, XERO_CLIENT, XERO_TENANT
    from tests.peers.singer_taps import SingerTap
    from tests.peers.venvs import PEERS as PEER_LIST
    from tests.peers.venvs import PeerVenv, _path, ensure

    name = STREAMS[system][1]
    peer = PEER_LIST[name]
    problem = ensure(peer)
    if problem is not None:
        raise RuntimeError(f"{peer.requirement} could not be installed: {problem}")
    venv = PeerVenv(peer, _path(peer))
    home = workdir / name
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    start = (emus.now - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = PEERS / f"run_{name.replace('-', '_')}.py"
    flag = "--catalog"
    if system == "stripe":
        env["BILLHUB_STRIPE_EMULATOR"] = emus.stripe.base_url
        account = emus.stripe.emulator.account_id
        one = two = {"client_secret": STRIPE_KEY, "account_id": account, "start_date": start}
    elif system == "quickbooks":
        env["BILLHUB_QBO_EMULATOR"] = emus.quickbooks.base_url
        tokens = [f"RT-bench-{uuid.uuid4().hex}" for _ in range(2)]
        requests.post(f"{emus.quickbooks.base_url}/__emulator/seed", json={"refresh_tokens": tokens},
                      timeout=10).raise_for_status()
        one, two = ({"start_date": start, "user_agent": "billhub-bench", "realm_id": QBO_REALM,
                     "client_id": QBO_CLIENT[0], "client_secret": QBO_CLIENT[1], "refresh_token": t}
                    for t in tokens)
    elif system == "xero":
        env["BILLHUB_XERO_EMULATOR"] = emus.xero.base_url
        tokens = [f"rt-bench-{uuid.uuid4().hex}" for _ in range(2)]
        for token in tokens:
            emus.xero.on_loop(lambda token=token: emus.xero.emulator.issue_refresh_token(token, [XERO_TENANT]))
        one, two = ({"client_id": XERO_CLIENT[0], "client_secret": XERO_CLIENT[1], "tenant_id": XERO_TENANT,
                     "refresh_token": t, "start_date": start} for t in tokens)
    else:
        from connectors.salesforce.emulator import (
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            DEFAULT_REFRESH_TOKEN,
        )

        env["BILLHUB_SALESFORCE_EMULATOR"] = emus.salesforce.base_url
        env["REQUESTS_CA_BUNDLE"] = str(emus.sf_cert)
        flag = "--properties"
        one = two = {"refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": DEFAULT_CLIENT_ID,
                     "client_secret": DEFAULT_CLIENT_SECRET, "start_date": start, "api_type": "REST",
                     "select_fields_by_default": True}
    return SingerTap(venv, entry, env, home, catalog_flag=flag), one, two


KEYS = ("id", "Id", "ContactID", "InvoiceID")  # each tap's record id, by system


def read_with_tap(tap: Any, discover: Mapping[str, Any], config: Mapping[str, Any],
                  streams: tuple[str, ...]) -> int:
    """Discovery, then a sync of ``streams``: the distinct objects read."""
    from tests.peers.singer_taps import select

    catalog = select(tap.discover(discover), streams)
    run = tap.sync(config, catalog)
    distinct = 0
    for stream in streams:
        records = run.records.get(stream, [])
        key = next((k for k in KEYS if records and k in records[0]), None)
        distinct += len({str(r.get(key)) for r in records}) if key else len(records)
    return distinct


# ------------------------------------------------------------------ the run

def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:5.1f}x" if theirs and ours == ours and theirs == theirs else "   - "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--invoices", type=int, default=1500)
    parser.add_argument("--systems", default="stripe,quickbooks,xero,salesforce")
    parser.add_argument("--read", nargs=3, metavar=("CONFIG", "CONNECTION", "TYPES"), help=argparse.SUPPRESS)
    parser.add_argument("--startup", metavar="SYSTEM", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        return billhub_read(Path(args.read[0]), args.read[1], args.read[2].split(","))
    if args.startup:
        return billhub_startup(args.startup)

    from bench.wire import start_emulators
    from state.crypto import generate_key
    from sync.config import load_config
    from sync.demo import seed_company
    from sync.runtime import Hub
    systems = [s for s in args.systems.split(",") if s]
    print(f"peer bench: {args.customers:,} customers, {args.invoices:,} invoices seeded; systems {systems}")
    rows: list[tuple[str, str, Measured, Measured]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="billhub-bench-peers-") as tmp:
        workdir = Path(tmp)
        emus, logs = start_emulators(workdir)
        try:
            seed_company(emus, customers=args.customers, invoices=args.invoices)
            config = workdir / "hub.toml"
            config.write_text(emus.config_toml(f"sqlite:///{workdir}/hub.db", generate_key()))
            hub = Hub.from_config(load_config(config))
            try:
                hub.store.init()
                t0 = time.perf_counter()
                summary = hub.engine.sync()
                print(f"billhub's initial sync (fills the ledgers and Salesforce): {time.perf_counter() - t0:.0f} s,"
                      f" errors {len(summary.errors)}")
            finally:
                hub.close()
            for system in systems:
                types, tap_name, tap_streams = STREAMS[system]
                log = logs[system]
                try:
                    tap, discover_config, sync_config = tap_for(system, emus, workdir)
                    ours_start = startup_cost([sys.executable, "-m", "bench.peers", "--startup", system],
                                              {**os.environ, "PYTHONPATH": str(ROOT)})
                    theirs_start = startup_cost([str(tap.venv.python), str(tap.entry), "--help"], tap.env)
                    ours = measure(log, partial(read_with_billhub, config, system, types), ours_start, 1)
                    theirs = measure(log, partial(read_with_tap, tap, discover_config, sync_config, tap_streams),
                                     theirs_start, 2)
                except Exception as exc:  # one tap that cannot run is a row that says why
                    failures.append(f"{system} / {tap_name}: {type(exc).__name__}: {str(exc)[-600:]}")
                    print(f"  {system}: FAILED ({failures[-1][:200]})")
                    continue
                rows.append((system, tap_name, ours, theirs))
                for who, m, start in (("billhub", ours, ours_start), (tap_name, theirs, theirs_start)):
                    print(f"  {system:<11} {who:<15} {m.records:>7,} records, {m.calls:>5} calls;"
                          f" as run {m.whole_wall:6.1f} s wall {m.whole_cpu:6.2f} s CPU; start-up"
                          f" {start[0]:4.1f} s / {start[1]:4.2f} s CPU per process; reading {m.wall:6.1f} s"
                          f" wall {m.cpu:6.2f} s CPU")
                    print(f"  {'':<27} calls: {', '.join(f'{r} {n}' for r, n in sorted(m.routes.items()))}")
        finally:
            emus.stop()
    print("\n| system (streams) | client | records | API calls | records/s | CPU ms/record |"
          " API calls/record | as run: wall s, CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for system, tap_name, ours, theirs in rows:
        streams = ", ".join(STREAMS[system][2])
        for who, m in (("billhub", ours), (tap_name, theirs)):
            print(f"| {system} ({streams}) | {who} | {m.records:,} | {m.calls:,} | {m.per_second():,.0f} |"
                  f" {m.cpu_ms():.3f} | {m.calls_per():.4f} | {m.whole_wall:.1f}, {m.whole_cpu:.2f} |")
    print("\n| system | records/s billhub / tap | CPU per record tap / billhub | API calls per record tap / billhub |"
          " billhub ahead |")
    print("|---|---|---|---|---|")
    for system, tap_name, ours, theirs in rows:
        speed = ours.per_second() / theirs.per_second() if theirs.per_second() else float("inf")
        cpu = theirs.cpu_ms() / ours.cpu_ms() if ours.cpu_ms() else float("inf")
        calls = theirs.calls_per() / ours.calls_per() if ours.calls_per() else float("inf")
        ahead = "yes" if min(speed, cpu, calls) > 1 else "NO"
        print(f"| {system} vs {tap_name} | {speed:.1f}x | {cpu:.1f}x | {calls:.1f}x | {ahead} |")
    for failure in failures:
        print(f"- not measured: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
