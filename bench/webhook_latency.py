"""Webhook latency: Stripe webhook received by the daemon -> written in each target system.

    /work/venv/bin/python -m bench.webhook_latency                       # 5,000 events at 50/s
    /work/venv/bin/python -m bench.webhook_latency --events 1000 --rate 25
    /work/venv/bin/python -m bench.webhook_latency --postgres            # the hub on PostgreSQL

The real daemon (``sync.web.app.create_app`` with its scheduler) serves on loopback in front of a
hub synced with the four emulators (500 seeded customers). The bench changes a customer's email
through the Stripe API ``--events`` times at ``--rate`` per second, round robin over the
customers; the Stripe emulator delivers each ``customer.updated`` webhook, signed, to the daemon.
Under that load the daemon also runs its scheduled jobs (inbox every ``--inbox-interval`` s,
outbox every 1 s, every stream's incremental sync every ``--sync-interval`` s).

On SQLite engine work in the daemon runs one job at a time; on PostgreSQL (``--postgres``: a
fresh schema at HUB_TEST_PG_URL, dropped afterwards) with ``--side-by-side`` the inbox, the outbox
and the change feeds run side by side (``Jobs.lanes``). The start-up syncs finish before the first change is sent. Times (one process, one monotonic clock): a middleware in front
of the daemon notes when each webhook arrives; middlewares in front of QuickBooks and Xero
(``bench/wire.py``; Salesforce does not carry the email, so nothing is written there) note
when a write carrying the new email has been answered. Printed: p50 / p95 / p99 / max per target
and to "all targets", and how many changes were superseded by a later change to the same customer
before they were written (they are then written once, with the later value) or never arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from bench.latency_breakdown import Timeline
from bench.latency_breakdown import report as breakdown
from bench.wire import start_emulators
from connectors.emulation import follow_wall
from state.crypto import generate_key
from state.store import StateStore
from sync.config import load_config
from sync.demo import STRIPE_KEY, seed_company
from sync.runtime import Hub
from sync.web.app import create_app
from sync.web.context import DAEMON

TOKEN = re.compile(r"bench-(\d+)@latency\.example")
# Salesforce is not a target here: the email is not mapped onto the Account, so an email change
# rightly writes nothing there.
TARGETS = ("quickbooks", "xero")


class Times:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: dict[int, float] = {}
        self.refused = 0
        self.written: dict[str, dict[int, float]] = {t: {} for t in TARGETS}

    def note_received(self, body: bytes, now: float) -> None:
        with self.lock:
            for n in TOKEN.findall(body.decode("utf-8", "replace")):
                self.received.setdefault(int(n), now)

    def note_written(self, system: str, text: str) -> None:
        now = time.monotonic()
        with self.lock:
            for n in TOKEN.findall(text):
                self.written[system].setdefault(int(n), now)


class DaemonServer:
    """The daemon's app on loopback, in a thread with its own event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="daemon", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def start(self) -> int:
        self.thread.start()
        self.ready.wait(30)
        return self.port

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=50.0, help="customer changes per second")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--inbox-interval", type=float, default=0.25)
    parser.add_argument("--sync-interval", type=float, default=30.0)
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last writes")
    parser.add_argument("--postgres", action="store_true", help="the hub's state on PostgreSQL (HUB_TEST_PG_URL)")
    parser.add_argument("--breakdown", action="store_true",
                        help="say where the time goes: lane held by another job, poll, ingest, push")
    parser.add_argument("--side-by-side", action="store_true",
                        help="with --postgres: the inbox, outbox and feeds in their own lanes (side_by_side_lanes)")
    args = parser.parse_args(argv)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running" is the design
    if args.postgres:
        from tests.scale.helpers import PG_URL, pg_schema

        with pg_schema(PG_URL) as url:
            return run(args, url)
    return run(args, None)


