"""Chaos harness: several ``hub run`` processes on one PostgreSQL schema against the four
emulators with faults injected in each, one process SIGKILLed and restarted whenever the
outbox's ``done`` count passes the next threshold. Used by ``test_three_processes.py`` (CI
scale) and ``bench/chaos.py`` (10x).

Workload: customers, invoices (most paid: one payment each), refunds and usage events. Part of
it exists before the processes start (read by the change feeds), the rest arrives while they
run: Stripe delivers signed webhooks to every process (the inbox keeps each event once) and the
change feeds read the same objects again; usage events are POSTed to ``/api/usage``.

Checks (``verify``) read each emulator's own state: per system no duplicate and no missing
record, every amount equal to the minor unit; usage counted once. ``StreamProbe`` counts, at the
emulators, how many change-feed reads of one (connection, stream) were in flight at once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import requests
from aiohttp import web
from sqlalchemy import text

from connectors.emulation import Emulator, follow_wall, free_port
from connectors.quickbooks.emulator import QuickBooksEmulator
from connectors.xero.emulator import Limits
from mapping.money import Money
from state.crypto import generate_key
from state.store import StateStore
from sync.config import load_config
from sync.demo import QBO_REALM, Emulators, seed_company, start_emulators
from sync.metrics import Metrics
from sync.runtime import Hub
from sync.scheduler import Jobs
from tests.scale.helpers import ROOT

ADMIN_TOKEN = "adm_chaos_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
METER_EVENT = "api_calls"
T = TypeVar("T")
SEED_CHUNK = 50  # arriving objects created per turn of the Stripe emulator's loop
LEASE_SECONDS = 300  # the engine's outbox lease (Engine -> Tx.claim_outbox default)


@dataclass(frozen=True)
class Scale:
    customers: int
    invoices: int
    refunds: int
    usage: int
    processes: int = 3
    kills: int = 6

    @classmethod
    def of(cls, factor: float, **overrides: int) -> Scale:
        """``factor`` 1.0 is issue 10's test workload (2,000 customers, 5,000 invoices …)."""
        base = cls(customers=max(20, int(2000 * factor)), invoices=max(40, int(5000 * factor)),
                   refunds=max(5, int(500 * factor)), usage=max(10, int(2000 * factor)))
        return cls(**{**base.__dict__, **overrides})


# --------------------------------------------------------------------------- emulators


