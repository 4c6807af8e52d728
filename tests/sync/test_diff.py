"""Drift detection on fake systems: every kind, no false positives, findings with a life."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.base import InvalidError, Page
from connectors.fake.connector import FakeConnector
from mapping.model import Invoice, InvoiceLine, Money, Payment, to_data
from state.store import StateStore
from sync.diff import Differ, Tolerances
from tests.conftest import FrozenClock, make_store
from tests.sync.test_engine import World


def put_invoice(world: World, customer_id: str, n: int, cents: int, lines: int = 1) -> str:
    line_items = tuple(InvoiceLine(f"L{i}", Decimal(1), Money(cents, "USD"), Money(cents, "USD")) for i in range(lines))
    total = Money(cents * lines, "USD")
    data = to_data(Invoice("x", customer_id=customer_id, number=f"INV-{n:04d}", status="open", lines=line_items,
                           subtotal=total, total=total, amount_due=total,
                           issued_at=datetime(2026, 10, 5, 10, tzinfo=UTC)))
    data.pop("id")
    return world.stripe.put("invoice", data)


@pytest.fixture
def world(tmp_path: object, clock: FrozenClock) -> Iterator[World]:
    store = make_store(f"sqlite:///{tmp_path}/hub.db", clock)
    yield seeded(store, clock)
    store.dispose()


def seeded(store: StateStore, clock: FrozenClock) -> World:
    """Six customers with one three-line invoice each, synced everywhere, two hours ago."""
    w = World(store, clock)
    customers = [w.customer(i) for i in range(6)]
    w.sync()
    with store.transaction() as tx:
        ids = [tx.canonical_for("stripe", "customer", c) for c in customers]
    for n, cid in enumerate(ids):
        assert cid is not None
        put_invoice(w, cid, n, 1000 + n, lines=3)
    w.sync()
    clock.advance(hours=2)
    return w


def differ(world: World, **tol: object) -> Differ:
    return Differ(world.store, world.connectors, world.engine.routing, Tolerances(**tol))  # type: ignore[arg-type]


def kinds(result: object) -> list[tuple[str, str, str]]:
    return sorted((f["kind"], f["entity"], f["system"]) for f in result.findings)  # type: ignore[attr-defined]


def ledger_id_of(world: World, entity: str, **match: object) -> str:
    return next(k for k, v in world.ledger.live(entity).items() if all(v.get(a) == b for a, b in match.items()))


def test_a_clean_sync_reports_no_findings(world: World) -> None:
    result = differ(world).run(["customer", "invoice"])
    assert result.findings == []
    assert result.compared["quickbooks:invoice"] == 6 and result.compared["stripe:customer"] == 6


def test_every_kind_of_drift_is_reported_exactly_once(world: World) -> None:
    # duplicate: a person re-created a customer by hand in the ledger
    original = world.ledger.live("customer")[ledger_id_of(world, "customer", email="c1@example.com")]
    world.ledger.put("customer", {k: v for k, v in original.items() if k not in ("id", "hub_id")})
    # orphan: a ledger customer nobody else knows
    world.ledger.put("customer", {"name": "Stranger", "email": "stranger@example.com"})
    # broken_link: an invoice deleted in the ledger behind the hub's back
    world.ledger.remove("invoice", ledger_id_of(world, "invoice", number="INV-0002"))
    # mismatch: an amount edited in the ledger
    edited_id = ledger_id_of(world, "invoice", number="INV-0003")
    edited = world.ledger.live("invoice")[edited_id]
    world.ledger.put("invoice", {**edited, "total": {"minor": 9999, "currency": "USD"}}, edited_id)
    # stale: an email change the hub took in, whose push never happened, older than the SLA
    c4 = ledger_id_of(world, "customer", email="c4@example.com")
    hub_id = world.ledger.live("customer")[c4]["hub_id"]
    stripe_id = next(k for k, v in world.stripe.live("customer").items() if v["email"] == "c4@example.com")
    world.stripe.put("customer", {**world.stripe.live("customer")[stripe_id], "email": "new4@example.com"}, stripe_id)
    world.sync(systems=["stripe"])
    with world.store.transaction() as tx:
        for item in tx.list_outbox("pending"):
            tx.drop_outbox(item.id)
    world.clock.advance(hours=2)
    # missing: a hub invoice that never reached the ledger (its push was dropped)
    with world.store.transaction() as tx:
        canonical = tx.canonical_for("quickbooks", "invoice", ledger_id_of(world, "invoice", number="INV-0005"))
        assert canonical
        tx.unlink(canonical, "quickbooks", "invoice")
    world.ledger.remove("invoice", ledger_id_of(world, "invoice", number="INV-0005"))

    result = differ(world).run(["customer", "invoice"])
    assert kinds(result) == [
        ("broken_link", "invoice", "quickbooks"),
        ("duplicate", "customer", "quickbooks"),
        ("mismatch", "invoice", "quickbooks"),
        ("missing", "invoice", "quickbooks"),
        ("orphan", "customer", "quickbooks"),
        ("stale", "customer", "quickbooks"), ("stale", "customer", "salesforce"),
    ]
    mismatch = next(f for f in result.findings if f["kind"] == "mismatch")
    assert mismatch["fields"]["total"] == {"hub": 3009, "quickbooks": 9999}
    stale = next(f for f in result.findings if f["kind"] == "stale")
    assert stale["canonical_id"] == hub_id and stale["fields"]["email"]["hub"] == "new4@example.com"

    again = differ(world).run(["customer", "invoice"])
    assert sorted(f["id"] for f in again.findings) == sorted(f["id"] for f in result.findings)
    assert again.new == 0


def test_fixing_a_problem_resolves_its_finding_on_the_next_run(world: World) -> None:
    stranger = world.ledger.put("customer", {"name": "Stranger", "email": "stranger@example.com"})
    first = differ(world).run(["customer"])
    assert kinds(first) == [("orphan", "customer", "quickbooks")]
    world.ledger.remove("customer", stranger)
    second = differ(world).run(["customer"])
    assert second.findings == [] and second.resolved == 1
    with world.store.transaction() as tx:
        assert tx.get_finding(first.findings[0]["id"]).status == "resolved"


def rounded(inv: dict[str, object], tax_by: int, total_by: int | None = None) -> dict[str, object]:
    """A ledger invoice whose tax (and, as its own sum, total and amount due) moved by ``tax_by``."""
    total_by = tax_by if total_by is None else total_by
    moved = copy.deepcopy(inv)
    for name, by in (("tax", tax_by), ("total", total_by), ("amount_due", total_by)):
        moved[name] = {"minor": moved[name]["minor"] + by, "currency": "USD"}  # type: ignore[index]
    return moved


def test_per_line_tax_rounding_within_tolerance_is_not_a_finding_beyond_it_is(world: World) -> None:
    inv_id = ledger_id_of(world, "invoice", number="INV-0001")
    inv = world.ledger.live("invoice")[inv_id]
    world.ledger.put("invoice", rounded(inv, 3), inv_id)  # three lines, one minor unit each
    assert [f for f in differ(world).run(["invoice"]).findings if f["kind"] == "mismatch"] == []
    world.ledger.put("invoice", rounded(inv, 4), inv_id)
    found = differ(world).run(["invoice"]).findings
    assert kinds(differ(world).run(["invoice"]))[0] == ("mismatch", "invoice", "quickbooks")
    assert sorted(found[0]["fields"]) == ["amount_due", "tax", "total"]


def test_a_total_is_exact_save_for_the_tax_rounding_that_explains_it(world: World) -> None:
    inv_id = ledger_id_of(world, "invoice", number="INV-0001")
    inv = world.ledger.live("invoice")[inv_id]
    world.ledger.put("invoice", rounded(inv, 0, total_by=1), inv_id)  # no tax moved: one cent is drift
    (found,) = [f for f in differ(world).run(["invoice"]).findings if f["kind"] == "mismatch"]
    assert sorted(found["fields"]) == ["amount_due", "total"]
    assert found["fields"]["total"]["quickbooks"] - found["fields"]["total"]["hub"] == 1


def test_a_settled_invoice_left_owing_a_rounded_cent_is_a_finding(world: World) -> None:
    inv_id = ledger_id_of(world, "invoice", number="INV-0001")
    inv = world.ledger.live("invoice")[inv_id]
    paid = copy.deepcopy(inv)  # the hub has it paid; the ledger's rounded tax leaves 0.01 owing
    paid["amount_paid"] = dict(paid["total"])
    paid["amount_due"] = {"minor": 0, "currency": "USD"}
    paid["status"] = "paid"
    stripe_id = next(k for k, v in world.stripe.live("invoice").items() if v["number"] == "INV-0001")
    world.stripe.put("invoice", {**world.stripe.live("invoice")[stripe_id], "status": "paid",
                                 "amount_paid": paid["total"], "amount_due": {"minor": 0, "currency": "USD"}},
                     stripe_id)
    world.sync()
    world.ledger.put("invoice", {**rounded(paid, 1, total_by=1), "amount_due": {"minor": 1, "currency": "USD"},
                                 "amount_paid": paid["total"], "status": "open"}, inv_id)
    (found,) = [f for f in differ(world).run(["invoice"]).findings if f["kind"] == "mismatch"]
    assert found["fields"]["amount_due"] == {"hub": 0, "quickbooks": 1}
    assert found["fields"]["status"] == {"hub": "paid", "quickbooks": "open"}
    assert "tax" not in found["fields"] and "total" not in found["fields"]  # those are rounding


def test_a_day_whose_totals_differ_without_a_record_explaining_it_is_reported(world: World) -> None:
    # rounding within the per-record tolerance on several invoices of one day adds up
    for n in (0, 1, 2):
        inv_id = ledger_id_of(world, "invoice", number=f"INV-{n:04d}")
        inv = world.ledger.live("invoice")[inv_id]
        world.ledger.put("invoice", rounded(inv, 1), inv_id)
    result = differ(world).run(["invoice"])
    assert kinds(result) == [("totals", "invoice", "quickbooks")]
    assert "+3" in result.findings[0]["detail"]


def test_payments_are_reconciled_too(world: World) -> None:
    with world.store.transaction() as tx:
        invoice_id = tx.canonical_for("stripe", "invoice", next(iter(world.stripe.live("invoice"))))
    data = to_data(Payment("x", invoice_id=invoice_id, amount=Money(3000, "USD"),
                           paid_at=datetime(2026, 10, 6, tzinfo=UTC)))
    data.pop("id")
    world.stripe.put("payment", data)
    world.sync()
    assert differ(world).run(["payment"]).findings == []


def bump_in_stripe(world: World, number: str, by: int) -> str:
    """A fake Stripe invoice's first line (and so its totals) changed out of band: no sync sees it."""
    stripe_id = next(k for k, v in world.stripe.live("invoice").items() if v["number"] == number)
    data = copy.deepcopy(world.stripe.live("invoice")[stripe_id])
    first = data["lines"][0]
    for money in (first["unit_amount"], first["amount"], data["subtotal"], data["total"], data["amount_due"]):
        money["minor"] += by
    world.stripe.put("invoice", data, stripe_id)
    return stripe_id


