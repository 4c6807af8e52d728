"""Pipeline benchmark: Stripe invoices through the path ``hub sync`` runs, beside the bare floor.

    python -m bench.pipeline                    # 100,000 records (a few minutes)
    python -m bench.pipeline --scale 2000       # a quick check
    python -m bench.pipeline --scale 1000000    # the issue's full size

Records are generated lazily in chunks (10,000 by default). In the same run, side by side:

* ``hub sync``  - the path ``hub sync`` really runs: the chunk as recorded Stripe connector pages
  (``--page`` records each, the connector's page size) read by ``sync.engine.Engine.pull``
  through a ``StripeConnector`` -> per page one transaction: prefetch, first contact, the real
  ``mapping/stripe.py``, ``Tx.upsert_entities``, links, the plan -> outbox items for QuickBooks
  and Xero, the cursor. Nothing is pushed (the targets are in-memory fakes that are never called);
* ``hub store`` - the store stage alone, NOT a path production runs by itself: each chunk mapped
  once, then ``Tx.upsert_entities`` in one transaction per chunk (serialise + hash + store with
  versions, outcomes and history) - what the sync's entity write costs, for comparison;
* ``bare``      - the minimum that stores the same rows: ``to_data`` -> JSON + SHA-256 of the same
  canonical JSON, then one ``executemany`` upsert of (id, payload, hash) per chunk with plain
  ``sqlite3`` / ``psycopg`` (``ON CONFLICT DO UPDATE … WHERE hash differs``).

The first load stores every record; the re-sync replays all of them with 5% changed (the sync
recognises the other 95% by the raw record's hash before mapping). The headline is ``hub sync``
against issue 22's goals: first load >= 0.7 of bare's throughput end to end, re-sync <= 0.3 of
the first load, rows written per changed record <= 1.05. Printed:
throughput end to end (mapping included; ``hub sync`` maps inside its pass) and of the store
stage alone, their ratios to bare measured in this run, re-sync time as a share of the first
load, rows written per changed record (entity rows; and entity + history rows, history being the
hub's per-change audit trail), outbox items planned, and peak RSS. PostgreSQL runs in fresh
schemas dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

import mapping.stripe as stripe_mapping
from bench.stripe_records import StableRefs, stripe_invoice
from connectors.base import Page, Record
from connectors.fake.connector import FakeConnector, FakeSystem
from connectors.stripe.client import StripeApi
from connectors.stripe.connector import StripeConnector
from connectors.stripe.streams import record_of
from mapping.model import VOLATILE_FIELDS, Entity, canonical_json, to_data
from state import schema
from state.store import StateStore
from sync.engine import Engine, SyncSummary
from sync.flows import routing_from_config

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHANGED_EVERY = 20  # 5% of the records change between the first load and the re-sync
FIRST = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RESYNC = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def revision(i: int, resync: bool) -> int:
    return 1 if resync and i % CHANGED_EVERY == 7 else 0


def bare_row(entity: Entity) -> tuple[str, str, str]:
    data = to_data(entity)
    hashable = {k: v for k, v in data.items() if k not in VOLATILE_FIELDS}
    return entity.id, json.dumps(data), hashlib.sha256(canonical_json(hashable).encode("ascii")).hexdigest()


@dataclass
class Pass:
    seconds: float = 0.0  # store stage: everything after mapping
    cpu: float = 0.0  # the same, in this process's CPU seconds (PostgreSQL's own work not included)
    written: int = 0  # rows written in the main table
    history: int = 0  # history rows written (hub only)
    planned: int | None = None  # outbox items queued (hub sync only)
    outcomes: dict[str, int] = field(default_factory=dict)


class Side:
    """One way of storing the mapped chunks."""

    name = ""
    maps_itself = False  # True when its seconds include mapping (the sync reads raw records)

    def __init__(self) -> None:
        self.passes: dict[str, Pass] = {}
        self.analyzed = 0.0  # seconds spent in analyze(), not timed in any pass

    def store(self, records: Sequence[dict[str, object]], entities: list[Entity], phase: str) -> None:
        raise NotImplementedError

    def finish(self, phase: str) -> None:
        """Count what the phase wrote."""

    def analyze(self) -> None:
        """PostgreSQL: refresh the planner's statistics, as autovacuum would."""

    def close(self) -> None:
        pass


