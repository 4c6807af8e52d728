"""The engine on in-memory fake systems: exactly once, echoes, ownership, first contact."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from connectors.base import ConflictError, ConnectorError, Outbound, QuotaExhausted, WriteResult
from connectors.fake.connector import FakeConnector, FakeSystem
from connectors.retry import RetryPolicy
from mapping.model import Customer, Deal, DealLine, Invoice, InvoiceLine, Money, Price, Product, to_data
from state.store import StateStore
from sync.engine import Engine, SyncSummary
from sync.flows import Routing, routing_from_config
from tests.conftest import FrozenClock, make_store


def _every_customer_to_the_ledger() -> Routing:
    """The default flows, but a customer goes to the ledger with nothing billed: these tests are
    about the engine's mechanics on bare customers (the rule that keeps a prospect out of the
    ledgers is tested in tests/e2e/test_crm_billing.py)."""
    routing = routing_from_config({}, {})
    flows = [dataclasses.replace(f, when=lambda _entity: True) if f.entity_type == "customer" else f
             for f in routing.flows]
    return Routing(flows, routing.ownership)


class World:
    """A payment system, a ledger and a CRM, all fake, wired to one engine."""

    def __init__(self, store: StateStore, clock: FrozenClock) -> None:
        self.store = store
        self.clock = clock
        self.stripe = FakeSystem("stripe")
        self.ledger = FakeSystem("quickbooks")
        self.crm = FakeSystem("salesforce")
        no_sleep = RetryPolicy(sleep=lambda _s: None, max_attempts=2)
        self.connectors = {
            "stripe": FakeConnector(self.stripe, policy=no_sleep, kind="stripe"),
            "quickbooks": FakeConnector(self.ledger, policy=no_sleep, kind="quickbooks"),
            "salesforce": FakeConnector(self.crm, policy=no_sleep, kind="salesforce"),
        }
        self.engine = Engine(store, self.connectors, _every_customer_to_the_ledger(), backoff_seconds=10,
                             max_attempts=4)

    def customer(self, i: int, **extra: object) -> str:
        data = to_data(Customer("x", name=f"Customer {i}", email=f"c{i}@example.com"))
        data.pop("id")
        data.update(extra)
        return self.stripe.put("customer", data)

    def sync(self, **kw: object):  # type: ignore[no-untyped-def]
        return self.engine.sync(**kw)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: object, clock: FrozenClock) -> Iterator[World]:
    store = make_store(f"sqlite:///{tmp_path}/hub.db", clock)
    yield World(store, clock)
    store.dispose()


def marked(system: FakeSystem, entity_type: str) -> list[str]:
    return sorted(str(d.get("hub_id")) for d in system.live(entity_type).values())


def test_customers_reach_every_target_exactly_once(world: World) -> None:
    for i in range(30):
        world.customer(i)
    summary = world.sync()
    assert summary.stats("stripe", "customer").added == 30
    assert len(world.ledger.live("customer")) == 30 and len(world.crm.live("customer")) == 30
    assert len(set(marked(world.ledger, "customer"))) == 30
    second = world.sync()
    assert second.totals().written == 0 and second.totals().added == 0
    assert len(world.ledger.live("customer")) == 30


def test_echoes_of_the_hubs_own_writes_are_dropped(world: World) -> None:
    for i in range(5):
        world.customer(i)
    world.sync()
    # The ledger and CRM feeds now return the records the hub wrote: nothing is re-planned.
    again = world.sync()
    assert again.stats("quickbooks", "customer").read == 0 or again.stats("quickbooks", "customer").changed == 0
    with world.store.transaction() as tx:
        assert tx.outbox_depth().get("pending", 0) == 0
    assert again.totals().written == 0


def test_a_field_changed_by_a_system_that_does_not_own_it_is_not_propagated(world: World) -> None:
    ext = world.customer(1)
    world.sync()
    (ledger_id,) = world.ledger.live("customer")
    data = world.ledger.live("customer")[ledger_id]
    world.ledger.put("customer", {**data, "email": "edited-in-ledger@example.com"}, ledger_id)
    summary = world.sync()
    assert summary.totals().written == 0
    assert world.stripe.live("customer")[ext]["email"] == "c1@example.com"
    assert world.crm.live("customer")[next(iter(world.crm.live("customer")))]["email"] == "c1@example.com"


def test_an_owned_change_propagates_once(world: World) -> None:
    ext = world.customer(1)
    world.sync()
    data = world.stripe.live("customer")[ext]
    world.stripe.put("customer", {**data, "email": "new@example.com"}, ext)
    summary = world.sync()
    assert summary.stats("quickbooks", "customer").written == 1
    assert [d["email"] for d in world.ledger.live("customer").values()] == ["new@example.com"]
    assert world.sync().totals().written == 0


def test_apply_then_fail_is_recovered_without_duplicates(world: World) -> None:
    for i in range(10):
        world.customer(i)
    world.ledger.apply_then_fail_remaining = 3
    world.sync()
    world.clock.advance(minutes=5)
    world.sync()
    assert len(world.ledger.live("customer")) == 10
    assert len(set(marked(world.ledger, "customer"))) == 10
    with world.store.transaction() as tx:
        assert tx.outbox_depth() == {"done": 20}


def test_a_change_while_a_create_is_unknown_still_finds_what_that_create_made(world: World) -> None:
    """The write that replaces one of unknown outcome inherits the doubt: its first try looks
    the record up by the hub's marker instead of creating it again under its own new key."""
    customer = world.customer(1)
    world.ledger.apply_then_fail_remaining = 2  # the create lands, both tries lose the answer
    world.sync()
    assert len(world.ledger.live("customer")) == 1
    with world.store.transaction() as tx:
        assert tx.outbox_depth().get("pending", 0) >= 1  # outcome unknown, to be retried
    world.stripe.put("customer", {**world.stripe.live("customer")[customer], "email": "new1@example.com"}, customer)
    world.clock.advance(minutes=5)
    world.sync(systems=["stripe"])  # the change comes in before the ledger is read again
    world.engine.push("quickbooks", SyncSummary(), None)
    ledger = list(world.ledger.live("customer").values())
    assert len(ledger) == 1 and ledger[0]["email"] == "new1@example.com"


