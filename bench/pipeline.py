"""Pipeline benchmark: Stripe invoices -> map -> content hash -> store, against a bare upsert.

    /work/venv/bin/python -m bench.pipeline                    # 100,000 records (a few minutes)
    /work/venv/bin/python -m bench.pipeline --scale 1000000    # the issue's full size

Records are generated lazily in chunks (one transaction per chunk, 10,000 rows by default) and
each chunk is mapped once with the real ``mapping/stripe.py``; the mapped entities then go, side
by side in the same run, to

* ``hub``  - ``Tx.upsert_entities_bulk`` (and ``Tx.upsert_entities`` with ``--paths bulk,rows``):
  serialise + hash + store with versions, outcomes and history rows;
* ``bare`` - the minimum that stores the same rows: ``to_data`` -> JSON + SHA-256 of the same
  canonical JSON, then one ``executemany`` upsert of (id, payload, hash) per chunk with plain
  ``sqlite3`` / ``psycopg`` (``ON CONFLICT DO UPDATE … WHERE hash differs``).

The first load stores every record; the re-sync replays all of them with 5% changed. Printed:
throughput end to end (map included, the goal's figure) and of the store stage alone, their
hub/bare ratios, re-sync time as a share of the first load, rows written per changed record
(entity rows; and entity + history rows, history being the hub's per-change audit trail), and
peak RSS. PostgreSQL runs in a fresh schema dropped afterwards.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

import mapping.stripe as stripe_mapping
from bench.stripe_records import StableRefs, stripe_invoice
from mapping.model import VOLATILE_FIELDS, Entity, canonical_json, to_data
from state import schema
from state.store import StateStore

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
    written: int = 0  # rows written in the main table
    history: int = 0  # history rows written (hub only)
    outcomes: dict[str, int] = field(default_factory=dict)


class Side:
    """One way of storing the mapped chunks."""

    name = ""

    def __init__(self) -> None:
        self.passes: dict[str, Pass] = {}

    def store(self, entities: list[Entity], phase: str) -> None:
        raise NotImplementedError

    def finish(self, phase: str) -> None:
        """Count what the phase wrote."""

    def close(self) -> None:
        pass


class HubSide(Side):
    def __init__(self, backend: str, url: str, path: str) -> None:
        super().__init__()
        self.name = f"hub {path}"
        self.path = path
        self.now = FIRST
        self.store_ = StateStore(url, clock=lambda: self.now)
        self.store_.init()

    def store(self, entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass())
        self.now = RESYNC if phase == "resync" else FIRST
        start = time.perf_counter()
        with self.store_.transaction() as tx:
            method = tx.upsert_entities_bulk if self.path == "bulk" else tx.upsert_entities
            outcomes = method(entities, "stripe")
        p.seconds += time.perf_counter() - start
        for outcome in outcomes:
            p.outcomes[outcome] = p.outcomes.get(outcome, 0) + 1

    def finish(self, phase: str) -> None:
        at = RESYNC if phase == "resync" else FIRST
        with self.store_.engine.connect() as conn:
            self.passes[phase].written = int(conn.execute(select(func.count()).select_from(
                schema.entities).where(schema.entities.c.updated_at == at)).scalar_one())
            self.passes[phase].history = int(conn.execute(select(func.count()).select_from(
                schema.history).where(schema.history.c.at == at)).scalar_one())

    def close(self) -> None:
        self.store_.dispose()


class BareSqlite(Side):
    name = "bare sqlite3"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("CREATE TABLE bare (id TEXT PRIMARY KEY, payload TEXT NOT NULL,"
                          " content_hash TEXT NOT NULL)")

    def store(self, entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass())
        start = time.perf_counter()
        rows = [bare_row(e) for e in entities]
        self.conn.execute("BEGIN IMMEDIATE")
        cur = self.conn.executemany(
            "INSERT INTO bare (id, payload, content_hash) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE"
            " SET payload = excluded.payload, content_hash = excluded.content_hash"
            " WHERE bare.content_hash <> excluded.content_hash", rows)
        self.conn.execute("COMMIT")
        p.seconds += time.perf_counter() - start
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

    def store(self, entities: list[Entity], phase: str) -> None:
        p = self.passes.setdefault(phase, Pass())
        start = time.perf_counter()
        rows = [bare_row(e) for e in entities]
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bare (id, payload, content_hash) VALUES (%s, %s, %s) ON CONFLICT (id)"
                " DO UPDATE SET payload = excluded.payload, content_hash = excluded.content_hash"
                " WHERE bare.content_hash IS DISTINCT FROM excluded.content_hash", rows)
            written = cur.rowcount
        self.conn.commit()
        p.seconds += time.perf_counter() - start
        p.written += max(written, 0)

    def close(self) -> None:
        self.conn.close()


def chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def run_pass(sides: list[Side], n: int, batch: int, phase: str) -> tuple[float, float]:
    """Feed every chunk to every side; returns (generation seconds, mapping seconds)."""
    refs = StableRefs()
    gen = mapped = 0.0
    for k, chunk in enumerate(chunks(n, batch)):
        t0 = time.perf_counter()
        records = [stripe_invoice(i, revision(i, phase == "resync")) for i in chunk]
        t1 = time.perf_counter()
        entities = [stripe_mapping.to_canonical("invoice", r, refs) for r in records]
        t2 = time.perf_counter()
        gen += t1 - t0
        mapped += t2 - t1
        del records
        for j in range(len(sides)):  # rotate the order so no side always goes first
            sides[(k + j) % len(sides)].store(entities, phase)
    for side in sides:
        side.finish(phase)
    return gen, mapped


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>9,.0f}/s" if seconds else "        -"


def verdict(ok: bool) -> str:
    return "ok  " if ok else "MISS"


def report(backend: str, sides: list[Side], n: int, times: dict[str, tuple[float, float]]) -> None:
    changed = sum(1 for i in range(n) if revision(i, True))
    bare = sides[0]
    print(f"\n== {backend}: {n:,} invoices, 5% changed on re-sync ({changed:,} records) ==")
    for phase in ("first", "resync"):
        _gen, mapped = times[phase]
        print(f"  {phase:<6}  mapping shared by all sides: {mapped:7.1f} s ({rate(n, mapped)})")
        for side in sides:
            p = side.passes[phase]
            total = mapped + p.seconds
            extra = f"  outcomes {p.outcomes}" if p.outcomes else ""
            print(f"    {side.name:<14} store {p.seconds:7.1f} s ({rate(n, p.seconds)})"
                  f"   map+store {total:7.1f} s ({rate(n, total)}){extra}")
    first_map = times["first"][1]
    resync_map = times["resync"][1]
    b_first, b_re = bare.passes["first"], bare.passes["resync"]
    print(f"  {'':<22}{'':<8}goal   end-to-end  store-stage")
    for side in sides[1:]:
        f, r = side.passes["first"], side.passes["resync"]
        e2e = (first_map + b_first.seconds) / (first_map + f.seconds)
        stage = b_first.seconds / f.seconds
        print(f"  {side.name:<14} first-load throughput vs bare  >=0.5  {e2e:6.2f} {verdict(e2e >= 0.5)}"
              f"  {stage:6.2f} {verdict(stage >= 0.5)}")
        share = (resync_map + r.seconds) / (first_map + f.seconds)
        stage_share = r.seconds / f.seconds
        print(f"  {side.name:<14} re-sync time / first load      <=0.7  {share:6.2f} {verdict(share <= 0.7)}"
              f"  {stage_share:6.2f} {verdict(stage_share <= 0.7)}")
        ent = r.written / changed
        both = (r.written + r.history) / changed
        print(f"  {side.name:<14} rows written / changed rows    <=1.05 {ent:6.2f} {verdict(ent <= 1.05)}"
              f"  (entities {r.written:,}; with history rows {both:.2f}: {r.written:,} + {r.history:,})")
    be2e = (resync_map + b_re.seconds) / (first_map + b_first.seconds)
    print(f"  {bare.name:<14} re-sync time / first load             {be2e:6.2f}       "
          f"  {b_re.seconds / b_first.seconds:6.2f}       rows written / changed {b_re.written / changed:.2f}")


def bench_backend(backend: str, n: int, batch: int, paths: list[str], workdir: Path,
                  pg_url: str) -> None:
    schema_name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = None
    sides: list[Side] = []
    try:
        if backend == "sqlite":
            sides.append(BareSqlite(workdir / "bare.db"))
            sides += [HubSide(backend, f"sqlite:///{workdir}/hub_{p}.db", p) for p in paths]
        else:
            admin = create_engine(pg_url)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema_name}"))
            sides.append(BarePostgres(pg_url.replace("postgresql+psycopg://", "postgresql://"),
                                      schema_name))
            for p in paths:
                hub_schema = f"{schema_name}_{p}"
                with admin.begin() as conn:
                    conn.execute(text(f"CREATE SCHEMA {hub_schema}"))
                sides.append(HubSide(backend, f"{pg_url}?options=-csearch_path%3D{hub_schema}", p))
        times = {phase: run_pass(sides, n, batch, phase) for phase in ("first", "resync")}
        report(backend, sides, n, times)
    finally:
        for side in sides:
            side.close()
        if admin is not None:
            with admin.begin() as conn:
                for name in [schema_name, *(f"{schema_name}_{p}" for p in paths)]:
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
    parser.add_argument("--batch", type=int, default=10_000, help="rows per transaction (>= 10000)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--paths", default="bulk", help="hub paths: bulk, rows (upsert_entities)")
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    paths = [p for p in args.paths.split(",") if p]
    print(f"pipeline bench: scale {args.scale:,} invoices"
          f" ({'full' if args.scale >= 1_000_000 else 'reduced; --scale 1000000 for the full run'}),"
          f" {args.batch:,} rows per transaction, hub paths {paths}, python {sys.version.split()[0]},"
          f" sqlite {sqlite3.sqlite_version}")
    started = time.perf_counter()
    for backend in args.backends.split(","):
        if backend == "postgres" and not pg_reachable(args.pg_url):
            print(f"\n== postgres: skipped, {args.pg_url} unreachable ==")
            continue
        with tempfile.TemporaryDirectory(prefix="billhub-bench-") as tmp:
            bench_backend(backend, args.scale, args.batch, paths, Path(tmp), args.pg_url)
        print(f"  peak RSS so far: {peak_rss_mb():,.0f} MB")
    print(f"\npeak RSS {peak_rss_mb():,.0f} MB; total {time.perf_counter() - started:,.0f} s")
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
