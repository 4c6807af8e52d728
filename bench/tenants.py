"""Many tenants: C connections (C/4 companies x Stripe, QuickBooks, Xero, Salesforce, each company
its own four emulators with the vendors' real per-tenant rate limits) served by W worker
processes on one PostgreSQL, today's design (W embedded ``hub run``s, each scheduling every job
of every connection) beside ``hub run --engine procrastinate`` (one queue, each job once).

    python -m bench.tenants --connections 50,100,200 --workers 4
    python -m bench.tenants --connections 20,40 --workers 4 --interval 30 --intervals 2 --engines procrastinate

Each (engine, size) gets a database of its own (so PostgreSQL's counters are this run's only),
the workers start, one interval warms up, then ``--intervals`` intervals are measured:

* every connection synced within its interval: per connection the longest gap between two
  completed reads of its stream (the window's start counts as one end), as a multiple of the
  interval — 1.0 is on time, the worst connection is printed;
* per-tenant fairness: a company's staleness is its worst connection's; the worst company's
  over the median company's (goal <= 2);
* cost per connection per interval: jobs run (every kind; a read another process already did is
  still a job run), reads that really went to the vendor, database transactions and rows read
  (``pg_stat_database`` of the run's database), worker CPU and PostgreSQL backend CPU seconds —
  flat as connections grow is the goal, and what 10,000 connections would cost follows from it;
* 429 share per tenant: the company's answered 429s over its requests (goal <= 1%).

The workload is the scheduling path: only the ``customers`` flow, nothing seeded, so every job
is an incremental read that finds nothing (the per-connection overhead, which is what grows
with tenants); the hub's canonical model is one company's, so tenants here share a hub.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from connectors.emulation import free_port
from state import job_queue
from state.crypto import generate_key
from state.store import StateStore
from sync.demo import Emulators, start_emulators

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("HUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SYSTEMS = ("stripe", "quickbooks", "xero", "salesforce")
# The hub's own limiter set to each vendor's per-tenant limit (the emulators enforce the same):
# Stripe 25 requests/s, QuickBooks 500/min per realm, Xero 60/min per organisation.
REAL_LIMITS = {"rate_limit_per_second = 400.0": "rate_limit_per_second = 25.0",
               "rate_limit_per_minute = 6000.0\nbatch_per_minute = 600.0":
                   "rate_limit_per_minute = 500.0\nbatch_per_minute = 40.0",
               "rate_limit_per_minute = 6000.0\ntax_types": "rate_limit_per_minute = 60.0\ntax_types"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- tenants

def company_sections(emus: Emulators, index: int) -> str:
    """The company's four ``[connections.*]`` tables, named ``<system>_<index>``."""
    text = emus.config_toml("sqlite:///unused", "unused")
    body = text[text.index("[connections.stripe]"):text.index("[diff]")]
    for plain, real in REAL_LIMITS.items():
        body = body.replace(plain, real)
    return re.sub(r"^\[connections\.(\w+)\]", lambda m: f"[connections.{m.group(1)}_{index:03d}]", body,
                  flags=re.MULTILINE)


def write_config(path: Path, url: str, companies: list[Emulators], interval: int) -> None:
    parts = [f'[state]\nurl = "{url}"\nencryption_key = "{generate_key()}"\n',
             '[server]\nhost = "127.0.0.1"\nworkers = 4\n',
             '[flows]\nenabled = ["customers"]\n',
             f"[schedules]\nsync_interval_seconds = {interval}\noutbox_interval_seconds = 15\n"
             "inbox_interval_seconds = 2\ntoken_refresh_seconds = 600\n"]
    parts += [company_sections(emus, i) for i, emus in enumerate(companies)]
    path.write_text("\n".join(parts), encoding="utf-8")


def tenant_requests(emus: Emulators) -> tuple[int, int]:
    """(requests answered, of them 429) across a company's four emulators."""
    total = limited = 0
    for running in emus.all.values():
        answered = list(running.emulator.stats.requests)
        total += len(answered)
        limited += sum(1 for r in answered if r["status"] == 429)
    return total, limited


# --------------------------------------------------------------------------- database

@contextmanager
def bench_database() -> Any:
    """A new database for one run (its pg_stat_database row is this run's alone), dropped after."""
    name = f"billhub_tenants_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield name, f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def db_counters(name: str) -> dict[str, int]:
    with psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback, tup_returned + tup_fetched, "
                           "tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = %s",
                           (name,)).fetchone()
    assert row is not None
    return {"transactions": int(row[0]), "rows_read": int(row[1]), "rows_written": int(row[2])}


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class BackendCpu:
    """CPU of the PostgreSQL backends serving the run's database (pooled: long-lived)."""

    name: str
    seen: dict[int, float] = field(default_factory=dict)  # pid -> the most CPU seen
    base: dict[int, float] = field(default_factory=dict)  # pid -> CPU at the window's start

    def sample(self) -> None:
        with psycopg.connect(PG_ADMIN) as conn:
            pids = [int(r[0]) for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                    (self.name,))]
        for pid in pids:
            self.seen[pid] = max(self.seen.get(pid, 0.0), cpu_seconds(pid))

    def start_window(self) -> None:
        self.sample()
        self.base = dict(self.seen)

    def used(self) -> float:
        self.sample()
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())