def run(args: argparse.Namespace, state_url: str | None) -> int:
    print(f"webhook latency bench: {args.events} Stripe customer changes at {args.rate:.0f}/s over"
          f" {args.customers} customers; daemon inbox every {args.inbox_interval} s, outbox every 1 s,"
          f" stream syncs every {args.sync_interval} s; state on {'PostgreSQL' if state_url else 'SQLite'}")
    times = Times()
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="billhub-bench-webhook-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        emus, logs = start_emulators(workdir)
        for target in TARGETS:
            logs[target].on_write = times.note_written
        hub = None
        server = None
        try:
            seed_company(emus, customers=args.customers, invoices=10)
            config_path = workdir / "hub.toml"
            config_path.write_text(emus.config_toml(state_url or f"sqlite:///{workdir}/hub.db", generate_key()) + f"""
[schedules]
inbox_interval_seconds = {args.inbox_interval}
outbox_interval_seconds = 1.0
sync_interval_seconds = {args.sync_interval}
token_refresh_seconds = 600
side_by_side_lanes = {'true' if args.side_by_side else 'false'}
""")
            config = load_config(config_path)
            StateStore(config.state_url).init()  # before the connectors read their tokens from it
            hub = Hub.from_config(config)
            hub.store.init()
            t0 = time.perf_counter()
            first = hub.engine.sync()
            print(f"initial sync: {time.perf_counter() - t0:.1f} s, errors {len(first.errors)}")
            ticker = threading.Thread(target=follow_wall, args=([r.emulator.clock for r in emus.all.values()], stop),
                                      daemon=True)
            ticker.start()

            app = create_app(config, hub, start_scheduler=True)

            @web.middleware
            async def arrivals(request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                               ) -> web.StreamResponse:
                if not request.path.startswith("/webhooks/"):
                    return await handler(request)
                arrived = time.monotonic()
                response = await handler(request)
                body = await request.read()  # after the handler, which reads it first
                if response.status < 300:  # a refused delivery is retried by Stripe: count the accepted one
                    times.note_received(body, arrived)
                else:
                    times.refused += 1
                return response

            app.middlewares.insert(0, arrivals)
            timeline = Timeline(app[DAEMON].jobs) if args.breakdown else None
            server = DaemonServer(app)
            port = server.start()
            jobs = app[DAEMON].jobs
            sync_jobs = {s.id for s in jobs.specs() if s.id.startswith("sync:")}
            warm = time.monotonic()
            while not sync_jobs <= set(jobs.last) and time.monotonic() - warm < 180:
                time.sleep(0.2)  # the scheduler runs every stream's sync once at start-up
            print(f"daemon up; start-up syncs of {len(sync_jobs)} streams done in {time.monotonic() - warm:.1f} s")
            stripe = requests.Session()
            stripe.headers["Authorization"] = f"Bearer {STRIPE_KEY}"
            base = emus.stripe.base_url
            stripe.post(f"{base}/v1/webhook_endpoints", data={
                "url": f"http://127.0.0.1:{port}/webhooks/stripe", "enabled_events[]": "customer.updated"},
                timeout=10).raise_for_status()
            stripe_emulator: Any = emus.stripe.emulator
            customer_ids = sorted(stripe_emulator.table("customer"))[: args.customers]
            for log in logs.values():
                log.clear()
            started = time.monotonic()
            limited = 0  # the bench's own changes Stripe answered 429 (sent again)
            for n in range(args.events):
                due = started + n / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                cid = customer_ids[n % len(customer_ids)]
                while True:  # Stripe's rate limit is shared with the hub's reads: wait as a client does
                    answer = stripe.post(f"{base}/v1/customers/{cid}", data={"email": f"bench-{n}@latency.example"},
                                         timeout=10)
                    if answer.status_code != 429:
                        answer.raise_for_status()
                        break
                    limited += 1
                    time.sleep(float(answer.headers.get("Retry-After") or 0.05))
            sent = time.monotonic() - started
            last = args.events - 1
            deadline = time.monotonic() + args.drain
            while time.monotonic() < deadline:  # every change written, or written over by a later one
                with times.lock:
                    if all(last in times.written[t] for t in TARGETS) and not any(
                            unwritten(times, t, args.events, len(customer_ids)) for t in TARGETS):
                        break
                time.sleep(0.5)
            report(times, args.events, len(customer_ids), sent)
            if timeline is not None:
                with times.lock:
                    done = {n: max(times.written[t][n] for t in TARGETS) for n in times.received
                            if all(n in times.written[t] for t in TARGETS)}
                    received = dict(times.received)
                breakdown(timeline, received, done)
            print(f"  the bench's changes answered 429 by Stripe and sent again: {limited}")
            print("  API calls while the events ran (bench/wire.py):")
            for system, log in logs.items():
                routes: dict[str, int] = {}
                for call in log.calls:
                    routes[call.route] = routes.get(call.route, 0) + 1
                top = sorted(routes.items(), key=lambda kv: -kv[1])[:6]
                print(f"    {system:<11} {len(log.calls):>6}  " + ", ".join(f"{r} {k}" for r, k in top))
            print("  daemon jobs: " + ", ".join(f"{j} {v['outcome']} ({v['detail']})" for j, v in
                                                sorted(jobs.last.items()) if not j.startswith("sync:")))
        finally:
            stop.set()
            if server is not None:
                server.stop()
            if hub is not None:
                hub.close()
            emus.stop()
    return 0


def unwritten(times: Times, target: str, events: int, customers: int) -> int:
    """Changes received and neither written to ``target`` nor written over there by a later
    change of the same customer (call with ``times.lock`` held)."""
    written = times.written[target]
    return sum(1 for n in times.received if n not in written
               and not any(m in written for m in range(n + customers, events, customers)))


def report(times: Times, events: int, customers: int, sent: float) -> None:
    with times.lock:
        received = dict(times.received)
        written = {t: dict(v) for t, v in times.written.items()}
    print(f"\nsent {events} changes in {sent:.1f} s ({events / sent:.1f}/s); webhooks accepted {len(received)},"
          f" refused {times.refused}")
    print(f"  {'target':<12}{'written':>8}{'superseded':>11}{'missing':>8}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}")
    per_event_all: list[float] = []
    for target in TARGETS:
        lat = [(written[target][n] - received[n]) * 1000 for n in received if n in written[target]]
        superseded = sum(1 for n in received if n not in written[target]
                         and any(m in written[target] for m in range(n + customers, events, customers)))
        missing = len(received) - len(lat) - superseded
        if lat:
            print(f"  {target:<12}{len(lat):>8}{superseded:>11}{missing:>8}{pct(lat, 0.5):>9.0f}"
                  f"{pct(lat, 0.95):>9.0f}{pct(lat, 0.99):>9.0f}{max(lat):>9.0f}")
        else:
            print(f"  {target:<12}{0:>8}{superseded:>11}{missing:>8}  (no writes seen)")
    for n, at in received.items():
        if all(n in written[t] for t in TARGETS):
            per_event_all.append((max(written[t][n] for t in TARGETS) - at) * 1000)
    if per_event_all:
        print(f"  {'all targets':<12}{len(per_event_all):>8}{'':>11}{'':>8}{pct(per_event_all, 0.5):>9.0f}"
              f"{pct(per_event_all, 0.95):>9.0f}{pct(per_event_all, 0.99):>9.0f}{max(per_event_all):>9.0f}")
        print(f"  mean to all targets {statistics.fmean(per_event_all):.0f} ms")
    print(json.dumps({"received": len(received), "written": {t: len(written[t]) for t in TARGETS}}))


if __name__ == "__main__":
    raise SystemExit(main())
