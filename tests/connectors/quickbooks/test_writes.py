"""Writes through /batch and single saves: idempotency, conflicts, duplicates, currencies."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from connectors.base import DuplicateError, InvalidError, Outbound, RetryableError
from connectors.quickbooks.emulator.app import QUERY_BATCH
from mapping.model import Customer, Invoice, InvoiceLine, Money, Payment, Refund
from mapping.quickbooks import customer_from_canonical, marker
from tests.connectors.quickbooks.conftest import QboEnv

BATCH = "POST /v3/company/{realm}/batch"


class Refs:
    """A crosswalk stand-in: canonical ids are "<type>:<external id>" once linked."""

    def __init__(self, links: dict[str, str] | None = None) -> None:
        self.links = links or {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"{entity_type}:{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        if canonical_id in self.links:
            return self.links[canonical_id]
        prefix = entity_type + ":"
        return canonical_id[len(prefix):] if canonical_id.startswith(prefix) else None


def _invoice(hub_id: str, customer: str, item: str, currency: str = "USD", cents: int = 12345) -> Invoice:
    unit = Money(cents, currency)
    line = InvoiceLine(description="Consulting", quantity=Decimal(2), unit_amount=unit,
                       amount=Money(cents * 2, currency), product_id=f"product:{item}")
    total = Money(cents * 2, currency)
    return Invoice(id=hub_id, customer_id=f"customer:{customer}", currency=currency, lines=(line,),
                   subtotal=total, total=total, amount_due=total, tax=Money(0, currency),
                   issued_at=datetime(2026, 11, 1, tzinfo=UTC))


def _basics(env: QboEnv) -> tuple[str, str]:
    seeded = env.seed(Customer=[{"DisplayName": "Buyer Inc"}], Item=[{"Name": "Consulting"}])
    return seeded["Customer"][0], seeded["Item"][0]


def _outbounds(env: QboEnv, count: int) -> list[Outbound]:
    customer, item = _basics(env)
    connector = env.connectors[-1]
    refs = Refs()
    return [Outbound("invoice", f"inv-{i:03d}", connector.from_canonical(_invoice(f"inv-{i:03d}", customer, item), refs),
                     idempotency_key=f"k-inv-{i:03d}") for i in range(count)]


def _marked(env: QboEnv, entity: str) -> list[dict[str, object]]:
    return [o for o in env.table(entity).values() if str(o.get("PrivateNote", "")).startswith("hub:")]


def test_100_invoices_are_created_with_four_batch_calls(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    items = _outbounds(qbo_env, 100)
    results = connector.upsert("invoice", items)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert [r.idempotency_key for r in results] == [i.idempotency_key for i in items]
    assert all(r.created for r in results)
    assert qbo_env.emulator.stats.calls[BATCH] == 4
    assert len(_marked(qbo_env, "Invoice")) == 100
    assert {str(o["TotalAmt"]) for o in _marked(qbo_env, "Invoice")} == {"246.90"}


def test_apply_then_fail_on_one_batch_then_retry_leaves_exactly_100(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    items = _outbounds(qbo_env, 100)
    qbo_env.emulator.set_faults(apply_then_fail=1, path_prefix="/v3/company/9130350000000001/batch")
    results = connector.upsert("invoice", items)
    assert qbo_env.emulator.stats.faults_injected["apply_then_fail"] == 1
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert len(_marked(qbo_env, "Invoice")) == 100
    # The failed batch's 30 creates were looked up in one batch request (all found, none sent
    # again), not one query each: 4 writes + 1 lookup (a batch of queries, counted apart). (The
    # two queries are the company's Preferences, read once for its home currency, and its
    # CompanyInfo, read once for its tax model when the first invoice is mapped.)
    assert qbo_env.calls("/query") == 2
    assert qbo_env.emulator.stats.calls[BATCH] == 4 and qbo_env.emulator.stats.calls[QUERY_BATCH] == 1
    # The engine's own retry of the whole run (outcome unknown) must not add any either.
    queries, batches = qbo_env.calls("/query"), qbo_env.emulator.stats.calls[BATCH]
    lookups = qbo_env.emulator.stats.calls[QUERY_BATCH]
    reads = qbo_env.emulator.stats.calls["GET /v3/company/{realm}/invoice"]
    again = connector.upsert("invoice", [dataclasses.replace(i, attempt=2) for i in items])
    assert all(r.ok for r in again)
    # The 100 marker lookups went 30 to a batch request (4 calls), not one query each; then
    # the 100 found invoices were updated in 4 batches, at the SyncToken the lookup returned
    # (no read of each).
    assert qbo_env.calls("/query") == queries
    assert qbo_env.emulator.stats.calls["GET /v3/company/{realm}/invoice"] == reads
    assert qbo_env.emulator.stats.calls[BATCH] - batches == 4
    assert qbo_env.emulator.stats.calls[QUERY_BATCH] - lookups == 4
    assert [r.external_id for r in again] == [r.external_id for r in results]
    assert len(_marked(qbo_env, "Invoice")) == 100


def test_writes_of_unknown_outcome_wait_when_their_lookup_fails_instead_of_asking_one_by_one(
        qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    items = [dataclasses.replace(i, attempt=2) for i in _outbounds(qbo_env, 40)]
    mapped = qbo_env.calls("/query")  # mapping read the company's tax model (CompanyInfo) once
    qbo_env.emulator.set_faults(burst_429=50, path_prefix="/v3/company/9130350000000001/batch")
    results = connector.upsert("invoice", items)
    assert all(isinstance(r.error, RetryableError) for r in results), [r.error for r in results][:3]
    assert qbo_env.calls("/query") == mapped, "looked up one by one"
    assert not _marked(qbo_env, "Invoice")
    qbo_env.emulator.set_faults()
    again = connector.upsert("invoice", items)
    assert all(r.ok for r in again) and len(_marked(qbo_env, "Invoice")) == 40


def test_stale_synctoken_update_succeeds_after_one_reread(qbo_env: QboEnv) -> None:
    (ext,) = qbo_env.seed(Customer=[{"DisplayName": "Stale Co"}])["Customer"]
    connector = qbo_env.connector()
    qbo_env.on_loop(lambda: qbo_env.emulator.edit(qbo_env.realm, "Customer", ext, {"CompanyName": "Meanwhile"}))
    payload = customer_from_canonical(Customer(id="c1", name="Stale Co", email="new@stale.example"))
    item = Outbound("customer", "c1", payload, idempotency_key="k-stale", external_id=ext, remote_version="0")
    reads = qbo_env.calls("/customer")
    (result,) = connector.upsert("customer", [item])
    assert result.ok, result.error
    stored = qbo_env.table("Customer")[ext]
    assert stored["PrimaryEmailAddr"] == {"Address": "new@stale.example"}
    assert stored["CompanyName"] == "Meanwhile"  # sparse: the other change survives
    assert stored["SyncToken"] == "2"
    faults = [r for r in qbo_env.emulator.stats.requests if r["status"] == 400]
    assert len(faults) == 1  # exactly one 5010
    assert qbo_env.calls("GET /v3/company/{realm}/customer") == 1  # exactly one re-read
    assert qbo_env.calls("/customer") - reads == 3  # stale save, re-read, re-apply


def test_duplicate_display_name_links_to_the_one_existing_customer(qbo_env: QboEnv) -> None:
    (existing,) = qbo_env.seed(Customer=[{"DisplayName": "Acme Corp"}])["Customer"]
    connector = qbo_env.connector()
    payload = customer_from_canonical(Customer(id="c-acme", name="Acme  corp"))
    (result,) = connector.upsert("customer", [Outbound("customer", "c-acme", payload, idempotency_key="k-acme")])
    assert result.ok, result.error
    assert result.external_id == existing and not result.created
    assert len(qbo_env.table("Customer")) == 1


def test_two_matching_customers_give_a_finding_and_no_write(qbo_env: QboEnv) -> None:
    first, second = qbo_env.seed(Customer=[
        {"DisplayName": "Acme Corp", "PrimaryEmailAddr": {"Address": "ap@acme.example"}},
        {"DisplayName": "Acme Holdings", "PrimaryEmailAddr": {"Address": "ap@acme.example"}}])["Customer"]
    before = {k: dict(v) for k, v in qbo_env.table("Customer").items()}
    connector = qbo_env.connector()
    payload = customer_from_canonical(Customer(id="c-acme", name="Acme Corp", email="ap@acme.example"))
    (result,) = connector.upsert("customer", [Outbound("customer", "c-acme", payload, idempotency_key="k-acme")])
    assert isinstance(result.error, DuplicateError)
    assert sorted(result.error.candidates) == sorted([first, second])
    assert result.external_id is None
    assert qbo_env.table("Customer") == before


def test_xml_429_is_recognised_as_rate_limiting_and_waited_out(qbo_env: QboEnv) -> None:
    qbo_env.seed(Customer=[{"DisplayName": "One"}])
    connector = qbo_env.connector()
    connector.lookup("customer", "warm-up")
    qbo_env.emulator.set_faults(burst_429=2)
    assert len([r for p in connector.fetch_all("customer") for r in p.records]) == 1
    assert qbo_env.emulator.stats.faults_injected["429"] == 2
    throttled = [r for r in qbo_env.emulator.stats.requests if r["status"] == 429]
    assert len(throttled) == 2
    assert qbo_env.waits.count(60.0) == 2  # Intuit's "wait 60 seconds", slept through the policy


def test_eur_invoice_in_usd_company_carries_exchange_rate_and_home_amount(qbo_env: QboEnv) -> None:
    customer, item = _basics(qbo_env)
    qbo_env.seed(ExchangeRate=[{"SourceCurrencyCode": "EUR", "Rate": "1.0825", "AsOfDate": "2026-10-30"}])
    connector = qbo_env.connector()
    invoice = _invoice("inv-eur", customer, item, currency="EUR", cents=10000)
    payload = connector.from_canonical(invoice, Refs())
    (result,) = connector.upsert("invoice", [Outbound("invoice", "inv-eur", payload, idempotency_key="k-eur")])
    assert result.ok, result.error
    stored = qbo_env.table("Invoice")[str(result.external_id)]
    assert stored["CurrencyRef"] == {"value": "EUR", "name": "Euro"}  # Intuit names it
    assert stored["ExchangeRate"] == Decimal("1.0825")
    assert stored["TotalAmt"] == Decimal("200.00")
    assert stored["HomeTotalAmt"] == Decimal("216.50")
    assert result.record is not None
    canonical = connector.to_canonical(result.record, Refs())
    assert canonical.total == Money(20000, "EUR")  # type: ignore[attr-defined]
    assert canonical.extra == {"exchange_rate": "1.0825", "home_total": {"minor": 21650, "currency": "USD"}}


def test_foreign_invoice_without_any_rate_is_refused_not_written_at_par(qbo_env: QboEnv) -> None:
    customer, item = _basics(qbo_env)
    connector = qbo_env.connector()
    payload = connector.from_canonical(_invoice("inv-gbp", customer, item, currency="GBP"), Refs())
    (result,) = connector.upsert("invoice", [Outbound("invoice", "inv-gbp", payload, idempotency_key="k-gbp")])
    assert isinstance(result.error, InvalidError)
    assert "1:1" in str(result.error)
    assert not qbo_env.table("Invoice")


def test_payment_is_applied_to_its_invoice_and_refund_written_as_refund_receipt(qbo_env: QboEnv) -> None:
    customer, item = _basics(qbo_env)
    connector = qbo_env.connector()
    refs = Refs()
    payload = connector.from_canonical(_invoice("inv-p", customer, item), refs)
    (inv,) = connector.upsert("invoice", [Outbound("invoice", "inv-p", payload, idempotency_key="k-inv-p")])
    refs.links["inv-p"] = str(inv.external_id)
    payment = Payment(id="pay-1", customer_id=f"customer:{customer}", invoice_id="inv-p",
                      amount=Money(10000, "USD"), paid_at=datetime(2026, 11, 2, tzinfo=UTC), reference="ch_123")
    refund = Refund(id="ref-1", customer_id=f"customer:{customer}", amount=Money(2500, "USD"), reason="Goodwill")
    (paid,) = connector.upsert("payment", [Outbound("payment", "pay-1", connector.from_canonical(payment, refs),
                                                    idempotency_key="k-pay-1")])
    (refunded,) = connector.upsert("refund", [Outbound("refund", "ref-1", connector.from_canonical(refund, refs),
                                                       idempotency_key="k-ref-1")])
    assert paid.ok and refunded.ok, (paid.error, refunded.error)
    assert qbo_env.table("Invoice")[str(inv.external_id)]["Balance"] == Decimal("146.90")
    assert qbo_env.table("RefundReceipt")[str(refunded.external_id)]["TotalAmt"] == Decimal("25.00")
    assert paid.record is not None
    mapped = connector.to_canonical(paid.record, refs)
    assert mapped.invoice_id == f"invoice:{inv.external_id}"  # type: ignore[attr-defined]
    assert connector.lookup("payment", "pay-1") is not None
    assert qbo_env.table("Payment")[str(paid.external_id)]["PrivateNote"] == marker("pay-1")


def test_void_of_a_linked_invoice_zeroes_it_and_keeps_the_marker(qbo_env: QboEnv) -> None:
    customer, item = _basics(qbo_env)
    connector = qbo_env.connector()
    payload = connector.from_canonical(_invoice("inv-v", customer, item), Refs())
    (created,) = connector.upsert("invoice", [Outbound("invoice", "inv-v", payload, idempotency_key="k-v")])
    void = Outbound("invoice", "inv-v", payload, idempotency_key="k-v-void", external_id=created.external_id,
                    operation="void")
    (result,) = connector.upsert("invoice", [void])
    assert result.ok, result.error
    stored = qbo_env.table("Invoice")[str(created.external_id)]
    assert stored["TotalAmt"] == 0 and stored["PrivateNote"].endswith(marker("inv-v"))
    found = connector.lookup("invoice", "inv-v")
    assert found is not None and found.external_id == created.external_id


def test_an_amount_edited_behind_the_hubs_back_is_not_taken_as_already_written() -> None:
    from connectors.quickbooks.writes import _same

    def invoice(amount: str) -> dict[str, object]:
        return {"CustomerRef": {"value": "58"}, "Line": [
            {"DetailType": "SalesItemLineDetail", "Amount": amount,
             "SalesItemLineDetail": {"Qty": "1", "UnitPrice": amount, "ItemRef": {"value": "1"}}},
            {"DetailType": "SubTotalLineDetail", "Amount": amount}]}

    wanted = invoice("99.00")
    assert _same({**invoice("99"), "SyncToken": "3", "Id": "7"}, wanted)  # same values, other spelling
    assert not _same(invoice("199.00"), wanted)  # edited in QuickBooks: the hub must write again
