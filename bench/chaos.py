"""Chaos at scale: N ``hub run`` processes on one PostgreSQL schema against the four emulators
with faults in each, one process SIGKILLed and restarted at each outbox threshold, then every
emulator checked for duplicates, missing records and amount mismatches, and a diff run.

    python bench/chaos.py                # --scale 0.1 (200 customers, 500 invoices …)
    python bench/chaos.py --scale 10     # issue 10's 10x run: 20,000 customers, 50,000 invoices …

Prints records, faults injected, kills, duplicates, missing, mismatches, dead letters, diff
findings, the most change-feed reads of one stream in flight at once, and the time. Stops by
itself (``--timeout``). PostgreSQL at HUB_TEST_PG_URL; a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.scale.chaos import Chaos, Scale  # noqa: E402
from tests.scale.helpers import PG_URL, pg_schema  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="1.0 = 2,000 customers, 5,000 invoices …")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--side-by-side", action="store_true",
                        help="[schedules] side_by_side_lanes = true: inbox, outbox, change feeds on their own threads")
    args = parser.parse_args(argv)
    scale = Scale.of(args.scale, processes=args.processes, kills=args.kills)
    print(f"chaos: scale {args.scale} {scale}{' side by side' if args.side_by_side else ''}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hub-chaos-") as tmp, pg_schema(args.pg_url) as url:
        chaos = Chaos(Path(tmp), url, scale, log=lambda m: print(f"  {m}", flush=True),
                      side_by_side=args.side_by_side)
        try:
            outcome = chaos.run(timeout=args.timeout)
            logs = daemon_logs(Path(tmp))  # read once: the temporary directory goes below
            inbox, troubles = inbox_figures(logs), log_troubles(logs)
        except TimeoutError as exc:
            # Say how far it got: the workload so far, the faults, the kills and the writes done.
            chaos.calm()
            print(f"chaos: gave up: {exc}; {chaos.done()} writes done, {chaos.outcome.kills} kills, "
                  f"faults {dict(chaos.outcome.faults)}", flush=True)
            return 1
        finally:
            chaos.close()
    summary = outcome.summary()
    print(json.dumps(summary, indent=2))
    print(f"inbox (the daemons' logs): {inbox['processed']} events processed, {inbox['answered']} of them answered "
          f"from the store without a read of Stripe, {inbox['failed']} failed attempts")
    print("daemon log lines: " + ", ".join(f"{n} {what!r}" for what, n in troubles.items()))
    for kind, items in outcome.problems.items():
        for item in items[:10]:
            print(f"  {kind}: {item}")
    for reason in outcome.dead_reasons[:10]:
        print(f"  dead: {reason}")
    if bad_outcome(summary):  # what the hub still held: where to start when a run is not clean
        for row in outcome.unfinished:
            print(f"  unfinished: {row}")
        for finding in outcome.hub_findings[:20]:
            print(f"  hub finding: {finding}")
    return 1 if bad_outcome(summary) else 0


INBOX_LINE = re.compile(r"processed (\d+), failed (\d+)(?:, (\d+) answered from the store)?")


def daemon_logs(workdir: Path) -> list[str]:
    """Every process's log (a restarted process appends to its predecessor's)."""
    return [log.read_text(errors="replace") for log in sorted(workdir.glob("daemon*.log"))]


def inbox_figures(logs: list[str]) -> dict[str, int]:
    """The inbox jobs' counts, summed over every process's log (each job that did work logs one
    line: ``inbox: processed N, failed F, A answered from the store``)."""
    totals = {"processed": 0, "failed": 0, "answered": 0}
    for log in logs:
        for match in INBOX_LINE.finditer(log):
            totals["processed"] += int(match[1])
            totals["failed"] += int(match[2])
            totals["answered"] += int(match[3] or 0)
    return totals


# What the daemons' logs should never say much of: a PostgreSQL deadlock abort (a transaction's
# locks in a cycle: the page rolls back and is read again, but some lock order is wrong) and a link
# lost to another transaction (the first-contact race).
TROUBLES = ("deadlock detected", "already linked")


def log_troubles(logs: list[str]) -> dict[str, int]:
    """How many lines of every process's log say each of ``TROUBLES``."""
    counts = dict.fromkeys(TROUBLES, 0)
    for log in logs:
        for line in log.splitlines():
            for what in TROUBLES:
                counts[what] += what in line
    return counts


def bad_outcome(summary: dict[str, Any]) -> bool:
    return bool(summary["duplicates"] or summary["missing"] or summary["mismatches"] or summary["diff_findings"]
                or summary["dead_letters"] or summary["unfinished_writes"]
                or summary["max_concurrent_reads_per_stream"] > 1)


if __name__ == "__main__":
    sys.exit(main())