def test_first_contact_links_existing_ledger_records_and_creates_none(world: World) -> None:
    for i in range(8):
        world.customer(i)
        data = to_data(Customer("x", name=f"Customer {i}", email=f"C{i}@Example.com "))
        data.pop("id")
        world.ledger.put("customer", data)
    world.sync()
    assert len(world.ledger.live("customer")) == 8  # linked, not created
    with world.store.transaction() as tx:
        assert sum(1 for _ in tx.links_in("quickbooks", "customer")) == 8


def test_an_ambiguous_match_is_a_finding_and_nothing_is_written(world: World) -> None:
    world.customer(1)
    world.sync(systems=["stripe"])  # stripe only: the hub knows the customer, nothing pushed yet
    for _ in range(2):
        world.ledger.put("customer", {"name": "Customer 1", "email": "c1@example.com"})
    with world.store.transaction() as tx:  # drop the queued pushes to isolate first contact
        for item in tx.list_outbox("pending"):
            tx.drop_outbox(item.id)
    world.sync(systems=["quickbooks"])
    with world.store.transaction() as tx:
        findings = tx.list_findings(kind="duplicate")
    assert len(findings) == 1 and findings[0].system == "quickbooks"
    assert sorted(findings[0].external_ids) == sorted(world.ledger.live("customer"))
    assert len(world.ledger.live("customer")) == 2
    world.sync()  # a full pass: the held customer is still not written anywhere in the ledger
    assert len(world.ledger.live("customer")) == 2
    with world.store.transaction() as tx:
        assert list(tx.links_in("quickbooks", "customer")) == []


def test_dry_run_reports_planned_writes_and_changes_nothing(world: World) -> None:
    for i in range(3):
        world.customer(i)
    summary = world.sync(dry_run=True)
    assert {p["system"] for p in summary.planned} == {"quickbooks", "salesforce"}
    assert len(summary.planned) == 6 and all(p["operation"] == "create" for p in summary.planned)
    assert all("email" in p["changed_fields"] for p in summary.planned)
    assert world.ledger.live("customer") == {} and not any(c.startswith("write") for c in world.ledger.calls)
    with world.store.transaction() as tx:
        assert tx.count_entities() == {} and tx.outbox_depth() == {}
        assert tx.get_cursor("stripe", "customer") is None


