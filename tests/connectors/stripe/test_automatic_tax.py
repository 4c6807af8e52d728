"""Automatic tax (Stripe Tax) in the Stripe emulator (issue 19), through the official SDK: the
customer's location and tax ids decide the tax (``customer.tax.automatic_tax``), lines carry
``taxes`` with a ``taxability_reason`` (standard rated, reverse charge for an EU business with a
verified VAT id, customer exempt), exact in minor units; no location, no finalizing."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from openapi_core import OpenAPI

from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.helpers import company
from tests.connectors.stripe.test_spec_fidelity import _validate, stripe_openapi

__all__ = ["stripe_openapi"]  # the session fixture, used by name below

BERLIN = {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}
NEW_YORK = {"line1": "1 Main St", "city": "New York", "postal_code": "10001", "state": "NY", "country": "US"}
SAN_FRANCISCO = {"line1": "1 Market St", "city": "San Francisco", "postal_code": "94105", "state": "CA",
                 "country": "US"}


def _customer(raw: stripe.StripeClient, name: str, address: dict[str, str] | None = None, **extra: Any) -> str:
    params: dict[str, Any] = {"name": name, **extra}
    if address:
        params["address"] = address
    return str(raw.v1.customers.create(params=params).id)  # type: ignore[arg-type]


def _taxed_invoice(raw: stripe.StripeClient, customer: str, amount: int) -> Any:
    invoice = raw.v1.invoices.create(params={"customer": customer, "collection_method": "send_invoice",
                                             "days_until_due": 30, "currency": "usd",
                                             "automatic_tax": {"enabled": True}})
    raw.v1.invoice_items.create(params={"customer": customer, "invoice": str(invoice.id), "amount": amount,
                                        "currency": "usd", "description": "Consulting"})
    return raw.v1.invoices.finalize_invoice(str(invoice.id))


def _tax(invoice: Any) -> list[tuple[int, str, int, str]]:
    (line,) = invoice.lines.data
    return [(t.amount, t.taxability_reason, t.taxable_amount, t.tax_behavior) for t in line.taxes]


def test_the_customers_location_and_tax_ids_decide_the_tax(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.record_exchanges = True
    consumer = _customer(raw_client, "Anna Schmidt", BERLIN)
    business = _customer(raw_client, "Beispiel GmbH", BERLIN,
                         tax_id_data=[{"type": "eu_vat", "value": "DE123456789"}])
    new_york = _customer(raw_client, "NY Corp", NEW_YORK)
    california = _customer(raw_client, "CA Corp", SAN_FRANCISCO)
    exempt = _customer(raw_client, "Charity", NEW_YORK, tax_exempt="exempt")
    nowhere = _customer(raw_client, "No Address")
    statuses = {c: raw_client.v1.customers.retrieve(c, params={"expand": ["tax"]}).tax.automatic_tax  # type: ignore[union-attr]
                for c in (consumer, business, new_york, california, nowhere)}
    assert statuses == {consumer: "supported", business: "supported", new_york: "supported",
                        california: "not_collecting", nowhere: "unrecognized_location"}
    located = raw_client.v1.customers.retrieve(new_york, params={"expand": ["tax"]}).tax
    assert located is not None and located.location is not None
    assert (located.location.country, located.location.state, located.location.source) == ("US", "NY", "billing_address")
    (vat_id,) = raw_client.v1.customers.tax_ids.list(business).data
    assert vat_id.verification is not None and vat_id.verification.status == "verified"

    de = _taxed_invoice(raw_client, consumer, 12_345)
    assert _tax(de) == [(2_346, "standard_rated", 12_345, "exclusive")]  # 19 % of 123.45 = 23.4555
    assert (de.total, de.total_excluding_tax) == (14_691, 12_345)
    assert de.automatic_tax.enabled and de.automatic_tax.status == "complete"
    rate = raw_client.v1.tax_rates.retrieve(str(de.lines.data[0].taxes[0].tax_rate_details.tax_rate))
    assert (rate.percentage, rate.country, rate.tax_type, rate.inclusive) == (19.0, "DE", "vat", False)
    reverse = _taxed_invoice(raw_client, business, 12_345)
    assert _tax(reverse) == [(0, "reverse_charge", 0, "exclusive")] and reverse.total == 12_345
    assert [(t.type, t.value) for t in reverse.customer_tax_ids or []] == [("eu_vat", "DE123456789")]
    ny = _taxed_invoice(raw_client, new_york, 12_345)
    assert _tax(ny) == [(1_096, "standard_rated", 12_345, "exclusive")]  # 8.875 % = 10.9562
    assert ny.total == 13_441
    assert _tax(_taxed_invoice(raw_client, exempt, 12_345)) == [(0, "customer_exempt", 0, "exclusive")]
    ca = _taxed_invoice(raw_client, california, 12_345)
    assert _tax(ca) == [] and ca.total == 12_345  # not registered in California: no tax
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)


def test_an_inclusive_price_a_subscription_and_a_customer_without_a_location(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    consumer = _customer(raw_client, "Anna Schmidt", BERLIN)
    product = str(emulator.table("price")[refs["basic_m"]]["product"])
    inclusive = raw_client.v1.prices.create(params={"product": product, "currency": "usd", "unit_amount": 11_900,
                                                    "tax_behavior": "inclusive", "recurring": {"interval": "month"}})
    sub = raw_client.v1.subscriptions.create(params={"customer": consumer, "items": [{"price": str(inclusive.id)}],
                                                     "automatic_tax": {"enabled": True}})
    assert sub.automatic_tax.enabled
    first = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert _tax(first) == [(1_900, "standard_rated", 10_000, "inclusive")]  # 119.00 incl. 19 %: 19.00
    assert (first.total, first.total_excluding_tax) == (11_900, 10_000)
    with pytest.raises(stripe.InvalidRequestError) as not_located:
        _taxed_invoice(raw_client, _customer(raw_client, "No Address"), 5_000)
    assert not_located.value.code == "customer_tax_location_invalid"
    with pytest.raises(stripe.InvalidRequestError) as sub_refused:
        raw_client.v1.subscriptions.create(params={"customer": _customer(raw_client, "Nobody"),
                                                   "items": [{"price": refs["basic_m"]}],
                                                   "automatic_tax": {"enabled": True}})
    assert sub_refused.value.http_status == 400
    unverified = _customer(raw_client, "Typo GmbH", BERLIN, tax_id_data=[{"type": "eu_vat", "value": "DE12"}])
    (typo,) = raw_client.v1.customers.tax_ids.list(unverified).data
    assert typo.verification is not None and typo.verification.status == "unverified"
    assert _tax(_taxed_invoice(raw_client, unverified, 1_000)) == [(190, "standard_rated", 1_000, "exclusive")]


def test_tax_ids_are_read_and_deleted_and_locations_validated_on_request(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.record_exchanges = True
    business = _customer(raw_client, "Beispiel GmbH", BERLIN)
    vat = raw_client.v1.customers.tax_ids.create(business, params={"type": "eu_vat", "value": "DE 123 456 789"})
    assert (vat.value, vat.country) == ("DE123456789", "DE")
    assert raw_client.v1.customers.tax_ids.retrieve(business, str(vat.id)).id == vat.id
    assert raw_client.v1.customers.tax_ids.delete(business, str(vat.id)).deleted is True
    assert raw_client.v1.customers.tax_ids.list(business).data == []
    with pytest.raises(stripe.InvalidRequestError) as gone:
        raw_client.v1.customers.tax_ids.retrieve(business, str(vat.id))
    assert gone.value.http_status == 404
    assert _tax(_taxed_invoice(raw_client, business, 1_000))[0][1] == "standard_rated"  # no id: VAT due
    with pytest.raises(stripe.InvalidRequestError) as unplaced:
        raw_client.v1.customers.create(params={"name": "Somewhere", "address": {"country": "US"},
                                               "tax": {"validate_location": "immediately"}})
    assert unplaced.value.code == "customer_tax_location_invalid"
    draft = raw_client.v1.invoices.create(params={"customer": business, "collection_method": "send_invoice",
                                                  "days_until_due": 30, "automatic_tax": {"enabled": True}})
    vat_rate = raw_client.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 19.0, "inclusive": False})
    for bad in ({"amount": 100, "tax_rates": [str(vat_rate.id)]}, {"amount": -100}):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            raw_client.v1.invoice_items.create(params={  # type: ignore[arg-type]
                "customer": business, "invoice": str(draft.id), "currency": "usd", **bad})
        assert refused.value.http_status == 400, bad
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)