class HubSide(Side):
    """The store stage alone: a mapped chunk to ``Tx.upsert_entities`` in one transaction."""

    name = "hub store"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.now = FIRST
        self.store_ = StateStore(url, clock=lambda: self.now)
        self.store_.init()

    def store(self, records: Sequence[dict[str, object]], entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass())
        self.now = RESYNC if phase == "resync" else FIRST
        start, cpu = time.perf_counter(), time.process_time()
        with self.store_.transaction() as tx:
            outcomes = tx.upsert_entities(entities, "stripe")
        p.seconds += time.perf_counter() - start
        p.cpu += time.process_time() - cpu
        for outcome in outcomes:
            p.outcomes[outcome] = p.outcomes.get(outcome, 0) + 1

    def finish(self, phase: str) -> None:
        at = RESYNC if phase == "resync" else FIRST
        with self.store_.engine.connect() as conn:
            self.passes[phase].written = int(conn.execute(select(func.count()).select_from(
                schema.entities).where(schema.entities.c.updated_at == at)).scalar_one())
            self.passes[phase].history = int(conn.execute(select(func.count()).select_from(
                schema.history).where(schema.history.c.at == at)).scalar_one())
            if self.passes[phase].planned is not None:
                self.passes[phase].planned = int(conn.execute(select(func.count()).select_from(
                    schema.outbox).where(schema.outbox.c.created_at == at)).scalar_one())

    def analyze(self) -> None:
        if not self.store_.is_postgres:
            return  # SQLite's planner takes an index without statistics
        started = time.perf_counter()
        with self.store_.engine.begin() as conn:
            for table in schema.metadata.sorted_tables:
                conn.execute(text(f"ANALYZE {table.name}"))
        self.analyzed += time.perf_counter() - started

    def close(self) -> None:
        self.store_.dispose()


class RecordedStripe(StripeConnector):
    """The Stripe connector with its change feed replaced by recorded pages; mapping, natural
    keys and everything else are the connector's own. Its API client is never called."""

    def __init__(self) -> None:
        super().__init__("stripe", StripeApi("sk_bench", "http://127.0.0.1:9"))
        self.pages: list[Page] = []

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        yield from self.pages


class SyncSide(HubSide):
    """The path ``hub sync`` runs: recorded pages -> ``Engine.pull`` -> plan -> outbox."""

    name = "hub sync"
    maps_itself = True

    def __init__(self, url: str, page: int) -> None:
        super().__init__(url)
        self.page = page
        self.stripe = RecordedStripe()
        # Targets for the plan: invoices flow to both ledgers; they are queued, never pushed.
        targets = {name: FakeConnector(FakeSystem(name), kind=name) for name in ("quickbooks", "xero")}
        self.engine = Engine(self.store_, {"stripe": self.stripe, **targets}, routing_from_config({}, {}))
        self.sequence = 0

    def store(self, records: Sequence[dict[str, object]], entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass(planned=0))
        self.now = RESYNC if phase == "resync" else FIRST
        pages = []
        for start in range(0, len(records), self.page):
            self.sequence += 1
            page: list[Record] = [record_of("invoice", r) for r in records[start:start + self.page]]
            pages.append(Page(page, cursor=f"bench-{self.sequence}"))
        self.stripe.pages = pages
        summary = SyncSummary()
        started, cpu = time.perf_counter(), time.process_time()
        self.engine.pull("stripe", "invoice", summary, None)
        p.seconds += time.perf_counter() - started
        p.cpu += time.process_time() - cpu
        stats = summary.stats("stripe", "invoice")
        for outcome in ("added", "changed", "unchanged", "failed", "held", "skipped"):
            if getattr(stats, outcome):
                p.outcomes[outcome] = p.outcomes.get(outcome, 0) + getattr(stats, outcome)


class BareSqlite(Side):
    name = "bare sqlite3"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("CREATE TABLE bare (id TEXT PRIMARY KEY, payload TEXT NOT NULL,"
                          " content_hash TEXT NOT NULL)")

    def store(self, records: Sequence[dict[str, object]], entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass())
        start, cpu = time.perf_counter(), time.process_time()
        rows = [bare_row(e) for e in entities]
        self.conn.execute("BEGIN IMMEDIATE")
        cur = self.conn.executemany(
            "INSERT INTO bare (id, payload, content_hash) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE"
            " SET payload = excluded.payload, content_hash = excluded.content_hash"
            " WHERE bare.content_hash <> excluded.content_hash", rows)
        self.conn.execute("COMMIT")
        p.seconds += time.perf_counter() - start
        p.cpu += time.process_time() - cpu
        p.written += cur.rowcount

    def close(self) -> None:
        self.conn.close()


class BarePostgres(Side):
    name = "bare psycopg"

    def __init__(self, conninfo: str, schema_name: str) -> None:
        import psycopg

        super().__init__()
        self.conn = psycopg.connect(conninfo, options=f"-csearch_path={schema_name}")
        self.conn.execute("CREATE TABLE bare (id varchar(36) PRIMARY KEY, payload json NOT NULL,"
                          " content_hash varchar(64) NOT NULL)")
        self.conn.commit()

    def store(self, records: Sequence[dict[str, object]], entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass())
        start, cpu = time.perf_counter(), time.process_time()
        rows = [bare_row(e) for e in entities]
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bare (id, payload, content_hash) VALUES (%s, %s, %s) ON CONFLICT (id)"
                " DO UPDATE SET payload = excluded.payload, content_hash = excluded.content_hash"
                " WHERE bare.content_hash IS DISTINCT FROM excluded.content_hash", rows)
            written = cur.rowcount
        self.conn.commit()
        p.seconds += time.perf_counter() - start
        p.cpu += time.process_time() - cpu
        p.written += max(written, 0)

    def close(self) -> None:
        self.conn.close()


def chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def run_pass(sides: list[Side], n: int, batch: int, phase: str, analyze: bool = False) -> tuple[float, float, float]:
    """Feed every chunk to every side; returns (generation seconds, mapping seconds, mapping CPU).
    ``analyze``: after each chunk the hub sides' PostgreSQL statistics are refreshed, as
    autovacuum does on a server that runs it (the test server runs with autovacuum off: without
    statistics the planner scans whole tables for a page's reads by id, and a first load of
    100,000 invoices turns quadratic)."""
    refs = StableRefs()
    gen = mapped = mapped_cpu = 0.0
    for k, chunk in enumerate(chunks(n, batch)):
        t0 = time.perf_counter()
        records = [stripe_invoice(i, revision(i, phase == "resync")) for i in chunk]
        t1, c1 = time.perf_counter(), time.process_time()
        entities = [stripe_mapping.to_canonical("invoice", r, refs) for r in records]
        t2 = time.perf_counter()
        mapped_cpu += time.process_time() - c1
        gen += t1 - t0
        mapped += t2 - t1
        for j in range(len(sides)):  # rotate the order so no side always goes first
            sides[(k + j) % len(sides)].store(records, entities, phase)
        del records
        if analyze:
            for side in sides:
                side.analyze()
    for side in sides:
        side.finish(phase)
    return gen, mapped, mapped_cpu


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>9,.0f}/s" if seconds else "        -"


def verdict(ok: bool) -> str:
    return "ok  " if ok else "MISS"


def report(backend: str, sides: list[Side], n: int, times: dict[str, tuple[float, float, float]]) -> None:
    changed = sum(1 for i in range(n) if revision(i, True))
    bare = sides[0]
    print(f"\n== {backend}: {n:,} invoices, 5% changed on re-sync ({changed:,} records) ==")

    def end_to_end(side: Side, phase: str) -> float:
        """Seconds from Stripe objects to stored rows (the sync maps inside its own pass)."""
        seconds = side.passes[phase].seconds
        return seconds if side.maps_itself else times[phase][1] + seconds

    for phase in ("first", "resync"):
        _gen, mapped, _cpu = times[phase]
        print(f"  {phase:<6}  mapping shared by the store sides: {mapped:7.1f} s ({rate(n, mapped)})")
        for side in sides:
            p = side.passes[phase]
            stage = "whole pass" if side.maps_itself else "store"
            extra = f"  outcomes {p.outcomes}" if p.outcomes else ""
            if p.planned is not None:
                extra += f"  outbox +{p.planned:,}"
            print(f"    {side.name:<10} {stage:<10} {p.seconds:7.1f} s ({rate(n, p.seconds)})"
                  f"   end to end {end_to_end(side, phase):7.1f} s ({rate(n, end_to_end(side, phase))}){extra}")
    b_first, b_re = bare.passes["first"], bare.passes["resync"]
    print(f"  {'':<44}goal   end-to-end  store-stage")
    # the headline first: the path production runs; the store stage alone after it
    for side in sorted(sides[1:], key=lambda s: not s.maps_itself):
        f, r = side.passes["first"], side.passes["resync"]
        if not side.maps_itself:
            print(f"  ({side.name}: the store stage alone, not a production path; for comparison)")
        e2e = end_to_end(bare, "first") / end_to_end(side, "first")
        stage = "" if side.maps_itself else f"  {b_first.seconds / f.seconds:6.2f}"
        print(f"  {side.name:<10} first-load throughput / bare's    >=0.7  {e2e:6.2f} {verdict(e2e >= 0.7)}{stage}")
        share = end_to_end(side, "resync") / end_to_end(side, "first")
        stage = "" if side.maps_itself else f"  {r.seconds / f.seconds:6.2f}"
        print(f"  {side.name:<10} re-sync time / first load         <=0.3  {share:6.2f} {verdict(share <= 0.3)}{stage}")
        ent = r.written / changed
        both = (r.written + r.history) / changed
        print(f"  {side.name:<10} rows written / changed rows       <=1.05 {ent:6.2f} {verdict(ent <= 1.05)}"
              f"  (entities {r.written:,}; with history rows {both:.2f}: {r.written:,} + {r.history:,})")
    def cpu_end_to_end(side: Side, phase: str) -> float:
        cpu = side.passes[phase].cpu
        return cpu if side.maps_itself else times[phase][2] + cpu

    print("  in CPU seconds of this process (steadier than wall time on a shared machine; on PostgreSQL"
          " the server's work is not counted):")
    for side in sorted(sides[1:], key=lambda s: not s.maps_itself):
        first = cpu_end_to_end(bare, "first") / cpu_end_to_end(side, "first")
        share = cpu_end_to_end(side, "resync") / cpu_end_to_end(side, "first")
        print(f"  {side.name:<10} first load bare CPU / its CPU  {first:6.2f}   re-sync CPU / first load CPU {share:6.2f}"
              f"   ({cpu_end_to_end(side, 'first'):,.1f} s and {cpu_end_to_end(side, 'resync'):,.1f} s;"
              f" bare {cpu_end_to_end(bare, 'first'):,.1f} s)")
    if len(sides) == 3:
        hub_store, hub_sync = sides[1], sides[2]
        for phase in ("first", "resync"):
            ratio = end_to_end(hub_store, phase) / end_to_end(hub_sync, phase)
            print(f"  hub sync throughput / hub store's, {phase:<6}  {ratio:6.2f}"
                  f"  (the share of the sync's time that is map + store)")
    be2e = end_to_end(bare, "resync") / end_to_end(bare, "first")
    print(f"  {bare.name:<10} re-sync time / first load                {be2e:6.2f}  "
          f"  {b_re.seconds / b_first.seconds:6.2f}  rows written / changed {b_re.written / changed:.2f}")