def test_a_change_in_the_owner_that_never_reached_the_hub_is_a_finding_against_the_owner(world: World) -> None:
    stripe_id = bump_in_stripe(world, "INV-0002", 500)
    # the fake stamps its records with the wall clock: the hub's clock stands a day past it, so
    # the owner's change is older than the SLA by its own time too
    world.clock.now = datetime.now(UTC) + timedelta(days=1)
    result = differ(world).run(["invoice"])
    assert kinds(result) == [("mismatch", "invoice", "stripe")]  # no day total blamed on the ledger
    assert result.findings[0]["external_ids"] == [stripe_id]
    assert result.findings[0]["fields"]["total"] == {"hub": 3006, "stripe": 3506}
    world.sync()  # the change feed brings it after all: the hub and the ledger follow
    assert differ(world).run(["invoice"]).findings == []


def test_an_owner_change_within_the_sla_by_its_own_time_is_lag(world: World) -> None:
    bump_in_stripe(world, "INV-0003", 500)
    world.clock.now = datetime.now(UTC) + timedelta(minutes=30)  # the fake's record: changed 30 minutes ago
    assert differ(world).run(["invoice"]).findings == []


def test_an_event_waiting_in_the_inbox_excuses_its_record_until_it_fails_for_good(
        store: StateStore, clock: FrozenClock) -> None:
    world = seeded(store, clock)  # on SQLite and on PostgreSQL
    stripe_id = bump_in_stripe(world, "INV-0004", 700)
    world.clock.now = datetime.now(UTC) + timedelta(days=1)
    with store.transaction() as tx:
        tx.add_inbox("stripe", "evt_1", {"type": "invoice.updated", "data": {"object": {"id": stripe_id}}})
        tx.add_inbox("stripe", "evt_2", {"type": "invoice.updated", "data": {"object": {"id": "in_other"}}})
    assert differ(world).run(["invoice"]).findings == []  # pending
    with store.transaction() as tx:
        (first, second) = tx.claim_inbox(10, system="stripe")
        tx.finish_inbox(first.id, error="503", retry_in=60)  # claimed, to be tried again
        tx.finish_inbox(second.id)
    assert differ(world).run(["invoice"]).findings == []
    with store.transaction() as tx:
        tx.finish_inbox(first.id, error="gave up")
    result = differ(world).run(["invoice"])
    assert kinds(result) == [("mismatch", "invoice", "stripe")] and result.findings[0]["external_ids"] == [stripe_id]