def test_a_record_the_target_rejects_is_dead_lettered_with_a_finding(world: World) -> None:
    world.customer(1)
    world.customer(2)
    world.ledger.reject = lambda p: "tax id format" if p.get("name") == "Customer 2" else None
    world.sync()
    assert len(world.ledger.live("customer")) == 1
    with world.store.transaction() as tx:
        dead = tx.list_outbox("dead")
        findings = tx.list_findings(kind="missing")
    assert len(dead) == 1 and "tax id format" in (dead[0].last_error or "")
    assert findings and "tax id format" in findings[0].detail


def test_an_invoice_waits_for_its_customer_in_the_target(world: World) -> None:
    world.ledger.reject = lambda p: "name too long" if p.get("name") == "Customer 1" else None
    cus = world.customer(1)
    world.sync()
    with world.store.transaction() as tx:
        customer_id = tx.canonical_for("stripe", "customer", cus)
    assert customer_id is not None
    line = InvoiceLine("Plan", Decimal(1), Money(1000, "USD"), Money(1000, "USD"))
    invoice = to_data(Invoice("x", customer_id=customer_id, number="INV-1", status="open", lines=(line,),
                              subtotal=Money(1000, "USD"), total=Money(1000, "USD"), amount_due=Money(1000, "USD")))
    invoice.pop("id")
    world.stripe.put("invoice", invoice)
    summary = world.sync()
    assert world.ledger.live("invoice") == {}
    assert summary.stats("quickbooks", "invoice").retried == 1
    assert len(world.crm.live("customer")) == 1  # the CRM, which accepted the customer, is unaffected


def test_a_won_deal_becomes_a_stripe_subscription(world: World) -> None:
    product = to_data(Product("x", name="Pro"))
    product.pop("id")
    prod_ext = world.stripe.put("product", product)
    world.sync()
    with world.store.transaction() as tx:
        product_id = tx.canonical_for("stripe", "product", prod_ext)
    assert product_id is not None
    price = to_data(Price("x", product_id=product_id, unit_amount=Money(4900, "USD"), recurring_interval="month"))
    price.pop("id")
    world.stripe.put("price", price)
    account = to_data(Customer("x", name="Acme", email="ap@acme.test"))
    account.pop("id")
    acc_ext = world.crm.put("customer", account)
    world.sync()
    with world.store.transaction() as tx:
        account_id = tx.canonical_for("salesforce", "customer", acc_ext)
    assert account_id is not None
    deal = to_data(Deal("x", customer_id=account_id, name="Acme Pro", stage="Closed Won", won=True,
                        lines=(DealLine(product_id, "Pro", Decimal(3), Money(4900, "USD"), "month"),)))
    deal.pop("id")
    world.crm.put("deal", deal)
    world.sync()
    (sub,) = world.stripe.live("subscription").values()
    assert sub["customer_id"] == account_id and sub["items"][0]["quantity"] == 3
    assert [c["email"] for c in world.stripe.live("customer").values()] == ["ap@acme.test"]
    world.sync()
    assert len(world.stripe.live("subscription")) == 1


def test_an_erased_customer_is_never_reimported_nor_propagated(world: World) -> None:
    from sync.privacy import forget_customer

    ext = world.customer(1)
    world.sync()
    with world.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "customer", ext)
        assert canonical is not None
        forget_customer(tx, canonical)
    data = world.stripe.live("customer")[ext]
    world.stripe.put("customer", {**data, "email": "still-personal@example.com"}, ext)
    summary = world.sync()
    assert summary.totals().written == 0
    with world.store.transaction() as tx:
        stored = tx.get_entity(canonical)
        assert stored is not None and stored.data["email"] is None and stored.data["name"] == "[erased]"
        assert tx.outbox_depth().get("pending", 0) == 0
    assert [c["email"] for c in world.ledger.live("customer").values()] == ["c1@example.com"]  # books untouched


