"""Rate limits: does the hub use the vendors' ceilings without being refused?

    /work/venv/bin/python -m bench.rate_limits                  # 15 s per system, x scale below
    /work/venv/bin/python -m bench.rate_limits --seconds 70     # longer than one rate window

Each emulator enforces its vendor's documented limits, scaled up so a run takes seconds, and the
connector is configured with the same scaled limits (as an operator would set them for the real
account); concurrency limits are kept at the documented values:

* Stripe: 25 requests/s (test mode) x 2 = 50/s, per-second window; no documented concurrency cap.
* QuickBooks: 500 requests/min per realm x 6 = 3,000/min (50/s), 10 concurrent.
* Xero: 60 calls/min per tenant x 30 = 1,800/min (30/s), 5 concurrent; the emulator's clock
  follows the wall clock so its rolling minute moves.

Every request takes ``--latency-ms`` (default 50) at the emulator, like a network round trip,
so requests overlap. More threads than the documented concurrency (``--workers``, 12) read through the
real connector (first page of the customer stream, one request each) for ``--seconds``. A
middleware in front of each emulator (``bench/wire.py``) counts every request, every 429 and the
requests in flight at once. Printed per system: share of the ceiling used (requests answered
2xx / (ceiling rate x run time), goal >= 0.8), share answered 429 (goal <= 0.01), and the most
requests in flight (goal: never above the documented concurrency).

Salesforce has no per-second vendor ceiling (a daily allocation, which the connector's budget
pause covers), so it is not part of this bench.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.wire import WireLog, start_emulators
from connectors.emulation import follow_wall
from connectors.xero.emulator import Limits
from state.crypto import generate_key
from sync.config import load_config
from sync.runtime import Hub


@dataclass(frozen=True)
class Ceiling:
    system: str
    documented: str
    per_second: float  # scaled ceiling
    concurrency: int | None  # documented, not scaled


STRIPE_X, QBO_X, XERO_X = 2, 6, 30
CEILINGS = {
    "stripe": Ceiling("stripe", "25/s (test mode)", 25.0 * STRIPE_X, None),
    "quickbooks": Ceiling("quickbooks", "500/min per realm, 10 concurrent", 500 * QBO_X / 60, 10),
    "xero": Ceiling("xero", "60/min per tenant, 5 concurrent", 60 * XERO_X / 60, 5),
}


def configure(toml: str) -> str:
    """The demo config with the connectors' limits set to the scaled vendor limits."""
    def section(name: str, body: str) -> str:
        return re.sub(rf"(\[connections\.{name}\]\n)", rf"\g<1>{body}", toml)

    toml = re.sub(r"^rate_limit_per_second = .*\n", "", toml, flags=re.M)
    toml = re.sub(r"^rate_limit_per_minute = .*\n", "", toml, flags=re.M)
    toml = section("stripe", f"rate_limit_per_second = {25.0 * STRIPE_X}\n")
    toml = section("quickbooks", f"rate_limit_per_minute = {500.0 * QBO_X}\nconcurrency = 10\n")
    return section("xero", f"rate_limit_per_minute = {60.0 * XERO_X}\nconcurrency = 5\n")


def hammer(connector: Any, seconds: float, workers: int) -> int:
    """``workers`` threads reading the first customer page over and over; returns errors."""
    deadline = time.monotonic() + seconds
    errors = [0]

    def work() -> None:
        while time.monotonic() < deadline:
            try:
                next(iter(connector.fetch_all("customer")), None)
            except Exception:
                errors[0] += 1

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors[0]


