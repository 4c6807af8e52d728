"""Canonical entities: lossless JSON and a content hash stable across processes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapping.model import (
    Address,
    Customer,
    Invoice,
    InvoiceLine,
    Money,
    TaxLine,
    content_hash,
    from_data,
    repoint,
    stable_id,
    to_data,
)


def sample_invoice(**overrides: Any) -> Invoice:
    line = InvoiceLine("Pro plan", Decimal("2"), Money(1500, "EUR"), Money(3000, "EUR"), tax_rate=Decimal("20"),
                       tax_amount=Money(600, "EUR"))
    fields: dict[str, Any] = dict(
        id="inv-1", customer_id="cus-1", number="INV-0001", status="open", currency="EUR",
        issued_at=datetime(2026, 10, 1, 9, 30, tzinfo=UTC), due_date=date(2026, 10, 31), lines=(line,),
        tax_lines=(TaxLine("VAT 20%", Decimal("20"), Money(600, "EUR")),), subtotal=Money(3000, "EUR"),
        tax=Money(600, "EUR"), total=Money(3600, "EUR"), amount_due=Money(3600, "EUR"),
    )
    fields.update(overrides)
    return Invoice(**fields)


def test_entities_round_trip_through_json_data() -> None:
    invoice = sample_invoice()
    assert from_data("invoice", to_data(invoice)) == invoice
    customer = Customer("c1", name="Acme", email="ap@acme.test", address=Address(city="Lyon", country="FR"))
    assert from_data("customer", to_data(customer)) == customer


@given(st.permutations(["id", "name", "email", "phone", "currency"]))
def test_content_hash_is_identical_for_equal_entities_built_in_any_field_order(order: list[str]) -> None:
    values: dict[str, Any] = {"id": "c1", "name": "Acme", "email": "a@acme.test", "phone": "+33 1", "currency": "EUR"}
    built = Customer(**{k: values[k] for k in order})
    assert content_hash(built) == content_hash(Customer(**values))


MUTATIONS: dict[str, Any] = {
    "customer_id": "cus-2", "number": "INV-0002", "status": "paid", "currency": "USD",
    "issued_at": datetime(2026, 10, 2, tzinfo=UTC), "due_date": date(2026, 11, 30), "lines": (),
    "tax_lines": (), "subtotal": Money(3001, "EUR"), "tax": Money(601, "EUR"), "total": Money(3601, "EUR"),
    "amount_paid": Money(1, "EUR"), "amount_due": Money(0, "EUR"), "tax_inclusive": True,
    "subscription_id": "sub-1", "period_start": datetime(2026, 9, 1, tzinfo=UTC), "extra": {"k": "v"},
}


@pytest.mark.parametrize("field_name", sorted(MUTATIONS))
def test_content_hash_changes_when_any_non_volatile_field_changes(field_name: str) -> None:
    base = sample_invoice()
    assert content_hash(dataclasses.replace(base, **{field_name: MUTATIONS[field_name]})) != content_hash(base)


def test_content_hash_ignores_volatile_fields() -> None:
    base = sample_invoice()
    touched = dataclasses.replace(base, updated_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert content_hash(touched) == content_hash(base)


def test_content_hash_is_stable_across_processes() -> None:
    code = ("from tests.mapping.test_model import sample_invoice; from mapping.model import content_hash; "
            "print(content_hash(sample_invoice()))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert other.stdout.strip() == content_hash(sample_invoice())


def test_equal_decimals_hash_equally_whatever_their_scale() -> None:
    a = sample_invoice(lines=(InvoiceLine("x", Decimal("1.50"), Money(100, "EUR"), Money(150, "EUR")),))
    b = sample_invoice(lines=(InvoiceLine("x", Decimal("1.5"), Money(100, "EUR"), Money(150, "EUR")),))
    assert content_hash(a) == content_hash(b)


def test_naive_datetimes_and_floats_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        to_data(sample_invoice(issued_at=datetime(2026, 1, 1)))
    with pytest.raises(TypeError, match="float"):
        to_data(sample_invoice(extra={"amount": 19.99}))


def test_stable_ids_are_deterministic_per_system_record() -> None:
    assert stable_id("stripe", "customer", "cus_1") == stable_id("stripe", "customer", "cus_1")
    assert stable_id("stripe", "customer", "cus_1") != stable_id("xero", "customer", "cus_1")


def test_invoice_totals_consistency_check() -> None:
    assert sample_invoice().totals_consistent()
    assert not sample_invoice(total=Money(3599, "EUR")).totals_consistent()


def test_repoint_moves_every_reference_to_an_id_and_nothing_else() -> None:
    line = InvoiceLine("Pro plan", Decimal("1"), Money(1500, "EUR"), Money(1500, "EUR"), product_id="old")
    invoice = sample_invoice(id="old", customer_id="old", lines=(line, dataclasses.replace(line, product_id="p2")))
    moved = repoint(invoice, "old", "new")
    assert moved.id == "old"  # its own id is not a reference
    assert moved.customer_id == "new" and [ln.product_id for ln in moved.lines] == ["new", "p2"]
    assert moved.total == invoice.total and moved.number == invoice.number
    assert repoint(invoice, "absent", "new") is invoice  # nothing named: the very same value