def test_a_change_the_target_cannot_express_is_not_written_there(world: World) -> None:
    class NoEmailCrm(FakeConnector):
        """A CRM whose account has no email field (as a Salesforce Account)."""

        def from_canonical(self, entity, refs):  # type: ignore[no-untyped-def]
            payload = super().from_canonical(entity, refs)
            payload.pop("email", None)
            return payload

    world.connectors["salesforce"] = NoEmailCrm(world.crm, policy=RetryPolicy(sleep=lambda _s: None),
                                                kind="salesforce")
    world.engine.connectors["salesforce"] = world.connectors["salesforce"]
    ext = world.customer(1)
    world.sync()
    crm_writes = sum(1 for c in world.crm.calls if c.startswith("write"))
    data = world.stripe.live("customer")[ext]
    world.stripe.put("customer", {**data, "email": "changed@example.com"}, ext)
    summary = world.sync()
    assert summary.stats("quickbooks", "customer").written == 1  # the ledger holds the email
    assert summary.stats("salesforce", "customer").written == 0
    assert sum(1 for c in world.crm.calls if c.startswith("write")) == crm_writes
    assert world.sync().totals().written == 0


def test_a_waiting_write_is_taken_once_per_pass_not_spun_on(tmp_path: object) -> None:
    class TickingClock(FrozenClock):
        """Time moves on every reading (as wall time does while a pass runs)."""

        def __init__(self) -> None:
            super().__init__()
            self.readings = 0

        def __call__(self) -> datetime:
            self.readings += 1
            if self.readings > 20_000:
                raise RuntimeError("the push loop kept claiming the same waiting write")
            return self.advance(seconds=1)

    clock = TickingClock()
    store = make_store(f"sqlite:///{tmp_path}/tick.db", clock)
    world = World(store, clock)
    world.engine.backoff_seconds = 0.5  # due again long before the pass would end on its own
    world.ledger.reject = lambda p: "name too long" if p.get("name") == "Customer 1" else None
    cus = world.customer(1)
    world.sync()
    with store.transaction() as tx:
        customer_id = tx.canonical_for("stripe", "customer", cus)
    line = InvoiceLine("Plan", Decimal(1), Money(1000, "USD"), Money(1000, "USD"))
    invoice = to_data(Invoice("x", customer_id=customer_id or "", number="INV-9", status="open", lines=(line,),
                              subtotal=Money(1000, "USD"), total=Money(1000, "USD"), amount_due=Money(1000, "USD")))
    invoice.pop("id")
    world.stripe.put("invoice", invoice)
    summary = world.sync()
    assert summary.stats("quickbooks", "invoice").retried == 1
    store.dispose()


def test_ingesting_a_page_costs_its_writes_not_a_lookup_per_question(world: World) -> None:
    """The engine reads a page's links and hub records with one statement per question; each
    new record then costs its writes (entity, history, keys, link, one outbox row per target),
    the store's own read before it writes an entity; the page's first-contact lookups are one
    statement per natural key; a record
    read again unchanged costs that read and one link update."""
    for i in range(100):
        world.customer(i)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement.split()[0])

    event.listen(world.store.engine, "before_cursor_execute", count)
    try:
        world.engine.pull("stripe", "customer", SyncSummary(), None)
        first = len(statements)
        statements.clear()
        world.engine.pull("stripe", "customer", SyncSummary(), None, full=True)
        again = len(statements)
    finally:
        event.remove(world.store.engine, "before_cursor_execute", count)
    assert first <= 100 * 7.5, (f"{first / 100:.1f} statements per new record (19 before prefetching, "
                                "9.1 with a natural-key lookup per record)")
    assert again <= 100 * 2.2, f"{again / 100:.1f} statements per unchanged record (was 7)"
    with world.store.transaction() as tx:
        assert tx.outbox_depth().get("pending", 0) == 200  # one write per target, none twice


def test_a_push_with_a_batch_budget_stops_there_and_the_next_pass_goes_on(world: World) -> None:
    """The daemon's outbox pass writes a bounded share of a backlog per connection, so its other
    work (one engine job at a time) is not held for the whole backlog."""
    for i in range(25):
        world.customer(i)
    world.engine.batch_size = 10
    world.engine.pull("stripe", "customer", SyncSummary(), None)
    first = SyncSummary()
    world.engine.push("quickbooks", first, None, max_batches=2)
    assert first.stats("quickbooks", "customer").written == 20 and len(world.ledger.live("customer")) == 20
    assert world.crm.live("customer") == {}  # another connection's writes are its own pass's
    second = SyncSummary()
    world.engine.push("quickbooks", second, None, max_batches=2)
    assert second.stats("quickbooks", "customer").written == 5
    assert len(set(marked(world.ledger, "customer"))) == 25