# --------------------------------------------------------------------------- one run

def start_workers(engine: str, config: Path, workers: int, logs: Path) -> list[tuple[subprocess.Popen[bytes], int]]:
    procs = []
    for i in range(workers):
        out = (logs / f"worker-{i}.log").open("ab")
        port = free_port()
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "sync.daemon", "--config", str(config), "--port", str(port),
             "--engine", engine, "--log-level", "warning"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}), port))
    return procs


JOBS_LINE = re.compile(r'^billhub_jobs_total\{job="(\w+)",outcome="(\w+)"\} ([0-9.e+]+)$', re.MULTILINE)


def jobs_run(ports: list[int]) -> dict[str, float]:
    """Jobs run so far by kind, summed over the workers' /metrics (both engines count each job
    body they run there, whatever it then found to do)."""
    kinds: dict[str, float] = {}
    for port in ports:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        for kind, _outcome, value in JOBS_LINE.findall(text):
            kinds[kind] = kinds.get(kind, 0.0) + float(value)
    return kinds


def completed_reads(url: str, since: float, until: float) -> dict[str, list[float]]:
    """connection -> when each read of its stream that went to the vendor finished (a pass that
    found the stream locked by another process is not a read)."""
    store = StateStore(url)
    try:
        with store.transaction() as tx:
            runs = tx.last_runs(limit=1_000_000, kind="sync")
    finally:
        store.dispose()
    out: dict[str, list[float]] = {}
    for run in runs:
        done = run["finished_at"]
        if done is None or run["status"] != "ok" or (run["counts"] or {}).get("skipped"):
            continue
        at = done.timestamp()
        if since <= at <= until:
            out.setdefault(str(run["scope"]), []).append(at)
    return out


def start_companies(n: int, tmp: Path) -> list[Emulators]:
    """``n`` companies' emulators (four each, the vendors' real limits), under ``tmp``."""
    companies: list[Emulators] = []
    try:
        for i in range(n):
            workdir = tmp / f"company-{i:03d}"
            workdir.mkdir(parents=True, exist_ok=True)
            companies.append(start_emulators(workdir, scaled_limits=False))
    except BaseException:
        stop_companies(companies)
        raise
    return companies


def stop_companies(companies: list[Emulators]) -> None:
    for emus in companies:
        emus.stop()


def init_store(url: str) -> None:
    """The hub's schema, once, before the workers (they would race on a fresh schema)."""
    store = StateStore(url)
    store.init()
    store.dispose()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()  # warm shutdown: the job in hand ends at a page boundary
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


@dataclass
class Window:
    """What one measured window saw: its bounds, the reads, jobs, database counters, the CPU of
    each process asked for (in the order given) and each company's (requests, 429s)."""

    start: float
    end: float
    reads: dict[str, list[float]]
    jobs: dict[str, float]
    db: dict[str, int]
    cpu: list[float]
    pg_cpu: float
    requests: list[tuple[int, int]]


def measure(db_name: str, url: str, companies: list[Emulators], procs: list[subprocess.Popen[bytes]],
            pids: list[int], jobs_run: Callable[[], dict[str, float]], interval: int, intervals: int,
            logs: Path) -> Window:
    """One interval of warm-up (start-up, OAuth, first reads), then ``intervals`` measured; raises
    RuntimeError when one of ``procs`` exited during the warm-up. ``pids``: whose CPU to count."""
    backends = BackendCpu(db_name)
    time.sleep(interval + 10)  # start-up and the first interval
    for p in procs:
        if p.poll() is not None:
            raise RuntimeError(f"a worker exited: see {logs}")
    before_requests = [tenant_requests(c) for c in companies]
    jobs0 = jobs_run()
    backends.start_window()
    db0, cpu0 = db_counters(db_name), [cpu_seconds(pid) for pid in pids]
    start = time.time()
    deadline = start + interval * intervals
    while time.time() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.time())))
        backends.sample()
    end = time.time()
    db1, cpu1 = db_counters(db_name), [cpu_seconds(pid) for pid in pids]
    pg_cpu = backends.used()
    after_requests = [tenant_requests(c) for c in companies]
    jobs1 = jobs_run()
    return Window(start, end, completed_reads(url, start, end), {k: v - jobs0.get(k, 0.0) for k, v in jobs1.items()},
                  {k: db1[k] - db0[k] for k in db0}, [b - a for a, b in zip(cpu0, cpu1, strict=True)], pg_cpu,
                  [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after_requests, before_requests, strict=True)])