class StreamProbe:
    """Counts change-feed reads in flight per (emulator, account, stream) at the emulator.

    A change-feed read is a request only the engine's stream reads make: Stripe ``GET
    /v1/events`` (keyed by its event types), QuickBooks ``GET …/cdc`` (by entities) and Xero
    collection GETs with ``If-Modified-Since`` (by tenant and collection). One process reads a
    stream at a time, so the in-flight count of one key must never exceed 1.
    """

    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        # Requests in flight when a process was SIGKILLed may be that process's last read, still
        # held by the emulator (e.g. in a latency spike) after its lock died with its connection:
        # a ghost, not a second reader. They stop counting at the kill.
        self._live: dict[str, dict[int, Any]] = {}  # key -> {request token: its client transport}
        self._lock = threading.Lock()

    def forget_in_flight(self) -> None:
        """Called right after a SIGKILL: what is in flight now no longer counts as a reader."""
        with self._lock:
            for tokens in self._live.values():
                tokens.clear()

    @staticmethod
    def key(system: str, request: web.Request) -> str | None:
        if request.method != "GET":
            return None
        path = request.path
        if system == "stripe" and path == "/v1/events":
            types = sorted(v for k, v in request.query.items() if k.startswith("types"))
            return f"stripe {types[0] if types else '*'}"
        if system == "quickbooks" and path.endswith("/cdc"):
            return f"quickbooks {path.split('/')[3]} {request.query.get('entities', '')}"
        if system == "xero" and "If-Modified-Since" in request.headers and path.startswith("/api.xro/2.0/"):
            return f"xero {request.headers.get('xero-tenant-id', '')} {path.rsplit('/', 1)[-1]}"
        return None

    def attach(self, emulator: Emulator) -> None:
        system = emulator.system

        @web.middleware
        async def probe(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
            key = self.key(system, request)
            if key is None:
                passed: web.StreamResponse = await handler(request)
                return passed
            token = id(request)
            with self._lock:
                live = self._live.setdefault(key, {})
                live[token] = request.transport
                self.in_flight[key] += 1
                self.reads[key] += 1
                # A reader is a request whose client is still connected: one the client gave up on
                # (killed, or timed out and released its lock) may still sit in an injected latency
                # spike here, and is not a second reader.
                readers = sum(1 for transport in live.values()
                              if transport is not None and not transport.is_closing())
                self.max_in_flight[key] = max(self.max_in_flight[key], readers)
            try:
                response: web.StreamResponse = await handler(request)
                return response
            finally:
                with self._lock:
                    self.in_flight[key] -= 1
                    live.pop(token, None)

        emulator.app.middlewares.insert(0, probe)  # outermost: counts faulted answers too


def start_probed_emulators(workdir: Path, probe: StreamProbe) -> Emulators:
    """``sync.demo.start_emulators`` with limits for three processes and the probe in front."""
    def prepare(emulator: Emulator) -> None:
        probe.attach(emulator)
        if isinstance(emulator, QuickBooksEmulator):
            emulator.throttle.concurrent = 30  # three processes, each within Intuit's 10

    return start_emulators(workdir, stripe_rate=2000.0, qbo_limits=(20000, 2000),
                           xero_limits=Limits(minute=6000, day=10**7, concurrent=15, app_minute=10**6),
                           prepare=prepare)


def hub_config(emus: Emulators, state_url: str, *, sync_interval: float = 5.0,
               side_by_side: bool = False) -> str:
    """The emulators' config with waits scaled down like their limits, and quick schedules;
    ``side_by_side``: the daemon's lanes (inbox, outbox, change feeds) each on its own thread
    (otherwise the config's default holds)."""
    text = emus.config_toml(state_url, generate_key(), admin_token=ADMIN_TOKEN)
    for table in ("stripe", "quickbooks", "xero", "salesforce"):
        text = text.replace(f"[connections.{table}]\n",
                            f"[connections.{table}]\nmax_attempts = 4\nretry_base_seconds = 0.05\n"
                            "retry_max_seconds = 1.0\n")
    text = text.replace("[connections.quickbooks]\n", "[connections.quickbooks]\nretry_after_seconds = 1.0\n")
    text = text.replace("rate_limit_per_second = 400.0", "rate_limit_per_second = 1500.0")
    text = text.replace("rate_limit_per_minute = 6000.0", "rate_limit_per_minute = 60000.0")
    text = text.replace("batch_per_minute = 600.0", "batch_per_minute = 1800.0")
    return text.replace("[diff]", f"""[flows]
max_attempts = 40
backoff_seconds = 0.2

[schedules]
sync_interval_seconds = {sync_interval}
outbox_interval_seconds = 0.5
inbox_interval_seconds = 0.5
token_refresh_seconds = 60
{"side_by_side_lanes = true" if side_by_side else ""}

[server]
host = "127.0.0.1"
workers = 4

[diff]""")


# --------------------------------------------------------------------------- processes


class Daemon:
    """One ``hub run`` subprocess, as tests/daemon/test_daemon_process.py starts it."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.out = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sync.daemon", "--config", str(config),
                                      "--port", str(port)], cwd=ROOT, stdout=self.out, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def sigkill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.out.close()

    def sigterm(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self.out.closed:
            self.out.close()
        return int(self.proc.returncode or 0)


# --------------------------------------------------------------------------- the run


@dataclass
class Outcome:
    scale: Scale
    records: dict[str, int] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts: int = 0
    recovered_leases: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    diff_findings: list[dict[str, Any]] = field(default_factory=list)
    max_concurrent_reads: dict[str, int] = field(default_factory=dict)
    stream_reads: int = 0
    usage_posted: int = 0
    webhook_events: int = 0  # Stripe events the inbox kept (each once, from three deliveries)
    seconds: float = 0.0
    storm_seconds: float = 0.0
    dead: int = 0
    dead_reasons: list[str] = field(default_factory=list)
    hub_findings: list[str] = field(default_factory=list)  # open before the final diff: what the hub held
    # Outbox rows not done after the recovery passes, grouped: "target type status: last error xN".
    unfinished: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return len(self.problems.get(kind, []))

    def summary(self) -> dict[str, Any]:
        return {"records": self.records, "faults_injected": dict(self.faults), "kills": self.kills,
                "restarts": self.restarts, "recovered_after_lease": self.recovered_leases,
                "duplicates": self.count("duplicate"), "missing": self.count("missing"),
                "mismatches": self.count("mismatch"), "dead_letters": self.dead,
                "diff_findings": len(self.diff_findings), "stream_reads_probed": self.stream_reads,
                "max_concurrent_reads_per_stream": max(self.max_concurrent_reads.values(), default=0),
                "webhook_events_stored": self.webhook_events, "unfinished_writes": len(self.unfinished),
                "storm_seconds": round(self.storm_seconds, 1), "seconds": round(self.seconds, 1)}


class Chaos:
    def __init__(self, workdir: Path, state_url: str, scale: Scale, *, seed: int = 10,
                 log: Callable[[str], None] = lambda _m: None, side_by_side: bool = False) -> None:
        self.workdir, self.state_url, self.scale = workdir, state_url, scale
        self.rng = random.Random(seed)
        self.log = log
        self.probe = StreamProbe()
        self.emus = start_probed_emulators(workdir, self.probe)
        self.config = workdir / "hub.toml"
        self.config.write_text(hub_config(self.emus, state_url, side_by_side=side_by_side), encoding="utf-8")
        self.store = StateStore(state_url)
        self.daemons: list[Daemon] = []
        self.ports = [free_port() for _ in range(scale.processes)]
        self.outcome = Outcome(scale)
        self.customer_ids: list[str] = []
        self.usage_values: dict[str, Decimal] = {}
        self.clock_stop = threading.Event()
        # Kept-alive connections for the usage posts: a new one per post was a third of the
        # harness process at 10x (it shares its interpreter with the four emulators).
        self.http = requests.Session()

    # -- workload -------------------------------------------------------------------------

    @property
    def stripe(self) -> Any:
        return self.emus.stripe.emulator

    def seed_before(self) -> None:
        """The part of the company that exists before the hub starts (read by change feeds)."""
        s = self.scale
        seed_company(self.emus, customers=s.customers // 2, invoices=s.invoices // 2, seed=self.rng.randrange(10**6))
        self.stripe.seed_objects({"meters": [{"display_name": "API calls", "event_name": METER_EVENT,
                                              "default_aggregation": {"formula": "sum"}}]})
        self.customer_ids = [c for c in self.stripe.table("customer")]

    def on_stripe_loop(self, fn: Callable[[], T]) -> T:
        return self.emus.stripe.on_loop(fn)

    def arrive(self, customers: int, invoices: int, refunds: int) -> None:
        """New Stripe objects while the processes run: webhooks to every process + change feeds.
        Created SEED_CHUNK at a time on the emulator's loop, so it goes on answering in between."""
        stripe = self.stripe
        start = self.on_stripe_loop(lambda: len(stripe.table("customer")))
        specs = [{"ref": f"n{i}", "name": f"Arrival {start + i:06d}", "email": f"arrival{start + i:06d}@example.com",
                  "address": {"country": "US", "city": "Boston"}} for i in range(customers)]
        for chunk in _chunks(specs):
            created = self.on_stripe_loop(lambda c=chunk: stripe.seed_objects({"customers": c}))  # type: ignore[misc]
            self.customer_ids.extend(created["created"].get("customers", []))

        def choices() -> tuple[list[str], list[str]]:
            usd = [c for c, v in stripe.table("customer").items() if not v.get("_deleted")]
            prices = [p for p, v in stripe.table("price").items() if v.get("currency") == "usd" and not v.get("recurring")]
            return usd, prices
        usd, prices = self.on_stripe_loop(choices)
        invoice_specs = []
        for _ in range(invoices):
            invoice_specs.append({"customer": self.rng.choice(usd), "currency": "usd",
                                  "status": "paid" if self.rng.random() < 0.9 else "open",
                                  "items": [{"price": self.rng.choice(prices), "quantity": self.rng.choice([1, 2, 3])}]})
        for chunk in _chunks(invoice_specs):
            self.on_stripe_loop(lambda c=chunk: stripe.seed_objects({"invoices": c}))  # type: ignore[misc]
        if refunds:
            def refundable() -> list[tuple[str, int]]:
                refunded = {r.get("payment_intent") for r in stripe.table("refund").values()}
                return [(pi, int(v["amount"])) for pi, v in stripe.table("payment_intent").items()
                        if v.get("status") == "succeeded" and pi not in refunded]
            candidates = self.on_stripe_loop(refundable)
            chosen = self.rng.sample(candidates, k=min(refunds, len(candidates)))
            refund_specs = [{"payment_intent": pi, "amount": max(1, amount // 3), "reason": "requested_by_customer"}
                            for pi, amount in chosen]
            for chunk in _chunks(refund_specs):
                self.on_stripe_loop(lambda c=chunk: stripe.seed_objects({"refunds": c}))  # type: ignore[misc]

    def post_usage(self, count: int) -> int:
        """Usage events to ``/api/usage`` of a random live process (resent on failure)."""
        posted = 0
        base = self.outcome.usage_posted
        for i in range(count):
            event: dict[str, Any] = {"event_id": f"use-{base + i:07d}", "event_name": METER_EVENT,
                     "customer": self.rng.choice(self.customer_ids), "value": self.rng.randint(1, 50)}
            for _attempt in range(40):
                target = self.rng.choice(self.daemons)
                try:
                    r = self.http.post(target.url + "/api/usage", json=event, timeout=5,
                                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                    if r.status_code in (200, 202):
                        posted += 1
                        self.usage_values[event["event_id"]] = Decimal(event["value"])
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.05)  # a process was just killed: another one takes it
            else:
                raise RuntimeError(f"no process accepted usage event {event['event_id']}")
        self.outcome.usage_posted += posted
        return posted

    # -- faults ----------------------------------------------------------------------------

    def storm(self) -> None:
        """10% 5xx, a 429 burst, the next write and then 3% of writes applied but answered 500,
        and sometimes a latency spike, in each. (The next write makes sure each storm has one at
        CI scale, where writes go in a few dozen batch requests. Failing the next 3% of the
        expected writes in a row instead, as before, failed 7,500 at 10x, token refreshes
        included, so no connection could get a token.)"""
        for running in self.emus.all.values():
            running.emulator.set_faults(error_rate=0.10, burst_429=5, retry_after=1,
                                        apply_then_fail=1, apply_then_fail_rate=0.03,
                                        latency_ms=self.rng.choice([0, 0, 0, 120]),
                                        seed=self.rng.randrange(10**6))

    def calm(self) -> None:
        for running in self.emus.all.values():
            self.outcome.faults.update(running.emulator.stats.faults_injected)
            running.emulator.stats.faults_injected.clear()
            running.emulator.set_faults()

    # -- processes -------------------------------------------------------------------------

    def done(self) -> int:
        try:
            with self.store.transaction() as tx:
                return tx.outbox_depth().get("done", 0)
        except Exception:  # the first process has not created the schema yet
            return 0

    def register_webhooks(self) -> None:
        for port in self.ports:  # every process gets every Stripe webhook; the inbox keeps one
            requests.post(f"{self.emus.stripe.base_url}/v1/webhook_endpoints", timeout=10,
                          headers={"Authorization": "Bearer sk_test_billhub_demo"},
                          data={"url": f"http://127.0.0.1:{port}/webhooks/stripe",
                                "enabled_events[]": "*"}).raise_for_status()

    def start_processes(self) -> None:
        for i, port in enumerate(self.ports):
            self.daemons.append(Daemon(self.config, port, self.workdir / f"daemon{i}.log"))
        for d in self.daemons:
            _wait(f"process on port {d.port}", d.ready, 90)

    def kill_and_restart(self) -> None:
        index = self.outcome.kills % len(self.daemons)
        victim = self.daemons[index]
        victim.sigkill()
        self.probe.forget_in_flight()
        self.outcome.kills += 1
        self.log(f"SIGKILL process {index} at {self.done()} done writes")
        self.daemons[index] = Daemon(self.config, victim.port, victim.log)
        _wait("the restarted process", self.daemons[index].ready, 90)
        self.outcome.restarts += 1

    # -- the run ---------------------------------------------------------------------------

    def run(self, timeout: float = 1800) -> Outcome:
        started = time.monotonic()
        deadline = started + timeout
        s = self.scale
        self.seed_before()
        # From here Stripe's time passes as real Stripe's does. Pinned, every arriving object
        # and event had the same `created` second: each change-feed pass re-read every event of
        # the run, and its cursor remembered each one's id (at 10x, tens of thousands). The other
        # emulators tick their clocks on every write.
        threading.Thread(target=follow_wall, args=([self.stripe.clock], self.clock_stop), daemon=True).start()
        self.store.init()
        self.register_webhooks()
        writes = 2 * s.invoices + 2 * s.customers + 3 * s.invoices + 2 * s.refunds  # rough, per all systems
        self.storm()
        self.start_processes()
        storm_started = time.monotonic()
        chunks = max(1, s.kills)
        rest = (s.customers - s.customers // 2, s.invoices - s.invoices // 2, s.refunds)
        expected = max(1, writes)
        thresholds = [int(expected * (k + 1) / (s.kills + 2)) for k in range(s.kills)]
        for k, threshold in enumerate(thresholds):
            before = self.done()
            self.arrive(rest[0] // chunks, rest[1] // chunks, rest[2] // chunks)
            self.post_usage(s.usage // chunks)
            # The threshold is an estimate: when the processes have written something since the
            # last kill and are left with only rows a killed process holds (they come back after
            # the 5-minute lease), the next kill need not wait for the lease.
            _wait(f"{threshold} done writes",
                  lambda t=threshold, b=before: self.done() >= t or  # type: ignore[misc]
                  (self.done() > b and self._drained_but_leases()),
                  max(1.0, deadline - time.monotonic()))
            self.kill_and_restart()
            if k % 2 == 1:
                self.storm()  # a new burst, a new spike
        leftover = (rest[0] - rest[0] // chunks * chunks, rest[1] - rest[1] // chunks * chunks,
                    rest[2] - rest[2] // chunks * chunks)
        self.arrive(*leftover)
        self.post_usage(s.usage - s.usage // chunks * chunks)
        self.calm()  # the storm passes
        self.outcome.storm_seconds = time.monotonic() - storm_started
        self.log(f"storm over after {time.monotonic() - storm_started:.1f}s; waiting for the processes to drain")
        _wait("the processes to drain the queues", self._drained_but_leases, max(1.0, deadline - time.monotonic()))
        self.log(f"drained at {time.monotonic() - started:.1f}s; {self.done()} done writes")
        for d in self.daemons:
            d.sigterm()
        self.recover()
        self.log(f"recovered at {time.monotonic() - started:.1f}s")
        self.verify()
        self.outcome.seconds = time.monotonic() - started
        return self.outcome

    def _drained_but_leases(self) -> bool:
        """Nothing left but rows claimed by killed processes (they wait for their lease)."""
        with self.store.transaction() as tx:
            if tx.count_inbox("pending"):
                return False
            # Items waiting for a reference another (killed) process had claimed count as drained.
            workable = tx.conn.execute(text(
                "SELECT count(*) FROM outbox WHERE status = 'pending' "
                "AND (last_error IS NULL OR last_error NOT LIKE 'waiting for%')")).scalar_one()
        return not workable

    def recover(self) -> None:
        """One more process whose clock is past the lease: rows claimed by the killed processes
        come back to it (the lease is what returns them; waiting 5 minutes of wall time for it
        would prove nothing more). Then passes until one changes nothing."""
        with self.store.transaction() as tx:
            stuck = tx.outbox_depth().get("in_flight", 0)
            self.outcome.webhook_events = tx.conn.execute(
                text("SELECT count(*) FROM inbox WHERE system = 'stripe'")).scalar_one()
        self.outcome.recovered_leases = stuck
        later = timedelta(seconds=LEASE_SECONDS + 60)
        config = load_config(self.config)
        hub = Hub.from_config(config)
        hub.store.clock = lambda: datetime.now(UTC) + later
        hub.engine.clock = hub.store.clock
        executor = ThreadPoolExecutor(max_workers=1)
        try:
            jobs = Jobs(hub, executor, Metrics(hub.store, hub.connectors, hub.store.clock, lambda: {}),
                        clock=hub.store.clock, inbox_batch=500)
            while jobs.process_inbox() != "empty":
                pass
            for _ in range(10):
                summary = hub.engine.sync()
                with hub.store.transaction() as tx:
                    depth = tx.outbox_depth()
                if summary.totals().written == 0 and not depth.get("pending") and not depth.get("in_flight"):
                    break
            self.outcome.dead = depth.get("dead", 0)
            with hub.store.transaction() as tx:
                self.outcome.dead_reasons = [f"{i.target} {i.entity_type}: {i.last_error}"
                                             for i in tx.list_outbox("dead", limit=50)]
                self.outcome.unfinished = [
                    f"{r[0]} {r[1]} {r[2]}: {r[3] or '-'} x{r[4]}" for r in tx.conn.execute(text(
                        "SELECT target, entity_type, status, left(last_error, 160), count(*) FROM outbox "
                        "WHERE status <> 'done' GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 30"))]
                self.outcome.hub_findings = [f"{f.kind} {f.system} {f.entity}: {f.detail}"
                                             for f in tx.list_findings(status="open", limit=50)]
            report = hub.differ.run(["customer", "invoice", "payment", "refund"])
            self.outcome.diff_findings = [
                {k: f.get(k) for k in ("kind", "entity", "system", "detail")} for f in report.findings]
        finally:
            executor.shutdown()
            hub.close()

    def close(self) -> None:
        self.clock_stop.set()
        self.http.close()
        for d in self.daemons:
            if d.proc.poll() is None:
                d.sigterm()
        self.store.dispose()
        self.emus.stop()

    # -- checks -----------------------------------------------------------------------------

    def verify(self) -> None:
        out, problems = self.outcome, self.outcome.problems
        stripe = self.stripe
        customers = {c: v for c, v in stripe.table("customer").items() if not v.get("_deleted")}
        live = {i: v for i, v in stripe.table("invoice").items() if v["status"] in ("open", "paid")}
        by_number = {v["number"]: v for v in live.values()}
        paid = {v["number"]: v for v in live.values() if v["status"] == "paid"}
        refunds = list(stripe.table("refund").values())
        invoice_of_pi = {v["payment"].get("payment_intent"): v["invoice"]
                         for v in stripe.table("invoice_payment").values()}
        out.records = {"customers": len(customers), "invoices": len(live), "payments": len(paid),
                       "refunds": len(refunds), "usage_events": out.usage_posted}

        def tally(system: str, kind: str, got: Counter[Any], wanted: set[Any]) -> None:
            problems["duplicate"] += [f"{system} {kind} {k} x{n}" for k, n in got.items() if n > 1 and k in wanted]
            problems["missing"] += [f"{system} {kind} {k}" for k in wanted - set(got)]
            problems["duplicate"] += [f"{system} {kind} {k} (unknown)" for k in set(got) - wanted]

        emails = {v.get("email") for v in customers.values()}
        refund_amounts = Counter((v["currency"].upper(), int(v["amount"])) for v in refunds)

        qbo = self.emus.quickbooks.emulator.realm(QBO_REALM)  # type: ignore[attr-defined]
        tally("quickbooks", "customer", Counter(c.get("PrimaryEmailAddr", {}).get("Address")
                                                for c in qbo.table("Customer").values()), emails)
        tally("quickbooks", "invoice", Counter(i["DocNumber"] for i in qbo.table("Invoice").values()), set(by_number))
        for inv in qbo.table("Invoice").values():
            src = by_number.get(inv["DocNumber"])
            if src is not None and _minor(inv["TotalAmt"], src["currency"]) != src["total"]:
                problems["mismatch"].append(f"quickbooks invoice {inv['DocNumber']} {inv['TotalAmt']} != {src['total']}")
        qbo_invoice_numbers = {i["Id"]: i["DocNumber"] for i in qbo.table("Invoice").values()}
        qbo_payments: Counter[Any] = Counter()
        for p in qbo.table("Payment").values():
            linked = [qbo_invoice_numbers.get(str(t.get("TxnId"))) for line in p.get("Line", [])
                      for t in line.get("LinkedTxn", [])]
            number = linked[0] if linked else None
            qbo_payments[number] += 1
            src = paid.get(number)
            if src is not None and _minor(p["TotalAmt"], src["currency"]) != src["amount_paid"]:
                problems["mismatch"].append(f"quickbooks payment for {number}: {p['TotalAmt']}")
        tally("quickbooks", "payment", qbo_payments, set(paid))
        qbo_refunds = Counter((str((r.get("CurrencyRef") or {}).get("value") or "USD").upper(),
                               _minor(r["TotalAmt"], str((r.get("CurrencyRef") or {}).get("value") or "USD")))
                              for r in qbo.table("RefundReceipt").values())
        _compare_amounts("quickbooks", qbo_refunds, refund_amounts, problems)

        xero = self.emus.xero.emulator.tenant  # type: ignore[attr-defined]
        tally("xero", "contact", Counter(c.get("EmailAddress") for c in xero.table("Contacts").values()), emails)
        invoices = [i for i in xero.table("Invoices").values() if i.get("Type") == "ACCREC"]
        tally("xero", "invoice", Counter(i["InvoiceNumber"] for i in invoices), set(by_number))
        for inv in invoices:
            src = by_number.get(inv["InvoiceNumber"])
            if src is not None and _minor(inv["Total"], src["currency"]) != src["total"]:
                problems["mismatch"].append(f"xero invoice {inv['InvoiceNumber']} {inv['Total']} != {src['total']}")
        xero_numbers = {i["InvoiceID"]: i["InvoiceNumber"] for i in invoices}
        xero_payments: Counter[Any] = Counter()
        for p in xero.table("Payments").values():
            if p.get("Status") == "DELETED" or not p.get("Invoice"):
                continue
            number = xero_numbers.get(p["Invoice"].get("InvoiceID"))
            xero_payments[number] += 1
            src = paid.get(number)
            if src is not None and _minor(p["Amount"], src["currency"]) != src["amount_paid"]:
                problems["mismatch"].append(f"xero payment for {number}: {p['Amount']}")
        tally("xero", "payment", xero_payments, set(paid))
        xero_refunds = Counter((str(c.get("CurrencyCode") or "USD").upper(),
                                _minor(c["Total"], str(c.get("CurrencyCode") or "USD")))
                               for c in xero.table("CreditNotes").values() if c.get("Status") != "DELETED")
        _compare_amounts("xero", xero_refunds, refund_amounts, problems)

        sf = self.emus.salesforce.emulator
        billing = Counter(r.get("Hub_Id__c") for r in sf.records("Billing_Invoice__c"))  # type: ignore[attr-defined]
        if billing and max(billing.values()) > 1:
            problems["duplicate"].append("salesforce Billing_Invoice__c")
        if len(billing) < len(by_number):
            problems["missing"].append(f"salesforce Billing_Invoice__c {len(billing)} < {len(by_number)}")
        accounts = Counter(r.get("Hub_Id__c") for r in sf.records("Account") if r.get("Hub_Id__c"))  # type: ignore[attr-defined]
        if accounts and max(accounts.values()) > 1:
            problems["duplicate"].append("salesforce Account")

        meter = stripe.meter_events
        tally("stripe", "meter_event", Counter(list(meter)), set(self.usage_values))
        for identifier, event in meter.items():
            if identifier in self.usage_values and Decimal(event["payload"]["value"]) != self.usage_values[identifier]:
                problems["mismatch"].append(f"stripe meter event {identifier}: {event['payload']['value']}")
        del invoice_of_pi
        out.max_concurrent_reads = dict(self.probe.max_in_flight)
        out.stream_reads = sum(self.probe.reads.values())


def _compare_amounts(system: str, got: Counter[Any], wanted: Counter[Any], problems: dict[str, list[str]]) -> None:
    """Refunds carry no shared number: compare the multisets of (currency, minor amount)."""
    extra, short = got - wanted, wanted - got
    problems["duplicate"] += [f"{system} refund {k} x{n} extra" for k, n in extra.items()]
    problems["missing"] += [f"{system} refund {k} x{n}" for k, n in short.items()]


def _chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), SEED_CHUNK):
        yield items[start:start + SEED_CHUNK]


def _minor(value: Any, currency: str) -> int:
    return Money.from_decimal(Decimal(str(value)), currency.upper()).minor


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll a condition (not a timing assumption); fail naming ``what`` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