def measure(system: str, log: WireLog, seconds: float, errors: int) -> list[str]:
    ceiling = CEILINGS[system]
    calls = [c for c in log.calls if "token" not in c.path and "connect" not in c.path]
    ok = sum(1 for c in calls if c.status < 400)
    limited = sum(1 for c in calls if c.status == 429)
    span = (max(c.at for c in calls) - min(c.at for c in calls)) if len(calls) > 1 else seconds
    span = max(span, seconds * 0.5)
    used = ok / (ceiling.per_second * span)
    share_429 = limited / len(calls) if calls else 0.0
    conc_ok = ceiling.concurrency is None or log.max_in_flight <= ceiling.concurrency
    first = [c for c in calls if c.at - calls[0].at < 1.0] if calls else []
    first_429 = sum(1 for c in first if c.status == 429)
    limit_text = f"{ceiling.concurrency}" if ceiling.concurrency else "none documented"
    print(f"\n== {system}: documented {ceiling.documented}; scaled ceiling {ceiling.per_second:.1f}/s ==")
    print(f"  requests {len(calls)}, answered 2xx {ok}, 429 {limited}, connector errors {errors},"
          f" over {span:.1f} s ({ok / span:.1f}/s)")
    print(f"  429s in the first second: {first_429} of {len(first)} requests")
    within = 0.8 <= used <= 1.05
    print(f"  share of ceiling used   {used:5.2f}   goal >= 0.8 (and not above it)"
          f"   {'ok' if within else 'MISS'}")
    print(f"  share answered 429      {share_429:5.3f}   goal <= 0.01  {'ok' if share_429 <= 0.01 else 'MISS'}")
    print(f"  most in flight          {log.max_in_flight:5d}   limit {limit_text:<5}"
          f" {'ok' if conc_ok else 'MISS'}")
    misses = []
    if used < 0.8:
        misses.append(f"{system}: used {used:.2f} of the ceiling")
    if used > 1.05:
        misses.append(f"{system}: ran at {used:.2f}x the ceiling; the vendor refuses the excess once its"
                      " window fills")
    if share_429 > 0.01:
        misses.append(f"{system}: {share_429:.3f} of requests answered 429 ({first_429} of them in the first second)")
    if not conc_ok:
        misses.append(f"{system}: {log.max_in_flight} requests in flight, documented limit {ceiling.concurrency}")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="run per system")
    parser.add_argument("--workers", type=int, default=12, help="reader threads per system")
    parser.add_argument("--systems", default="stripe,quickbooks,xero")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every request")
    args = parser.parse_args(argv)
    print(f"rate limit bench: {args.seconds:.0f} s per system, {args.workers} threads, {args.latency_ms:.0f} ms"
          f" per request; scale: Stripe x{STRIPE_X},"
          f" QuickBooks x{QBO_X}, Xero x{XERO_X} (limits of emulator and connector alike)")
    misses: list[str] = []
    with tempfile.TemporaryDirectory(prefix="billhub-bench-rate-") as tmp:
        workdir = Path(tmp)
        emus, logs = start_emulators(
            workdir, stripe_rate=25.0 * STRIPE_X, qbo_limits=(500 * QBO_X, 40 * QBO_X),
            xero_limits=Limits(minute=60 * XERO_X, day=5000 * XERO_X, concurrent=5, app_minute=10**6))
        qbo_emulator: Any = emus.quickbooks.emulator
        qbo_emulator.throttle.concurrent = 10
        stripe_emulator: Any = emus.stripe.emulator
        stripe_emulator.rate_clock = time.monotonic
        for log in logs.values():
            log.latency = args.latency_ms / 1000
        stop = threading.Event()
        ticker = threading.Thread(target=follow_wall, args=([emus.xero.emulator.clock], stop, 0.005), daemon=True)
        ticker.start()
        hub = None
        try:
            config_path = workdir / "hub.toml"
            config_path.write_text(configure(emus.config_toml(f"sqlite:///{workdir}/hub.db", generate_key())))
            hub = Hub.from_config(load_config(config_path))
            hub.store.init()
            for system in args.systems.split(","):
                connector = next(c for c in hub.engine.connectors.values() if c.system == system)
                next(iter(connector.fetch_all("customer")), None)  # tokens, connections
                time.sleep(2.0)  # let the emulator's windows and the connector's bucket settle
                logs[system].clear()
                errors = hammer(connector, args.seconds, args.workers)
                misses += measure(system, logs[system], args.seconds, errors)
        finally:
            stop.set()
            if hub is not None:
                hub.close()
            emus.stop()
    print("\n== what misses a goal ==")
    for miss in misses or ["nothing"]:
        print(f"  - {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
