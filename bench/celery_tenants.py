"""Many tenants on Celery (``bench/celery_engine.py``: Celery on Redis) beside the Procrastinate
engine, on ``bench/tenants.py``'s workload and measures (issue 22 item 4: choose by the figures).

    python -m bench.celery_tenants --connections 48,100,200 --workers 4
    python -m bench.celery_tenants --connections 48 --engines celery --interval 30 --intervals 1

The companies, emulators, config, database, counters and the summary are ``bench.tenants``'
own functions, imported; only the start of the processes differs: W ``celery worker --pool solo``
processes (one job at a time each, as a Procrastinate worker) and exactly one ``celery beat``,
on the broker's Redis database (flushed before each run: it is this bench's alone). Jobs run
are counted in Redis by the tasks (``JOBS_KEY``), as ``hub run`` counts them in /metrics. The
``procrastinate`` engine runs ``bench.tenants.run_once`` itself, in the same invocation, so the
two sit on the same machine load.

Columns beyond bench/tenants.py's, per connection per interval: ``beat_cpu_ms`` (the single beat
process; it is also counted in worker CPU, as the Procrastinate deferrer runs in its workers) and
``broker_cpu_ms`` (the redis-server process: shared with anyone else using Redis on the machine;
Procrastinate's queue is in PostgreSQL, so its share is inside PostgreSQL CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench import tenants
from bench.celery_engine import BROKER, JOBS_KEY

ROOT = Path(__file__).resolve().parents[1]
CELERY = [sys.executable, "-m", "celery", "-A", "bench.celery_engine"]
# Gossip, mingle and worker heartbeats are cluster monitoring (events), not job delivery: off,
# as usually advised for Redis, so the broker load is the jobs'.
WORKER = ["worker", "--pool", "solo", "--concurrency", "1", "-Q", "urgent,routine", "--without-gossip",
          "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]
BEAT = ["beat", "-S", "bench.celery_engine:HubScheduler", "--loglevel", "WARNING"]


def start_celery(config: Path, workers: int, logs: Path) -> tuple[list[subprocess.Popen[bytes]], subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HUB_CONFIG": str(config), "HUB_CELERY_BROKER": BROKER}

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        out = (logs / f"{name}.log").open("ab")
        return subprocess.Popen(CELERY + args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    procs = [start(f"worker-{i}", [*WORKER, "-n", f"hub{i}@%h"]) for i in range(workers)]
    return procs, start("beat", BEAT)


def jobs_run(r: redis.Redis) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in r.hgetall(JOBS_KEY).items()}  # type: ignore[union-attr]


def run_celery(size: int, workers: int, interval: int, intervals: int, tmp: Path) -> dict[str, Any]:
    """``bench.tenants.run_once`` with Celery's processes in place of the ``hub run``s."""
    r = redis.Redis.from_url(BROKER)
    r.flushdb()  # the broker's database is this bench's: no queue or lock of an earlier run
    redis_pid = int(r.info("server")["process_id"])
    companies_n = max(1, size // len(tenants.SYSTEMS))
    companies = tenants.start_companies(companies_n, tmp)
    try:
        with tenants.bench_database() as (db_name, url):
            config = tmp / f"hub-celery-{size}.toml"
            tenants.write_config(config, url, companies, interval)
            tenants.init_store(url)
            logs = tmp / f"logs-celery-{size}"
            logs.mkdir(exist_ok=True)
            procs, beat = start_celery(config, workers, logs)
            everyone = [*procs, beat]
            try:
                # CPU of the workers, the beat (last of everyone, also counted as a worker) and Redis
                window = tenants.measure(db_name, url, companies, everyone, [*(p.pid for p in everyone), redis_pid],
                                         lambda: jobs_run(r), interval, intervals, logs)
            finally:
                tenants.stop(everyone)
        *worker_cpu, broker_cpu = window.cpu
        row = tenants.summarise_window("celery", window, companies_n, interval, sum(worker_cpu))
        per = len(tenants.SYSTEMS) * companies_n * (window.end - window.start) / interval
        row["beat_cpu_ms_per_conn_interval"] = round(1000 * worker_cpu[-1] / per, 1)
        row["broker_cpu_ms_per_conn_interval"] = round(1000 * broker_cpu / per, 1)
        tenants.log(f"  celery jobs by kind per connection-interval: "
                    f"{ {k: round(v / per, 2) for k, v in sorted(window.jobs.items())} }")
        return row
    finally:
        tenants.stop_companies(companies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="48,100,200", help="sizes, comma-separated (4 per company)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--engines", default="celery,procrastinate")
    parser.add_argument("--interval", type=int, default=60, help="sync_interval_seconds")
    parser.add_argument("--intervals", type=int, default=2, help="intervals measured after one of warm-up")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hub-celery-tenants-") as tmp:
        for size in [int(s) for s in args.connections.split(",")]:
            for engine in args.engines.split(","):
                tenants.log(f"tenants: {engine}, {size} connections, {args.workers} workers, "
                            f"interval {args.interval} s x {args.intervals}, load {os.getloadavg()[0]:.1f}")
                t0, c0 = time.time(), time.process_time()
                if engine == "celery":
                    row = run_celery(size, args.workers, args.interval, args.intervals, Path(tmp))
                else:
                    try:
                        row = tenants.run_once(engine, size, args.workers, args.interval, args.intervals, Path(tmp))
                    except RuntimeError:  # a worker exited: its log goes before the temporary directory
                        for worker_log in sorted(Path(tmp).glob(f"logs-{engine}-{size}/*.log")):
                            tenants.log(f"--- {worker_log.name}\n" + worker_log.read_text(errors="replace")[-3000:])
                        raise
                    row["beat_cpu_ms_per_conn_interval"] = None  # the deferrer runs in the workers
                    row["broker_cpu_ms_per_conn_interval"] = None  # the queue is in PostgreSQL
                row["load_avg_1m_after"] = round(os.getloadavg()[0], 1)
                tenants.log(f"  {json.dumps(row)} ({time.time() - t0:.0f} s wall, "
                            f"{time.process_time() - c0:.1f} s runner CPU)")
                rows.append(row)
    tenants.print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
