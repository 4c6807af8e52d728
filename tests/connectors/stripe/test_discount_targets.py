"""Discounts redeemed where Stripe takes them (issue 19), through the official SDK: a promotion
code on a subscription, a coupon on an invoice item (kept when the pending item joins the next
subscription invoice), and an unknown promotion code refused as Stripe refuses it. (Coupons on
invoices, amounts and limits: test_coupons.py.)"""

from __future__ import annotations

import pytest
import stripe
from openapi_core import OpenAPI

from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.helpers import company
from tests.connectors.stripe.test_spec_fidelity import _validate, stripe_openapi

__all__ = ["stripe_openapi"]  # the session fixture, used by name below


def test_a_promotion_code_on_a_subscription_and_a_coupon_on_an_item_apply(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    emulator.record_exchanges = True
    raw_client.v1.coupons.create(params={"id": "TEN", "percent_off": 10, "duration": "forever"})
    raw_client.v1.coupons.create(params={"id": "FIVE", "amount_off": 500, "currency": "usd"})
    promo = raw_client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "TEN"},
                                                         "code": "LAUNCH"})
    item = raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "amount": 2_000, "currency": "usd",
                                                      "description": "Onboarding", "discounts": [{"coupon": "FIVE"}]})
    assert len(item.discounts or []) == 1
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}],
                                                     "discounts": [{"promotion_code": str(promo.id)}]})
    (sub_discount,) = raw_client.v1.subscriptions.retrieve(str(sub.id), params={"expand": ["discounts"]}).discounts
    assert not isinstance(sub_discount, str) and sub_discount.promotion_code == promo.id
    invoice = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    lines = {line.description: line.discount_amounts or [] for line in invoice.lines.data}
    # the item's own 5.00 first, then 10 % of what is left of each line: 150 and 500
    assert [d.amount for d in lines["Onboarding"]] == [500, 150]
    assert [d.amount for d in lines["1 × Pro"]] == [500]
    assert invoice.total == 2_000 + 5_000 - 500 - 150 - 500
    assert raw_client.v1.promotion_codes.retrieve(str(promo.id)).times_redeemed == 1
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}],
                                                   "discounts": [{"promotion_code": "promo_unknown"}]})
    error = unknown.value.error
    assert unknown.value.http_status == 400 and error is not None
    assert (error.code, error.param) == ("resource_missing", "discounts[0][promotion_code]")
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)