def test_pushing_a_batch_reads_its_records_and_links_once(world: World) -> None:
    """Preparing a batch and writing back its results read the hub records and links for the
    whole batch at once: a written record costs its outbox update and its new link (6.7
    statements per record before, 2.8 now, the rest being the pass's own bookkeeping)."""
    for i in range(100):
        world.customer(i)
    world.engine.pull("stripe", "customer", SyncSummary(), None)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(world.store.engine, "before_cursor_execute", count)
    try:
        summary = SyncSummary()
        world.engine.push("quickbooks", summary, None)
    finally:
        event.remove(world.store.engine, "before_cursor_execute", count)
    assert summary.stats("quickbooks", "customer").written == 100
    # + 10: the pass's fixed cost per stream it visits (each stream's first-contact check and
    # claim), which grew by one stream with payouts (issue 18); per record it is still under 3
    assert len(statements) <= 100 * 3 + 10, f"{len(statements) / 100:.1f} statements per written record"
    single_reads = [s for s in statements if s.lstrip().startswith("SELECT") and "IN (" not in s
                    and ("FROM links" in s or "FROM entities" in s)]
    assert len(single_reads) <= 5, single_reads[:3]


class AnsweringLedger(FakeConnector):
    """A ledger whose every write answers one error (as a per-item result)."""

    def __init__(self, system: FakeSystem, error: ConnectorError) -> None:
        super().__init__(system, policy=RetryPolicy(sleep=lambda _s: None), kind="quickbooks")
        self.error = error

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        return [WriteResult(item.idempotency_key, error=self.error) for item in batch]


def _answering(world: World, error: ConnectorError) -> None:
    world.connectors["quickbooks"] = AnsweringLedger(world.ledger, error)
    world.engine.connectors["quickbooks"] = world.connectors["quickbooks"]
    world.engine.ctx.random = lambda: 1.0  # the top of the jitter window: exact waits


def _ledger_item(world: World):  # type: ignore[no-untyped-def]
    with world.store.transaction() as tx:
        (item,) = [i for i in tx.list_outbox() if i.target == "quickbooks"]
    return item


def test_a_conflict_is_re_read_a_bounded_number_of_times_then_held(world: World) -> None:
    _answering(world, ConflictError("stale SyncToken", system="quickbooks"))
    world.customer(1)
    waits = []
    for _ in range(2):
        assert world.sync().stats("quickbooks", "customer").retried == 1
        item = _ledger_item(world)
        assert item.status == "pending"
        waits.append((item.next_attempt_at - world.clock()).total_seconds())
        world.clock.advance(seconds=waits[-1])
    assert waits == [10, 20]  # backoff_seconds=10, doubling (jitter pinned to its top)
    summary = world.sync()
    item = _ledger_item(world)
    assert summary.stats("quickbooks", "customer").dead == 1 and item.status == "dead"
    assert item.last_error == "still conflicting after 3 attempts: quickbooks: stale SyncToken"
    with world.store.transaction() as tx:
        assert any("held: still conflicting" in f.detail for f in tx.list_findings())


def test_a_write_answered_quota_exhausted_pauses_the_connection_and_waits(world: World) -> None:
    until = world.clock() + timedelta(hours=3)
    _answering(world, QuotaExhausted("daily limit", until=until, system="quickbooks"))
    world.customer(1)
    summary = world.sync()
    assert summary.paused == {"quickbooks": "quickbooks: daily limit"}
    item = _ledger_item(world)
    assert item.status == "pending" and item.next_attempt_at == until  # waits; not an attempt used up
    with world.store.transaction() as tx:
        state = tx.connection_state("quickbooks")
    assert state is not None and state["status"] == "paused" and state["paused_until"] == until
    assert "quickbooks" in world.sync().paused  # skipped while paused
