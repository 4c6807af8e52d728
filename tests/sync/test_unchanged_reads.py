"""A change-feed page's records read exactly as last time cost no mapping and no write (issue 22,
item 1): the link keeps the raw record's hash; a full read maps every record again."""

from __future__ import annotations

from connectors.base import Record
from connectors.fake.connector import FakeConnector, FakeSystem
from mapping.model import Customer, Entity, to_data
from mapping.refs import RefResolver
from state.store import StateStore
from sync.engine import Engine, SyncSummary
from sync.flows import routing_from_config


class CountingConnector(FakeConnector):
    """The fake Stripe, counting the records it is asked to map (by external id)."""

    def __init__(self, system: FakeSystem) -> None:
        super().__init__(system, kind="stripe")
        self.mapped: list[str] = []

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        self.mapped.append(record.external_id)
        return super().to_canonical(record, refs)


def _put(system: FakeSystem, i: int, email: str | None = None, ext: str | None = None) -> str:
    data = to_data(Customer("x", name=f"Customer {i}", email=email or f"c{i}@example.com"))
    data.pop("id")
    return system.put("customer", data, ext)


def _page(connector: FakeConnector) -> list[Record]:
    return [r for page in connector.fetch_all("customer") for r in page.records]


def test_a_page_read_again_maps_and_writes_only_what_changed(store: StateStore) -> None:
    stripe = FakeSystem("stripe")
    connector = CountingConnector(stripe)
    engine = Engine(store, {"stripe": connector}, routing_from_config({}, {}))
    ids = [_put(stripe, i) for i in range(3)]
    first = SyncSummary()
    with store.transaction() as tx:
        engine.ingester.ingest(tx, connector, _page(connector), first, None, skip_unchanged=True)
    assert first.stats("stripe", "customer").added == 3
    history = store_history(store)

    _put(stripe, 1, email="one.moved@example.com", ext=ids[1])  # Stripe owns a customer's email
    connector.mapped.clear()
    again = SyncSummary()
    with store.transaction() as tx:
        engine.ingester.ingest(tx, connector, _page(connector), again, None, skip_unchanged=True)
    stats = again.stats("stripe", "customer")
    assert (stats.read, stats.unchanged, stats.changed) == (3, 2, 1)
    assert set(connector.mapped) == {ids[1]}  # the two unchanged were never mapped
    assert store_history(store) == history + 1  # one write: the changed record's

    # Without the skip (a full read, a repair) every record is mapped again, and still only
    # the changed content would be written: here nothing changed since.
    connector.mapped.clear()
    full = SyncSummary()
    with store.transaction() as tx:
        engine.ingester.ingest(tx, connector, _page(connector), full, None)
    assert set(connector.mapped) == set(ids)
    assert full.stats("stripe", "customer").unchanged == 3
    assert store_history(store) == history + 1


def test_a_record_whose_hub_record_was_deleted_is_not_skipped(store: StateStore) -> None:
    stripe = FakeSystem("stripe")
    connector = CountingConnector(stripe)
    engine = Engine(store, {"stripe": connector}, routing_from_config({}, {}))
    ext = _put(stripe, 7)
    with store.transaction() as tx:
        engine.ingester.ingest(tx, connector, _page(connector), SyncSummary(), None, skip_unchanged=True)
        canonical = tx.canonical_for("stripe", "customer", ext)
        assert canonical is not None
        stored = tx.get_entity(canonical)
        assert stored is not None
        tx.upsert_entity(stored.entity(), "hub", deleted=True)
    connector.mapped.clear()
    with store.transaction() as tx:
        engine.ingester.ingest(tx, connector, _page(connector), SyncSummary(), None, skip_unchanged=True)
    assert connector.mapped == [ext] * len(connector.mapped) and connector.mapped  # mapped again


def store_history(store: StateStore) -> int:
    with store.transaction() as tx:
        return tx.count_history()
