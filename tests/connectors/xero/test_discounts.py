"""Discounts and exact line totals through the real SDK into the Xero emulator and back: what
Xero computes from what the hub sends is the source's total to the cent (issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from connectors.base import Outbound
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator
from mapping.model import Discount, Invoice, InvoiceLine, Money
from tests.connectors.xero.conftest import Refs


def _line(description: str, quantity: int, amount: int, discount: int | None = None) -> InvoiceLine:
    return InvoiceLine(description, Decimal(quantity), Money(amount // quantity, "USD"), Money(amount, "USD"),
                       tax_rate=Decimal(0), discount_amount=Money(discount, "USD") if discount else None)


def _write_and_read(emu: XeroEmulator, connector: XeroConnector, refs: Refs, invoice: Invoice) -> Invoice:
    refs.link("customer", invoice.customer_id, emu.seed_now({"Contacts": [{"Name": "Acme Ltd"}]})["Contacts"][0])
    (result,) = connector.upsert("invoice", [Outbound("invoice", invoice.id, connector.from_canonical(invoice, refs),
                                                      idempotency_key="k-" + invoice.id)])
    assert result.ok and result.record is not None, result.error
    stored = emu.live("Invoices")[0]
    assert stored["Total"] == invoice.total.to_decimal(), stored["LineItems"]
    return connector.to_canonical(result.record, refs)  # type: ignore[return-value]


def test_an_invoice_coupon_spread_over_lines_leaves_xero_at_the_discounted_total(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    # 1,180.00 of lines, a 100.00 coupon on the invoice: Xero once got 1,180.00
    lines = (_line("Seats", 4, 80000), _line("Support", 1, 38000))
    invoice = Invoice(id="hub-inv-disc", customer_id="hub-cust-1", number="in_disc", status="open", currency="USD",
                      issued_at=datetime(2026, 11, 1, tzinfo=UTC), lines=lines,
                      discounts=(Discount("SPRING", Money(10000, "USD")),),
                      subtotal=Money(118000, "USD"), total=Money(108000, "USD"), amount_due=Money(108000, "USD"))
    back = _write_and_read(emu, connector, refs, invoice)
    stored = emu.live("Invoices")[0]
    assert [line["DiscountAmount"] for line in stored["LineItems"]] == [Decimal("67.80"), Decimal("32.20")]
    assert stored["SubTotal"] == Decimal("1080.00") and stored["AmountDue"] == Decimal("1080.00")
    assert back.total == invoice.total and back.subtotal == invoice.subtotal  # before discounts, as the hub's
    assert sum(d.amount.minor for d in back.discounts) == 10000 and back.totals_consistent()


def test_a_line_discount_and_an_odd_unit_price_are_sent_as_the_line_amounts(
        emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    lines = (_line("Proration, 3 seats", 3, 15329), _line("Add-on", 1, 5000, discount=1250))
    invoice = Invoice(id="hub-inv-odd", customer_id="hub-cust-1", number="in_odd", status="open", currency="USD",
                      issued_at=datetime(2026, 11, 1, tzinfo=UTC), lines=lines,
                      discounts=(Discount("ADDON25", Money(1250, "USD")),),
                      subtotal=Money(20329, "USD"), total=Money(19079, "USD"), amount_due=Money(19079, "USD"))
    back = _write_and_read(emu, connector, refs, invoice)
    stored = emu.live("Invoices")[0]
    first = stored["LineItems"][0]
    assert (first["Quantity"], first["UnitAmount"], first["LineAmount"]) == (3, Decimal("51.0967"), Decimal("153.29"))
    assert [line.amount.minor for line in back.lines] == [15329, 5000]
    assert [line.discount_amount.minor if line.discount_amount else 0 for line in back.lines] == [0, 1250]
