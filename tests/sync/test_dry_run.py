"""hub sync --dry-run's table (issue 20, item 5) on both stores: per connection and entity, how
many records would be linked, created or updated, and why, with nothing written anywhere (on
PostgreSQL the preview runs in savepoints of the rolled-back transaction, not the real store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mapping.model import Customer, to_data
from state.store import StateStore
from tests.conftest import FrozenClock
from tests.sync.test_engine import World


@pytest.fixture
def world(store: StateStore, clock: FrozenClock) -> Iterator[World]:
    yield World(store, clock)


def test_the_dry_run_links_what_the_ledger_has_and_creates_only_the_rest(world: World) -> None:
    for i in range(3):
        world.customer(i)
    for i in range(2):  # the ledger already holds two of them, typed there (no hub marker)
        data = to_data(Customer("x", name=f"Customer {i}", email=f"C{i}@example.com"))
        data.pop("id")
        world.ledger.put("customer", data)
    summary = world.sync(dry_run=True)
    rows = {(r["connection"], r["entity"]): r for r in summary.first_contact}
    ledger = rows[("quickbooks", "customer")]
    assert (ledger["linked"], ledger["created"], ledger["updated"], ledger["held"]) == (2, 1, 0, 0)
    assert any(why.startswith("created: no customer in quickbooks matches") for why in ledger["why"])
    assert rows[("salesforce", "customer")]["created"] == 3
    assert sorted((p["system"], p["operation"]) for p in summary.planned) == [
        ("quickbooks", "create"), *[("salesforce", "create")] * 3]
    assert len(world.ledger.live("customer")) == 2 and world.crm.live("customer") == {}
    with world.store.transaction() as tx:
        assert tx.count_entities() == {} and tx.outbox_depth() == {}

    real = world.sync()  # the real pass does what the dry run said
    assert real.stats("quickbooks", "customer").written == 1
    assert real.stats("salesforce", "customer").written == 3


def test_an_ambiguous_first_contact_creates_no_third_copy(world: World) -> None:
    """Two ledger customers match one hub customer: a duplicate finding, and the create planned
    when Stripe was read is held, in the dry run and in the real pass, never sent."""
    world.customer(1)
    for name in ("Customer 1", "Customer One"):
        world.ledger.put("customer", {"name": name, "email": "c1@example.com"})
    dry = world.sync(dry_run=True)
    ledger = {(r["connection"], r["entity"]): r for r in dry.first_contact}[("quickbooks", "customer")]
    assert ledger["created"] == 0 and ledger["held"] >= 1
    assert [p for p in dry.planned if p["system"] == "quickbooks"] == []
    real = world.sync()
    assert len(world.ledger.live("customer")) == 2  # no third copy
    assert real.stats("quickbooks", "customer").written == 0 and real.attention()
    with world.store.transaction() as tx:
        assert [f.system for f in tx.list_findings(kind="duplicate")] == ["quickbooks"]
        assert list(tx.links_in("quickbooks", "customer")) == []


def test_a_ledger_read_before_its_source_is_linked_and_not_written(world: World) -> None:
    """The ledger first (its customers sighted, nothing to link yet), then the source: the hub
    customers link to the sighted ones, which already agree, so nothing is written there."""
    for i in range(2):
        world.customer(i)
        data = to_data(Customer("x", name=f"Customer {i}", email=f"c{i}@example.com"))
        data.pop("id")
        world.ledger.put("customer", data)
    world.sync(systems=["quickbooks"])
    summary = world.sync()
    assert summary.stats("quickbooks", "customer").written == 0
    assert summary.stats("quickbooks", "customer").unchanged == 2
    assert len(world.ledger.live("customer")) == 2 and not any(c.startswith("write") for c in world.ledger.calls)
    with world.store.transaction() as tx:
        assert sum(1 for _ in tx.links_in("quickbooks", "customer")) == 2