def bench_backend(backend: str, n: int, batch: int, page: int, kinds: list[str], workdir: Path,
                  pg_url: str, analyze: bool = False) -> None:
    schema_name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = None
    sides: list[Side] = []

    def hub(kind: str, url: str) -> Side:
        return SyncSide(url, page) if kind == "sync" else HubSide(url)

    try:
        if backend == "sqlite":
            sides.append(BareSqlite(workdir / "bare.db"))
            sides += [hub(k, f"sqlite:///{workdir}/hub_{k}.db") for k in kinds]
        else:
            admin = create_engine(pg_url)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema_name}"))
            sides.append(BarePostgres(pg_url.replace("postgresql+psycopg://", "postgresql://"),
                                      schema_name))
            for k in kinds:
                hub_schema = f"{schema_name}_{k}"
                with admin.begin() as conn:
                    conn.execute(text(f"CREATE SCHEMA {hub_schema}"))
                sides.append(hub(k, f"{pg_url}?options=-csearch_path%3D{hub_schema}"))
        times = {phase: run_pass(sides, n, batch, phase, analyze) for phase in ("first", "resync")}
        report(backend, sides, n, times)
        if analyze and backend == "postgres":
            print(f"  (statistics refreshed by ANALYZE after each chunk, as autovacuum would: "
                  f"{sum(side.analyzed for side in sides):.1f} s, not counted above)")
    finally:
        for side in sides:
            side.close()
        if admin is not None:
            with admin.begin() as conn:
                for name in [schema_name, *(f"{schema_name}_{k}" for k in kinds)]:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            admin.dispose()


def pg_reachable(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=100_000, help="invoices (issue: 1000000)")
    parser.add_argument("--batch", type=int, default=10_000,
                        help="records per chunk; hub store: one transaction per chunk")
    parser.add_argument("--page", type=int, default=100,
                        help="records per connector page; hub sync: one transaction per page")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sides", default="store,sync", help="hub sides beside bare: store, sync")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--analyze", choices=("on", "off"), default="on",
                        help="PostgreSQL: ANALYZE the hub's tables after each chunk, as autovacuum would"
                             " (off: the test server's own state, autovacuum off, no statistics)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.sides.split(",") if k]
    print(f"pipeline bench: scale {args.scale:,} invoices"
          f" ({'full' if args.scale >= 1_000_000 else 'reduced; --scale 1000000 for the full run'}),"
          f" chunks of {args.batch:,}, pages of {args.page:,}, hub sides {kinds}, python {sys.version.split()[0]},"
          f" sqlite {sqlite3.sqlite_version}")
    started = time.perf_counter()
    for backend in args.backends.split(","):
        if backend == "postgres" and not pg_reachable(args.pg_url):
            print(f"\n== postgres: skipped, {args.pg_url} unreachable ==")
            continue
        with tempfile.TemporaryDirectory(prefix="billhub-bench-") as tmp:
            bench_backend(backend, args.scale, args.batch, args.page, kinds, Path(tmp), args.pg_url,
                          analyze=args.analyze == "on")
        print(f"  peak RSS so far: {peak_rss_mb():,.0f} MB")
    print(f"\npeak RSS {peak_rss_mb():,.0f} MB; total {time.perf_counter() - started:,.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
