"""The cluster's sweep and per-connection outbox push at many connections, without vendors: what
the queue itself costs per connection (``sync/cluster/periodic.py``), on the real PostgreSQL.

    python -m bench.cluster_sweep --connections 1000,10000 --due 0.1

For C connections (two streams each, one outbox) in a database of its own, with a share
``--due`` of them holding a write due in the outbox:

* ``schedule``: working out the cluster's schedule (what a worker does at start and after a reload);
* ``sweep``: one sweep over a whole outbox interval (every connection's push tick in the window):
  the due-writes query, the tick arithmetic and one deferred push per connection with writes due;
* ``steady sweep``: one ordinary sweep (a 6 s window): what every 5 s costs;
* ``drain``: one worker running those push jobs with a body that does nothing: the queue's own
  cost per job (fetch, the job wrapper, finish), the part a per-connection push adds.

Wall and CPU (this process; PostgreSQL's backends separately) and database transactions per job.
The job bodies are stand-ins (no engine, no vendor): the hub's own cost of a push is in
bench/tenants.py's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from apscheduler.triggers.interval import IntervalTrigger
from procrastinate import App

from bench.tenants import BackendCpu, bench_database, db_counters, log
from state import job_queue
from state.store import StateStore
from sync.cluster import periodic, tasks
from sync.scheduler import Jobs, JobSpec

ENTITIES = ("customer", "invoice")


class StandInJobs:
    """What ``sync/cluster`` uses of ``Jobs``, with bodies that do nothing (the queue's cost only)."""

    def __init__(self, names: list[str], store: StateStore) -> None:
        self.names = names
        self.hub = SimpleNamespace(config=SimpleNamespace(schedules={}, alerts={}, secrets=[]), store=store,
                                   connectors=dict.fromkeys(names), engine=SimpleNamespace(push=self._push))
        self.last: dict[str, dict[str, Any]] = {}
        self.clock = lambda: datetime.now(UTC)
        self.pushed = 0

    def specs(self) -> list[JobSpec]:
        async def never() -> None:
            raise AssertionError("not the embedded scheduler")
        specs = [JobSpec(f"sync:{n}:{e}", "sync", IntervalTrigger(seconds=300), never, True)
                 for n in self.names for e in ENTITIES]
        return [*specs, JobSpec("outbox", "outbox", IntervalTrigger(seconds=15), never, True)]

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def _job(self, job_id: str, fn: Callable[..., Any], *args: Any) -> None:
        detail = fn(*args)
        self.last[job_id] = {"outcome": "ok", "detail": detail}

    def paused_reason(self, _connection: str) -> str | None:
        return None

    def _note(self, _summary: object) -> None:
        pass

    def sync_stream(self, _connection: str, _entity: str) -> str:
        return "read 0, wrote 0"

    def _push(self, _connection: str, _summary: object, _run_id: str | None, *, max_batches: int | None = None) -> None:
        self.pushed += 1


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


async def ameasured(coro: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = await coro
    return out, time.perf_counter() - wall, time.process_time() - cpu


def seed(store: StateStore, targets: list[str]) -> None:
    with store.transaction() as tx, tx.outbox_batch():
        for i, target in enumerate(targets):
            tx.enqueue(f"canon-{i}", "customer", target, "create", f"k-{i}", "digest")


async def phase(url: str, db_name: str, store: StateStore, work: Callable[[App], Any]) -> dict[str, Any]:
    """``work(app)`` on a fresh App: its result, wall, CPU, PostgreSQL CPU and transactions.
    The App's pool and the store's close before the counters are read: a backend flushes its
    statistics when it exits (PostgreSQL 15 holds them up to 10 s while it idles)."""
    app = App(connector=job_queue.connector(url))
    tasks.register(app)
    periodic.register(app, [])
    await app.open_async()
    backends = BackendCpu(db_name)
    backends.start_window()
    db0 = db_counters(db_name)
    try:
        out, wall, cpu = await ameasured(work(app))
        backends.sample()
    finally:
        await app.close_async()
        store.dispose()
    pg_cpu = backends.used()
    return {"out": out, "wall": wall, "cpu": cpu, "pg_cpu": pg_cpu,
            "xacts": db_counters(db_name)["transactions"] - db0["transactions"]}


async def run_size(size: int, due_share: float) -> dict[str, Any]:
    with bench_database() as (db_name, url):
        store = StateStore(url)
        store.init()
        job_queue.ensure_schema(url)
        names = [f"conn_{i:05d}" for i in range(size)]
        busy = names[:: max(1, round(1 / due_share))] if due_share > 0 else []
        seed(store, busy)
        stand_in = StandInJobs(names, store)
        jobs = cast(Jobs, stand_in)
        schedule, schedule_wall, schedule_cpu = measured(lambda: periodic.schedule(jobs))
        outboxes_only = periodic.Schedule([], [], schedule.outboxes)
        now = time.time()
        sweep = await phase(url, db_name, store, lambda app: periodic.sweep(app, outboxes_only, jobs, now, now - 15))
        later = now + 300  # an ordinary sweep later on: the streams and pushes whose tick fell in 6 s
        steady = await phase(url, db_name, store, lambda app: periodic.sweep(app, schedule, jobs, later, later - 6))
        context = {"jobs": lambda: jobs, "stalled_seconds": 30.0, "schedule": lambda: periodic.Schedule([], [], [])}
        drain = await phase(url, db_name, store, lambda app: app.run_worker_async(
            wait=False, concurrency=1, install_signal_handlers=False, additional_context=context,
            delete_jobs="successful"))
        store.dispose()
        deferred = int(sweep["out"])
        per, ran = max(1, deferred), max(1, len(stand_in.last))
        return {
            "connections": size, "with_writes_due": len(busy), "streams": len(schedule.streams),
            "schedule_ms": round(1000 * schedule_wall, 1), "schedule_cpu_ms": round(1000 * schedule_cpu, 1),
            "sweep_pushes_deferred": deferred, "sweep_ms": round(1000 * sweep["wall"]),
            "sweep_cpu_ms": round(1000 * sweep["cpu"]), "sweep_ms_per_push": round(1000 * sweep["wall"] / per, 2),
            "sweep_xacts_per_push": round(sweep["xacts"] / per, 2),
            "sweep_pg_cpu_ms_per_push": round(1000 * sweep["pg_cpu"] / per, 2),
            "steady_sweep_jobs": steady["out"], "steady_sweep_ms": round(1000 * steady["wall"]),
            "steady_sweep_cpu_ms": round(1000 * steady["cpu"]),
            "drain_jobs": len(stand_in.last), "drain_ms_per_job": round(1000 * drain["wall"] / ran, 2),
            "drain_cpu_ms_per_job": round(1000 * drain["cpu"] / ran, 2),
            "drain_pg_cpu_ms_per_job": round(1000 * drain["pg_cpu"] / ran, 2),
            "drain_xacts_per_job": round(drain["xacts"] / ran, 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", default="1000,10000", help="sizes, comma-separated")
    parser.add_argument("--due", type=float, default=0.1, help="share of connections with a write due")
    parser.add_argument("--out", type=Path, help="also write the rows here (JSON)")
    args = parser.parse_args(argv)
    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # "App instantiated in __main__": harmless here
    rows = []
    for size in [int(s) for s in args.connections.split(",")]:
        log(f"cluster sweep: {size} connections, {args.due:.0%} with writes due")
        row = asyncio.run(run_size(size, args.due))
        log("  " + json.dumps(row))
        rows.append(row)
    print(json.dumps(rows, indent=2))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


__all__ = ["StandInJobs", "main", "run_size"]

if __name__ == "__main__":
    raise SystemExit(main())
