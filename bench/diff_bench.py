"""Diff benchmark: N canonical customers and N invoices against a lazily generated snapshot.

Run by hand (prints figures and ratios; never a timed assert)::

    /work/venv/bin/python bench/diff_bench.py --records 1000000

``--records`` is the number of canonical records in total (half customers, half invoices). Two
systems hold them: a Stripe-like source that agrees with the hub, and a QuickBooks-shaped ledger
with 1 % drift of every kind (missing, broken link, mismatch, duplicate, orphan, stale, and
per-record amounts within tolerance that add up to day totals). Their records are generated
lazily, page by page (a generator, never a list of everything), and mapped like the fake
connector's (canonical payloads).

Three phases, each in its own process so ``ru_maxrss`` is that phase's peak alone:

* ``build`` — bulk-load the canonical store (``Tx.upsert_entities``) and the links (batched
  inserts) into an SQLite file;
* ``read``  — only read both sides: stream the store's entities and every connection's records
  through mapping (the floor any diff must pay);
* ``diff``  — ``Differ.run(["customer", "invoice"])``.

Goal (issue 8): diff peak RSS under 400 MB, diff time / read time under 2.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from connectors.base import Page, Record
from mapping.model import Customer, Entity, Invoice, InvoiceLine, Money, from_data, to_data
from mapping.refs import RefResolver
from state import schema as t
from state.store import StateStore
from sync.diff import Differ, Tolerances
from sync.flows import routing_from_config

PAGE = 1000
BATCH = 5000
DRIFT = 100  # one record in DRIFT of each kind
# record index modulo DRIFT -> what the ledger does with it
MISSING, BROKEN, MISMATCH, DUPLICATE, ORPHAN, STALE, ROUNDED = range(7)
DAY0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def canonical_id(kind: str, i: int) -> str:
    return f"{kind[:4]}-{i:012d}"


def customer(i: int, email: str | None = None) -> Customer:
    return Customer(canonical_id("customer", i), name=f"Customer {i:07d}",
                    email=email or f"billing{i:07d}@example.com")


def invoice(i: int, customers: int, cents: int | None = None) -> Invoice:
    amount = Money(cents if cents is not None else 1000 + (i % 977) * 7, "USD")
    line = InvoiceLine("Plan", Decimal(1), amount, amount)
    return Invoice(canonical_id("invoice", i), customer_id=canonical_id("customer", i % customers),
                   number=f"INV-{i:08d}", status="open", lines=(line,), subtotal=amount, total=amount,
                   amount_due=amount, issued_at=DAY0 + timedelta(days=i % 90, minutes=i % 600))


class LazySystem:
    """A connector whose full fetch is generated on the fly: Stripe-like (clean) or a drifted ledger."""

    def __init__(self, name: str, system: str, n: int, *, drifted: bool) -> None:
        self.name, self.system, self.n, self.drifted = name, system, n, drifted

    def entity_types(self) -> Sequence[str]:
        return ("customer", "invoice")

    def external_id(self, kind: str, i: int) -> str:
        return f"{self.name}-{kind[:3]}-{i}"

    def _entities(self, kind: str) -> Iterator[tuple[str, Entity]]:
        for i in range(self.n):
            base: Entity = customer(i) if kind == "customer" else invoice(i, self.n)
            ext = self.external_id(kind, i)
            if not self.drifted:
                yield ext, base
                continue
            slot = i % DRIFT
            if slot in (MISSING, BROKEN):
                continue  # never written / deleted behind the hub's back
            if slot in (MISMATCH, STALE):
                base = (customer(i, email=f"changed{i:07d}@example.com") if kind == "customer"
                        else invoice(i, self.n, cents=base.total.minor + 500))  # type: ignore[attr-defined]
            elif slot == ROUNDED and kind == "invoice":
                base = invoice(i, self.n, cents=base.total.minor + 1)  # type: ignore[attr-defined]
            yield ext, base
            if slot == DUPLICATE:
                yield ext + "-copy", base  # same email / number, created again by hand
            elif slot == ORPHAN:
                yield (ext + "-orphan", customer(10**8 + i) if kind == "customer"
                       else invoice(10**8 + i, self.n))

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        records: list[Record] = []
        for ext, entity in self._entities(entity_type):
            data = to_data(entity)
            data.pop("id")
            records.append(Record(entity_type, ext, data))
            if len(records) >= PAGE:
                yield Page(records)
                records = []
        yield Page(records)

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        return from_data(record.entity_type, {**record.data, "id": refs.canonical_id(record.entity_type,
                                                                                      record.external_id)})

    def natural_keys(self, record: Record) -> dict[str, str]:
        return {k: str(record.data[k]) for k in ("email", "number") if record.data.get(k)}

    def close(self) -> None:
        return None


def systems(n: int) -> dict[str, Any]:
    return {"stripe": LazySystem("stripe", "stripe", n, drifted=False),
            "quickbooks": LazySystem("quickbooks", "quickbooks", n, drifted=True)}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


# --------------------------------------------------------------------------- phases


def build(db: Path, n: int) -> dict[str, Any]:
    store = StateStore(f"sqlite:///{db}")
    store.init()
    started = time.perf_counter()
    ledger = systems(n)["quickbooks"]
    for kind in ("customer", "invoice"):
        for start in range(0, n, BATCH):
            batch = [customer(i) if kind == "customer" else invoice(i, n) for i in range(start, min(n, start + BATCH))]
            links = []
            for i, entity in zip(range(start, start + len(batch)), batch, strict=True):
                links.append(_link(entity.id, "stripe", kind, f"stripe-{kind[:3]}-{i}", "pushed"))
                if i % DRIFT != MISSING:
                    # a stale record's last push was older content: the hub's change never landed
                    pushed = "older-content" if i % DRIFT == STALE else None
                    links.append(_link(entity.id, "quickbooks", kind, ledger.external_id(kind, i), pushed))
            with store.transaction() as tx:
                tx.upsert_entities(batch, "stripe")
                tx.conn.execute(insert(t.links), links)
    store.dispose()
    return {"phase": "build", "seconds": time.perf_counter() - started, "peak_rss_mb": rss_mb()}


def _link(canonical: str, system: str, kind: str, external: str, pushed: str | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"canonical_id": canonical, "system": system, "object_type": kind, "external_id": external,
            "last_pushed_hash": pushed, "last_seen_hash": None, "remote_version": None, "deleted": False,
            "created_at": now, "updated_at": now}


class _Refs:
    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return external_id

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return None


def read(db: Path, n: int) -> dict[str, Any]:
    """The floor: stream both sides through mapping, compare nothing, keep nothing."""
    store = StateStore(f"sqlite:///{db}")
    started = time.perf_counter()
    count = 0
    for kind in ("customer", "invoice"):
        with store.transaction() as tx:
            for stored in tx.entities_of(kind, include_deleted=True):
                stored.entity()
                count += 1
        for connector in systems(n).values():
            for page in connector.fetch_all(kind):
                for record in page.records:
                    connector.to_canonical(record, _Refs())
                    count += 1
    store.dispose()
    return {"phase": "read", "seconds": time.perf_counter() - started, "records": count, "peak_rss_mb": rss_mb()}


def diff(db: Path, n: int) -> dict[str, Any]:
    later = datetime.now(UTC) + timedelta(hours=2)  # past the stale SLA of everything loaded
    store = StateStore(f"sqlite:///{db}")
    routing = routing_from_config({}, {})
    differ = Differ(store, systems(n), routing, Tolerances(), clock=lambda: later,
                    scratch_dir=str(db.parent))
    started = time.perf_counter()
    result = differ.run(["customer", "invoice"])
    seconds = time.perf_counter() - started
    store.dispose()
    return {"phase": "diff", "seconds": seconds, "peak_rss_mb": rss_mb(), "summary": result.summary,
            "compared": result.compared}


PHASES = {"build": build, "read": read, "diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="canonical records in total")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.records // 2
    if args.phase:
        print(json.dumps(PHASES[args.phase](Path(args.db), n)))
        return
    with tempfile.TemporaryDirectory(prefix="diff-bench-") as tmp:
        db = Path(tmp) / "hub.db"
        results = {}
        for phase in ("build", "read", "diff"):
            out = subprocess.run([sys.executable, __file__, "--records", str(args.records), "--phase", phase,
                                  "--db", str(db)], capture_output=True, text=True, timeout=7200)
            if out.returncode != 0:
                sys.exit(f"{phase} failed:\n{out.stderr[-4000:]}")
            results[phase] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{phase:>5}: {results[phase]['seconds']:8.1f} s   peak RSS {results[phase]['peak_rss_mb']:7.1f} MB",
                  flush=True)
    d, r = results["diff"], results["read"]
    expected = {k: 0 for k in d["summary"]}
    for kind, per in (("missing", 2), ("broken_link", 2), ("mismatch", 2), ("duplicate", 2), ("orphan", 2),
                      ("stale", 2)):
        expected[kind] = per * (n // DRIFT)
    print(f"records: {args.records:,} canonical ({n:,} customers + {n:,} invoices); "
          f"system records read: {sum(d['compared'].values()):,}")
    print(f"findings: {d['summary']} (day totals: {d['summary']['totals']})")
    print(f"diff / read-only time: {d['seconds'] / r['seconds']:.2f}  (goal < 2)")
    print(f"diff peak RSS: {d['peak_rss_mb']:.0f} MB  (goal < 400 MB)")
    wrong = {k: (d["summary"][k], v) for k, v in expected.items() if k != "totals" and d["summary"][k] != v}
    print("finding counts as planted" if not wrong else f"finding counts differ from planted: {wrong}")


if __name__ == "__main__":
    main()
