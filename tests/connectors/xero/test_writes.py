"""Batch writes through the real SDK: per-item results, idempotent retries, duplicates,
payments, credit notes and refunds, foreign currency."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connectors.base import DuplicateError, InvalidError, Outbound
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import DEFAULT_TENANT, XeroEmulator
from mapping.model import Customer, Invoice, InvoiceLine, Money, Payment, Refund
from tests.connectors.xero.conftest import Refs


def _contact(emu: XeroEmulator, name: str = "Acme Ltd") -> str:
    contact_id: str = emu.seed_now({"Contacts": [{"Name": name}]})["Contacts"][0]
    return contact_id


def _invoice_entity(n: int, customer_id: str, currency: str = "USD", **extra: object) -> Invoice:
    line = InvoiceLine("Pro plan", Decimal(1), Money(1999, currency), Money(1999, currency), tax_rate=Decimal(0))
    return Invoice(id=f"hub-inv-{n:04d}", customer_id=customer_id, number=f"in_{n:04d}", status="open",
                   currency=currency, issued_at=datetime(2026, 11, 1, tzinfo=UTC), due_date=date(2026, 12, 1),
                   lines=(line,), subtotal=Money(1999, currency), total=Money(1999, currency),
                   amount_due=Money(1999, currency), extra=dict(extra))


def _invoices(connector: XeroConnector, refs: Refs, count: int) -> list[Outbound]:
    return [Outbound("invoice", f"hub-inv-{n:04d}",
                     connector.from_canonical(_invoice_entity(n, "hub-cust-1"), refs),
                     idempotency_key=f"idem-inv-{n:04d}") for n in range(count)]


def _all_invoices(emu: XeroEmulator) -> dict[str, dict[str, object]]:
    return emu.tenants[DEFAULT_TENANT].table("Invoices")  # voided ones too


def _put_calls(emu: XeroEmulator) -> int:
    return emu.stats.calls.get("PUT /api.xro/2.0/Invoices", 0)


def test_120_invoices_take_three_calls_and_an_invalid_one_is_rejected_alone(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    batch = _invoices(connector, refs, 120)
    bad = dict(batch[57].payload)
    bad["LineItems"] = [{**bad["LineItems"][0], "AccountCode": "999"}]
    batch[57] = dataclasses.replace(batch[57], payload=bad)

    results = connector.upsert("invoice", batch)

    assert len(results) == 120
    assert [r.idempotency_key for r in results] == [b.idempotency_key for b in batch]
    assert _put_calls(emu) <= 3
    assert sum(1 for r in results if r.ok) == 119
    error = results[57].error
    assert isinstance(error, InvalidError)
    assert "Account code '999' is not a valid code for this document." in error.message
    live = emu.live("Invoices")
    assert len(live) == 119
    assert {i["Reference"] for i in live} == {b.hub_id for n, b in enumerate(batch) if n != 57}
    assert all(i["Total"] == Decimal("19.99") and i["Status"] == "AUTHORISED" for i in live)


def test_apply_then_fail_on_a_batch_retry_leaves_exactly_120_invoices(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    batch = _invoices(connector, refs, 120)
    emu.set_faults(apply_then_fail=1, path_prefix="/api.xro/2.0/Invoices")

    results = connector.upsert("invoice", batch)

    assert emu.stats.faults_injected["apply_then_fail"] == 1
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert len(emu.live("Invoices")) == 120
    # the outbox's later retry (attempt 2) looks up by marker and still creates nothing new
    again = connector.upsert("invoice", [dataclasses.replace(b, attempt=2) for b in batch])
    assert all(r.ok and not r.created for r in again)
    assert len(emu.live("Invoices")) == 120
    assert [r.external_id for r in again] == [r.external_id for r in results]


def test_lost_outcome_without_idempotency_replay_is_recovered_by_marker_lookup(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    batch = _invoices(connector, refs, 3)
    emu.set_faults(apply_then_fail=1, path_prefix="/api.xro/2.0/Invoices")
    connector.upsert("invoice", batch)
    emu.tenant.idempotency.clear()  # as if Xero had forgotten the key
    retry = [dataclasses.replace(b, attempt=2, idempotency_key=b.idempotency_key + "-b") for b in batch]
    results = connector.upsert("invoice", retry)
    assert all(r.ok for r in results)
    assert len(emu.live("Invoices")) == 3


def test_duplicate_contact_name_links_to_the_single_match(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    existing = _contact(emu, "Globex Corporation")
    payload = connector.from_canonical(Customer(id="hub-c-9", name="Globex Corporation",
                                                email="ap@globex.example"), refs)
    (result,) = connector.upsert("customer", [Outbound("customer", "hub-c-9", payload, "idem-c-9")])
    assert result.ok, result.error
    assert result.external_id == existing and not result.created
    contact = emu.tenant.table("Contacts")[existing]
    assert contact["ContactNumber"] == "hub-c-9"
    assert contact["EmailAddress"] == "ap@globex.example"
    assert len(emu.live("Contacts")) == 1


def test_ambiguous_duplicate_contact_name_is_a_duplicate_error_with_candidates(
        emu: XeroEmulator, connector: XeroConnector) -> None:
    a = _contact(emu, "Initech  Ltd")
    b = _contact(emu, "initech ltd")
    out = Outbound("customer", "hub-c-10", {"Name": "Initech Ltd"}, "idem-c-10")
    emu.tenant.table("Contacts")[b]["Name"] = "Initech Ltd"  # an exact twin, and a spacing variant
    (result,) = connector.upsert("customer", [out])
    assert isinstance(result.error, DuplicateError)
    assert sorted(result.error.candidates) == sorted([a, b])
    assert not any(c.get("ContactNumber") for c in emu.live("Contacts"))


def test_payment_marks_invoice_paid(emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    (inv,) = connector.upsert("invoice", _invoices(connector, refs, 1))
    refs.link("invoice", "hub-inv-0000", str(inv.external_id))
    payment = Payment(id="hub-pay-1", invoice_id="hub-inv-0000", amount=Money(1999, "USD"),
                      paid_at=datetime(2026, 11, 2, tzinfo=UTC))
    (result,) = connector.upsert("payment", [Outbound("payment", "hub-pay-1",
                                                      connector.from_canonical(payment, refs), "idem-pay-1")])
    assert result.ok, result.error
    invoice = emu.tenant.table("Invoices")[str(inv.external_id)]
    assert invoice["Status"] == "PAID" and invoice["AmountDue"] == 0
    back = connector.to_canonical(result.record, refs) if result.record else None
    assert isinstance(back, Payment) and back.amount == Money(1999, "USD") and back.invoice_id == "hub-inv-0000"
    # a retry with unknown outcome finds the payment instead of paying twice
    (again,) = connector.upsert("payment", [Outbound("payment", "hub-pay-1", connector.from_canonical(
        payment, refs), "idem-pay-1b", attempt=2)])
    assert again.ok and again.external_id == result.external_id
    assert len(emu.live("Payments")) == 1


def test_refund_is_a_credit_note_paid_out_not_allocated(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    (inv,) = connector.upsert("invoice", _invoices(connector, refs, 1))
    refs.link("invoice", "hub-inv-0000", str(inv.external_id))
    refund = Refund(id="hub-ref-1", invoice_id="hub-inv-0000", customer_id="hub-cust-1",
                    amount=Money(500, "USD"), refunded_at=datetime(2026, 11, 3, tzinfo=UTC))
    (result,) = connector.upsert("refund", [Outbound("refund", "hub-ref-1",
                                                     connector.from_canonical(refund, refs), "idem-ref-1")])
    assert result.ok, result.error
    note = emu.tenant.table("CreditNotes")[str(result.external_id)]
    assert note["Reference"] == "refund:hub-ref-1" and note["Total"] == Decimal("5.00")
    # Paid out: the refund returns money a payment brought in; the invoice's due is untouched, so
    # the Stripe payment still applies in full whenever it reaches Xero.
    assert note["Status"] == "PAID" and not note.get("Allocations")
    refund_payments = [p for p in emu.tenant.table("Payments").values()
                       if (p.get("CreditNote") or {}).get("CreditNoteID") == result.external_id]
    assert len(refund_payments) == 1 and refund_payments[0]["Amount"] == Decimal("5.00")
    assert emu.tenant.table("Invoices")[str(inv.external_id)]["AmountDue"] == Decimal("19.99")
    back = connector.to_canonical(result.record, refs) if result.record else None
    # Xero relates a credit note to an invoice only by allocation, so a paid-out refund maps back
    # without it; the hub keeps the relation (Xero owns no refund field), and the diff compares amounts.
    assert isinstance(back, Refund) and back.amount == Money(500, "USD")
    assert connector.lookup("refund", "hub-ref-1") is not None
    assert connector.lookup("credit_note", "hub-ref-1") is None


def test_foreign_currency_invoice_carries_its_rate(emu: XeroEmulator, connector: XeroConnector,
                                                  refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    entity = _invoice_entity(1, "hub-cust-1", currency="EUR", currency_rate="0.9150")
    (result,) = connector.upsert("invoice", [Outbound("invoice", "hub-inv-eur",
                                                      connector.from_canonical(entity, refs), "idem-eur")])
    assert result.ok, result.error
    stored = emu.tenant.table("Invoices")[str(result.external_id)]
    assert stored["CurrencyCode"] == "EUR" and stored["CurrencyRate"] == Decimal("0.915")
    back = connector.to_canonical(result.record, refs) if result.record else None
    assert isinstance(back, Invoice) and back.total == Money(1999, "EUR") and back.extra["currency_rate"] == "0.915"


def test_a_refund_whose_allocation_was_lost_is_settled_once_on_retry(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    (inv,) = connector.upsert("invoice", _invoices(connector, refs, 1))
    refs.link("invoice", "hub-inv-0000", str(inv.external_id))
    refund = Refund(id="hub-ref-2", invoice_id="hub-inv-0000", customer_id="hub-cust-1",
                    amount=Money(500, "USD"), refunded_at=datetime(2026, 11, 3, tzinfo=UTC))
    item = Outbound("refund", "hub-ref-2", connector.from_canonical(refund, refs), "idem-ref-2")
    # The process died between creating the credit note and allocating it.
    unallocated = {k: v for k, v in item.payload.items() if k != "_allocate_to"}
    (first,) = connector.upsert("refund", [dataclasses.replace(item, payload=unallocated)])
    assert first.ok and emu.tenant.table("CreditNotes")[str(first.external_id)]["Status"] == "AUTHORISED"
    (retry,) = connector.upsert("refund", [dataclasses.replace(item, attempt=2)])
    assert retry.ok, retry.error
    notes = [n for n in emu.tenant.table("CreditNotes").values() if n.get("Reference") == "refund:hub-ref-2"]
    assert len(notes) == 1 and notes[0]["Status"] == "PAID"
    payouts = [p for p in emu.tenant.table("Payments").values()
               if (p.get("CreditNote") or {}).get("CreditNoteID") == notes[0]["CreditNoteID"]]
    assert len(payouts) == 1
    (again,) = connector.upsert("refund", [dataclasses.replace(item, attempt=3, external_id=retry.external_id)])
    assert again.ok, again.error  # a settled credit note is not edited: it is already written
    assert len([p for p in emu.tenant.table("Payments").values()
                if (p.get("CreditNote") or {}).get("CreditNoteID") == notes[0]["CreditNoteID"]]) == 1


def test_a_voided_invoices_number_is_reserved_so_the_re_created_one_is_suffixed(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    (item,) = _invoices(connector, refs, 1)
    (first,) = connector.upsert("invoice", [item])
    assert first.ok and first.external_id
    connector.upsert("invoice", [dataclasses.replace(item, idempotency_key="void", operation="void",
                                                     external_id=first.external_id)])
    # Re-created (a repair of the broken link): a new write of the same hub record, no link.
    (again,) = connector.upsert("invoice", [dataclasses.replace(item, idempotency_key="recreate")])
    assert again.ok and again.external_id != first.external_id and again.idempotency_key == "recreate"
    numbers = {i["InvoiceID"]: (i["InvoiceNumber"], i["Status"]) for i in _all_invoices(emu).values()}
    assert numbers == {first.external_id: ("in_0000", "VOIDED"), again.external_id: ("in_0000-R1", "AUTHORISED")}
    # Later updates keep the number Xero has instead of failing on the reserved one.
    changed = {**item.payload, "DueDate": "2026-12-15"}
    (update,) = connector.upsert("invoice", [dataclasses.replace(item, idempotency_key="update", payload=changed,
                                                                 external_id=again.external_id)])
    assert update.ok, update.error
    assert _all_invoices(emu)[str(again.external_id)]["InvoiceNumber"] == "in_0000-R1"


def test_a_number_held_by_a_live_document_stays_an_error(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    contact = _contact(emu)
    refs.link("customer", "hub-cust-1", contact)
    emu.seed_now({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "InvoiceNumber": "in_0000",
                                "Status": "AUTHORISED", "LineItems": [{"Description": "typed by hand",
                                                                       "Quantity": 1, "UnitAmount": 5,
                                                                       "AccountCode": "200"}]}]})
    (result,) = connector.upsert("invoice", _invoices(connector, refs, 1))
    assert isinstance(result.error, InvalidError) and "must be unique" in result.error.message
    assert [i["InvoiceNumber"] for i in _all_invoices(emu).values()] == ["in_0000"]


def test_a_late_change_to_a_paid_invoice_is_written_when_its_lines_agree_and_refused_when_they_do_not(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    """The payment can reach Xero before a later change of its invoice (status, amount paid): Xero
    refuses to edit a paid invoice, and the hub must not hold that as a failure. A change of what
    the invoice bills cannot be applied and says what to do."""
    refs.link("customer", "hub-cust-1", _contact(emu))
    (item,) = _invoices(connector, refs, 1)
    (inv,) = connector.upsert("invoice", [item])
    refs.link("invoice", "hub-inv-0000", str(inv.external_id))
    payment = Payment(id="hub-pay-1", invoice_id="hub-inv-0000", amount=Money(1999, "USD"),
                      paid_at=datetime(2026, 11, 2, tzinfo=UTC))
    (paid,) = connector.upsert("payment", [Outbound("payment", "hub-pay-1",
                                                    connector.from_canonical(payment, refs), "idem-pay-1")])
    assert paid.ok and emu.tenant.table("Invoices")[str(inv.external_id)]["Status"] == "PAID"
    update = dataclasses.replace(item, external_id=inv.external_id, idempotency_key="idem-inv-0000-2")
    (same,) = connector.upsert("invoice", [update])
    assert same.ok, same.error
    assert same.record is not None and same.record.data["Status"] == "PAID"
    lines = [{**line, "Quantity": 2} for line in update.payload["LineItems"]]
    (changed,) = connector.upsert("invoice", [dataclasses.replace(
        update, payload={**update.payload, "LineItems": lines}, idempotency_key="idem-inv-0000-3")])
    assert not changed.ok and "is paid, so its lines cannot change" in str(changed.error)
    assert emu.tenant.table("Invoices")[str(inv.external_id)]["Total"] == Decimal("19.99")


def test_twelve_refunds_are_paid_out_with_one_payments_call(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    refs.link("customer", "hub-cust-1", _contact(emu))
    (inv,) = connector.upsert("invoice", _invoices(connector, refs, 1))
    refs.link("invoice", "hub-inv-0000", str(inv.external_id))
    items = [Outbound("refund", f"hub-ref-{n}", connector.from_canonical(
        Refund(id=f"hub-ref-{n}", invoice_id="hub-inv-0000", customer_id="hub-cust-1", amount=Money(100 + n, "USD"),
               refunded_at=datetime(2026, 11, 3, tzinfo=UTC)), refs), f"idem-ref-{n}") for n in range(12)]
    before = dict(emu.stats.calls)
    results = connector.upsert("refund", items)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    calls = {k: v - before.get(k, 0) for k, v in emu.stats.calls.items() if v != before.get(k, 0)}
    # one create of the 12 credit notes, one payout of all 12, one read-back by marker
    assert calls == {"PUT /api.xro/2.0/CreditNotes": 1, "PUT /api.xro/2.0/Payments": 1,
                     "GET /api.xro/2.0/CreditNotes": 1}, calls
    assert all(r.record is not None and r.record.data["Status"] == "PAID" for r in results)
    payouts = sorted(p["Amount"] for p in emu.tenant.table("Payments").values() if p.get("CreditNote"))
    assert payouts == [Decimal(100 + n) / 100 for n in range(12)]


def test_a_summarised_batch_with_an_error_leaves_every_record_as_it_was(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    """summarizeErrors=true is all or nothing: a payment the batch applied before a later item
    failed is undone, and so is what it did to its invoice (amount due, status)."""
    refs.link("customer", "hub-cust-1", _contact(emu))
    (inv,) = connector.upsert("invoice", _invoices(connector, refs, 1))
    invoice_id = str(inv.external_id)
    before = dict(_all_invoices(emu)[invoice_id])
    good = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Amount": "19.99"}
    bad = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Amount": "-1"}
    with pytest.raises(InvalidError):
        connector.client.call("create_payments", payments={"Payments": [good, bad]}, summarize_errors=True)
    assert _all_invoices(emu)[invoice_id] == before and before["Status"] == "AUTHORISED"
    assert not emu.tenants[DEFAULT_TENANT].table("Payments")
    (paid,) = connector.client.call("create_payments", payments={"Payments": [good]},
                                    summarize_errors=True)["Payments"]
    assert paid["Amount"] == Decimal("19.99") and _all_invoices(emu)[invoice_id]["Status"] == "PAID"
    assert before["Status"] == "AUTHORISED"  # the stored record was replaced, not edited in place