def summarise_window(engine: str, window: Window, companies: int, interval: int, worker_cpu: float) -> dict[str, Any]:
    """``summarise`` of one window (``worker_cpu``: the CPU of the processes that count as workers)."""
    names = [f"{system}_{i:03d}" for i in range(companies) for system in SYSTEMS]
    return summarise(engine, size=len(names), names=names, companies=companies, reads=window.reads,
                     start=window.start, end=window.end, interval=interval, jobs=window.jobs, db=window.db,
                     worker_cpu=worker_cpu, pg_cpu=window.pg_cpu, requests=window.requests)


def run_once(engine: str, size: int, workers: int, interval: int, intervals: int, tmp: Path) -> dict[str, Any]:
    companies_n = max(1, size // len(SYSTEMS))
    companies = start_companies(companies_n, tmp)
    try:
        with bench_database() as (db_name, url):
            config = tmp / f"hub-{engine}-{size}.toml"
            write_config(config, url, companies, interval)
            init_store(url)
            if engine == "procrastinate":
                job_queue.ensure_schema(url)
            logs = tmp / f"logs-{engine}-{size}"
            logs.mkdir(exist_ok=True)
            started = start_workers(engine, config, workers, logs)
            procs, ports = [p for p, _ in started], [port for _, port in started]
            try:
                window = measure(db_name, url, companies, procs, [p.pid for p in procs], lambda: jobs_run(ports),
                                 interval, intervals, logs)
            finally:
                stop(procs)
        return summarise_window(engine, window, companies_n, interval, sum(window.cpu))
    finally:
        stop_companies(companies)


def summarise(engine: str, *, size: int, names: list[str], companies: int, reads: dict[str, list[float]],
              start: float, end: float, interval: int, jobs: dict[str, float], db: dict[str, int], worker_cpu: float,
              pg_cpu: float, requests: list[tuple[int, int]]) -> dict[str, Any]:
    per = size * (end - start) / interval  # connection-intervals in the window
    staleness: dict[str, float] = {}
    for name in names:
        times = sorted(reads.get(name, []))
        edges = [start, *times, end]
        staleness[name] = max(b - a for a, b in zip(edges, edges[1:], strict=False)) / interval
    tenant = [max(staleness[f"{s}_{i:03d}"] for s in SYSTEMS) for i in range(companies)]
    median = statistics.median(tenant)
    share = [limited / total if total else 0.0 for total, limited in requests]
    return {
        "engine": engine, "connections": size, "window_s": round(end - start),
        "worst_staleness_x_interval": round(max(staleness.values()), 2),
        "connections_late": sum(1 for v in staleness.values() if v > 1.05),
        "fairness_worst_over_median_tenant": round(max(tenant) / median, 2) if median else None,
        "jobs_per_conn_interval": round(sum(jobs.values()) / per, 2),
        "sync_jobs_per_conn_interval": round(jobs.get("sync", 0.0) / per, 2),
        "vendor_reads_per_conn_interval": round(sum(len(v) for v in reads.values()) / per, 2),
        "db_xacts_per_conn_interval": round(db["transactions"] / per, 1),
        "db_rows_read_per_conn_interval": round(db["rows_read"] / per),
        "worker_cpu_ms_per_conn_interval": round(1000 * worker_cpu / per, 1),
        "pg_cpu_ms_per_conn_interval": round(1000 * pg_cpu / per, 1),
        "worst_tenant_429_share": round(max(share), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="50,100,200", help="sizes, comma-separated (4 per company)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--engines", default="embedded,procrastinate")
    parser.add_argument("--interval", type=int, default=60, help="sync_interval_seconds")
    parser.add_argument("--intervals", type=int, default=2, help="intervals measured after one of warm-up")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hub-tenants-") as tmp:
        for size in [int(s) for s in args.connections.split(",")]:
            for engine in args.engines.split(","):
                log(f"tenants: {engine}, {size} connections, {args.workers} workers, "
                    f"interval {args.interval} s x {args.intervals}")
                row = run_once(engine, size, args.workers, args.interval, args.intervals, Path(tmp))
                log("  " + json.dumps(row))
                rows.append(row)
    print_rows(rows)
    return 0


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The rows as JSON, then as a markdown table (one column per key of the first row)."""
    print(json.dumps(rows, indent=2))
    keys = [k for k in rows[0] if k != "engine"]
    print("\n| engine | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for row in rows:
        print(f"| {row['engine']} | " + " | ".join(str(row.get(k)) for k in keys) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