class InvoicesGone(FakeConnector):
    """A ledger whose invoice endpoint answers 404 (an entity the account cannot read)."""

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        if entity_type == "invoice":
            raise InvalidError("404 Not Found: Invoice", system=self.name, status=404)
        return super().fetch_all(entity_type)


def test_one_entity_that_cannot_be_read_spoils_only_its_own_comparison(world: World) -> None:
    stranger = world.ledger.put("customer", {"name": "Stranger", "email": "stranger@example.com"})
    edited_id = ledger_id_of(world, "invoice", number="INV-0003")
    edited = world.ledger.live("invoice")[edited_id]
    world.ledger.put("invoice", {**edited, "total": {"minor": 9999, "currency": "USD"}}, edited_id)
    first = differ(world).run(["invoice", "customer"])
    assert kinds(first) == [("mismatch", "invoice", "quickbooks"), ("orphan", "customer", "quickbooks")]

    world.ledger.remove("customer", stranger)
    world.connectors["quickbooks"] = InvoicesGone(world.ledger, kind="quickbooks")
    second = differ(world).run(["invoice", "customer"])
    # the customers are still reconciled (the orphan is gone), the invoices are not compared at
    # all: their 404 is never taken for deletions, nor for the mismatch being fixed
    assert second.resolved == 1 and second.compared["quickbooks:customer"] == 6
    assert "quickbooks:invoice" not in second.compared
    assert len(second.errors) == 1 and second.errors[0].startswith("invoice not compared")
    with world.store.transaction() as tx:
        statuses = {f.kind: f.status for f in tx.list_findings()}
        run = next(r for r in tx.last_runs(5, kind="diff") if r["id"] == second.run_id)
    assert statuses == {"mismatch": "open", "orphan": "resolved"}
    assert run["status"] == "partial"
