"""Writes: sObject Collections upserts by Hub_Id__c, chunking, idempotency, duplicates."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from connectors.base import DuplicateError, InvalidError, Outbound
from mapping.model import Invoice, Money
from tests.connectors.salesforce.conftest import Built, SfEnv
from tests.connectors.salesforce.test_reads import FakeRefs

INVOICE = "Billing_Invoice__c"
UPSERT_KEY = f"PATCH composite/sobjects/{INVOICE}/Hub_Id__c"


def _invoices(conn: object, account_id: str, count: int) -> list[Outbound]:
    refs = FakeRefs()
    refs.links[("customer", "cust-1")] = account_id
    items = []
    for i in range(count):
        invoice = Invoice(id=f"inv-{i:04d}", customer_id="cust-1", number=f"INV-{i:04d}", status="open",
                          currency="EUR", due_date=date(2026, 12, 1), total=Money(10_000 + i, "EUR"),
                          subtotal=Money(10_000 + i, "EUR"), amount_due=Money(10_000 + i, "EUR"),
                          amount_paid=Money(0, "EUR"))
        payload = conn.from_canonical(invoice, refs)  # type: ignore[attr-defined]
        items.append(Outbound("invoice", invoice.id, payload, idempotency_key=f"sf:{invoice.id}:v1"))
    return items


def _content(sf: SfEnv) -> dict[str, tuple[object, ...]]:
    return {r["Hub_Id__c"]: (r["Id"], r["Amount__c"], r["Status__c"], r["Account__c"], r["Name"])
            for r in sf.emulator.records(INVOICE)}


def test_450_invoices_take_three_collection_calls_and_the_same_upsert_changes_nothing(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    account = sf.emulator.insert("Account", {"Name": "Acme"})
    conn = make_connector().connector
    items = _invoices(conn, account, 450)

    first = conn.upsert("invoice", items)

    assert all(r.ok and r.created for r in first)
    assert [r.idempotency_key for r in first] == [i.idempotency_key for i in items]
    assert sf.emulator.stats.calls[UPSERT_KEY] == 3
    landed = _content(sf)
    assert len(landed) == 450
    assert landed["inv-0007"][1] == Decimal("100.07")  # exact to the cent, no float on the wire

    second = conn.upsert("invoice", items)

    assert all(r.ok and not r.created for r in second)
    assert [r.external_id for r in second] == [r.external_id for r in first]
    assert _content(sf) == landed
    assert sf.emulator.stats.calls[UPSERT_KEY] == 6


def test_apply_then_fail_on_a_collection_call_still_leaves_exactly_450(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    account = sf.emulator.insert("Account", {"Name": "Acme"})
    built = make_connector()
    items = _invoices(built.connector, account, 450)
    sf.emulator.set_faults(apply_then_fail=1, path_prefix="/services/data/v59.0/composite")

    results = built.connector.upsert("invoice", items)

    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:1]
    assert sf.emulator.stats.faults_injected["apply_then_fail"] == 1
    assert sf.emulator.stats.calls[UPSERT_KEY] == 4  # the failed chunk was sent again
    assert len(built.policy.waits) == 1
    assert len(sf.emulator.records(INVOICE)) == 450
    assert sorted(_content(sf)) == sorted(i.hub_id for i in items)


def test_two_records_with_one_marker_become_a_duplicate_finding_not_a_guess(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    account = sf.emulator.insert("Account", {"Name": "Acme"})
    twins = [sf.emulator.insert(INVOICE, {"Name": f"twin {i}", "Hub_Id__c": "inv-0000", "Account__c": account})
             for i in range(2)]
    conn = make_connector().connector
    items = _invoices(conn, account, 2)

    dup, ok = conn.upsert("invoice", items)

    assert isinstance(dup.error, DuplicateError) and sorted(dup.error.candidates) == sorted(twins)
    assert ok.ok and ok.created
    assert {r["Name"] for r in sf.emulator.records(INVOICE) if r["Id"] in twins} == {"twin 0", "twin 1"}
    with pytest.raises(DuplicateError):
        conn.lookup("invoice", "inv-0000")


def test_a_rejected_record_is_a_per_item_error_and_the_rest_land(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    account = sf.emulator.insert("Account", {"Name": "Acme"})
    conn = make_connector().connector
    good, bad = _invoices(conn, account, 2)
    bad = dataclasses.replace(bad, payload={**bad.payload, "Account__c": "001000000000000AAA"})

    first, second = conn.upsert("invoice", [good, bad])

    assert first.ok
    assert isinstance(second.error, InvalidError) and "INVALID_CROSS_REFERENCE_KEY" in str(second.error)
    assert [r["Hub_Id__c"] for r in sf.emulator.records(INVOICE)] == [good.hub_id]


def test_a_linked_record_is_updated_by_id_and_gets_the_marker(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    existing = sf.emulator.insert("Account", {"Name": "Acme (typed by sales)"})
    conn = make_connector().connector
    item = Outbound("customer", "cust-1", {"Name": "Acme Ltd", "Billing_Status__c": "overdue"},
                    idempotency_key="k1", external_id=existing)

    (result,) = conn.upsert("customer", [item])

    assert result.ok and result.external_id == existing and not result.created
    (account,) = sf.emulator.records("Account")
    assert (account["Name"], account["Hub_Id__c"], account["Billing_Status__c"]) == (
        "Acme Ltd", "cust-1", "overdue")
    found = conn.lookup("customer", "cust-1")
    assert found is not None and found.external_id == existing


def test_a_float_in_a_payload_is_refused_before_sending(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    conn = make_connector().connector
    item = Outbound("invoice", "inv-f", {"Amount__c": 1.1}, idempotency_key="kf")

    (result,) = conn.upsert("invoice", [item])

    assert isinstance(result.error, InvalidError)
    assert sf.emulator.records(INVOICE) == []
