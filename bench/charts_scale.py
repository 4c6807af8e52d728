"""The console's charts on a large store (issue 21, item 2): /charts' figures (``chart_page``,
grouped SQL per day) and the overview's money figures (``money_figures``: its totals grouped SQL
since this item, only subscriptions and prices decoded), side by side on the same store.

    python -m bench.charts_scale                       # 100,000 invoices, SQLite and PostgreSQL
    python -m bench.charts_scale --scale 5000 --db sqlite

Invoices over 24 months in three currencies, half of them paid (with a payment), one in ten
credited; the timings are the median of three runs of each, after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from mapping.model import CreditNote, Entity, Invoice, Payment
from mapping.money import Money
from state.crypto import Cipher, generate_key
from state.store import StateStore
from sync.chart_data import chart_page
from sync.web.console_data import money_figures

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CURRENCIES = ("USD", "EUR", "JPY")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def records(scale: int) -> Iterator[Entity]:
    for n in range(scale):
        currency = CURRENCIES[n % 3]
        issued = NOW - timedelta(days=n % 730, hours=n % 24)
        total = Money(1000 + n % 9000, currency)
        paid = n % 2 == 0
        yield Invoice(id=f"inv{n}", status="paid" if paid else "open", currency=currency, issued_at=issued,
                      paid_at=issued + timedelta(days=9) if paid else None, total=total,
                      amount_due=Money(0 if paid else total.minor, currency))
        if paid:
            yield Payment(id=f"pay{n}", invoice_id=f"inv{n}", amount=total, paid_at=issued + timedelta(days=9))
        if n % 10 == 1:
            yield CreditNote(id=f"cn{n}", invoice_id=f"inv{n}", currency=currency, total=Money(500, currency),
                             issued_at=issued + timedelta(days=3))


def seed(store: StateStore, scale: int, chunk: int = 5000) -> None:
    batch: list[Entity] = []
    for entity in records(scale):
        batch.append(entity)
        if len(batch) >= chunk:
            with store.transaction() as tx:
                tx.upsert_entities(batch, "stripe")
            batch = []
    if batch:
        with store.transaction() as tx:
            tx.upsert_entities(batch, "stripe")


def timed(store: StateStore, work: Callable[..., object]) -> float:
    def once() -> float:
        start = time.perf_counter()
        with store.transaction() as tx:
            work(tx, NOW)
        return time.perf_counter() - start
    once()
    return statistics.median(once() for _ in range(3))


def bench(url: str, scale: int) -> None:
    store = StateStore(url, cipher=Cipher(generate_key()), clock=lambda: NOW)
    store.init()
    start = time.perf_counter()
    seed(store, scale)
    seeded = time.perf_counter() - start
    charts = timed(store, chart_page)
    money = timed(store, money_figures)
    print(f"{store.safe_url}: {scale:,} invoices seeded in {seeded:.0f} s; chart_page (month, 12) "
          f"{charts * 1000:.0f} ms; money_figures {money * 1000:.0f} ms; ratio {money / charts:.1f}x")
    store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            bench(f"sqlite:///{folder}/hub.db", args.scale)
    if args.db in ("postgres", "both"):
        from tests.conftest import fresh_pg_schema  # a throwaway schema, dropped after
        with fresh_pg_schema(PG_URL) as url:
            bench(url, args.scale)


if __name__ == "__main__":
    main()
