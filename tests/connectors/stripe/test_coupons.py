"""Coupons, promotion codes and discounts in the Stripe emulator, through the official SDK, and
credit notes refused unless their refunds and credits add up (issues 18 and 19)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from openapi_core import OpenAPI

from connectors.emulation import RunningEmulator
from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.conftest import seed
from tests.connectors.stripe.helpers import company
from tests.connectors.stripe.test_spec_fidelity import _validate, stripe_openapi

__all__ = ["stripe_openapi"]  # the session fixture, used by name below


def _read(raw: stripe.StripeClient, invoice_id: str, *expand: str) -> Any:
    """The invoice as the SDK reads it, loosely typed (the SDK's stubs make every list optional)."""
    return raw.v1.invoices.retrieve(invoice_id, params={"expand": list(expand)})


def _draft(raw: stripe.StripeClient, customer: str, amounts: list[int], **params: Any) -> str:
    create: Any = raw.v1.invoices.create
    invoice = create(params={"customer": customer, "collection_method": "send_invoice",
                                             "days_until_due": 30, **params})
    for n, amount in enumerate(amounts):
        raw.v1.invoice_items.create(params={"customer": customer, "invoice": invoice.id, "amount": amount,
                                            "description": f"Line {n}"})
    assert invoice.id is not None
    return invoice.id


def test_coupon_crud_in_stripes_shape_and_refusals(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.record_exchanges = True
    ten = raw_client.v1.coupons.create(params={"id": "TEN", "percent_off": 10, "duration": "repeating",
                                               "duration_in_months": 3, "name": "Ten percent"})
    assert (ten.id, ten.percent_off, ten.amount_off, ten.duration, ten.duration_in_months, ten.valid) == \
        ("TEN", 10.0, None, "repeating", 3, True)
    off = raw_client.v1.coupons.create(params={"amount_off": 10_000, "currency": "usd", "max_redemptions": 1})
    assert off.id and off.currency == "usd" and off.duration == "once"
    assert raw_client.v1.coupons.retrieve("TEN").name == "Ten percent"
    assert raw_client.v1.coupons.update("TEN", params={"name": "Tenner"}).name == "Tenner"
    assert {c.id for c in raw_client.v1.coupons.list().data} == {"TEN", off.id}
    for params, code, param in [({"amount_off": 500}, "parameter_missing", "currency"),
                                ({"percent_off": 10, "amount_off": 5, "currency": "usd"}, "parameter_invalid", "percent_off"),
                                ({"percent_off": 120}, "parameter_invalid", "percent_off"),
                                ({"percent_off": 5, "duration": "repeating"}, "parameter_missing", "duration_in_months"),
                                ({"id": "TEN", "percent_off": 5}, "resource_already_exists", "id")]:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            raw_client.v1.coupons.create(params=params)  # type: ignore[arg-type]
        assert caught.value.http_status == 400 and caught.value.code == code, params
        assert caught.value.error is not None and caught.value.error.param == param
    deleted = raw_client.v1.coupons.delete("TEN")
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as gone:
        raw_client.v1.coupons.retrieve("TEN")
    assert gone.value.http_status == 404 and gone.value.code == "resource_missing"
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)


def test_a_percent_coupon_is_taken_per_line_before_tax(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    raw_client.v1.coupons.create(params={"id": "TEN", "percent_off": 10})
    emulator.record_exchanges = True
    invoice_id = _draft(raw_client, refs["acme"], [12_345, 6_789], default_tax_rates=[refs["vat"]],
                        discounts=[{"coupon": "TEN"}])
    invoice = _read(raw_client, invoice_id, "discounts")
    (discount,) = invoice.discounts
    assert not isinstance(discount, str) and discount.object == "discount"
    assert discount.source.coupon == "TEN" and discount.invoice == invoice_id
    lines = invoice.lines.data
    assert [[(d.amount, d.discount) for d in line.discount_amounts] for line in lines] == \
        [[(1_235, discount.id)], [(679, discount.id)]]  # 10% of each line, rounded half up
    assert [line.taxes[0].taxable_amount for line in lines] == [11_110, 6_110]  # after the discount
    assert [line.taxes[0].amount for line in lines] == [2_222, 1_222]
    assert [(d.amount, d.discount) for d in invoice.total_discount_amounts] == [(1_914, discount.id)]
    assert (invoice.subtotal, invoice.total_excluding_tax, invoice.total) == (19_134, 17_220, 17_220 + 3_444)
    assert raw_client.v1.coupons.retrieve("TEN").times_redeemed == 1
    problems = _validate(stripe_openapi, list(emulator.exchanges))
    assert not problems, "\n".join(problems)


def test_an_amount_coupon_is_spread_over_the_lines_to_the_cent(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    raw_client.v1.coupons.create(params={"id": "HUNDRED", "amount_off": 10_000, "currency": "usd"})
    invoice_id = _draft(raw_client, refs["acme"], [50_000, 33_333, 34_667], discounts=[{"coupon": "HUNDRED"}])
    invoice = _read(raw_client, invoice_id)
    shares = [line.discount_amounts[0].amount for line in invoice.lines.data]
    assert shares == [4_237, 2_825, 2_938] and sum(shares) == 10_000  # pro rata, largest remainder
    assert (invoice.subtotal, invoice.total) == (118_000, 108_000)
    small = _draft(raw_client, refs["acme"], [4_000], discounts=[{"coupon": "HUNDRED"}])
    assert raw_client.v1.invoices.retrieve(small).total == 0  # never below zero


def test_line_discounts_come_first_and_prorations_and_credits_take_none(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    raw_client.v1.coupons.create(params={"id": "FIVE", "amount_off": 500, "currency": "usd"})
    raw_client.v1.coupons.create(params={"id": "HALF", "percent_off": 50})
    invoice = raw_client.v1.invoices.create(params={"customer": refs["acme"], "discounts": [{"coupon": "HALF"}]})
    assert invoice.id is not None
    item = raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "invoice": invoice.id,
                                                      "amount": 2_000, "discounts": [{"coupon": "FIVE"}]})
    raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "invoice": invoice.id, "amount": -300,
                                               "description": "Credit"})
    assert item.discounts and raw_client.v1.invoice_items.retrieve(item.id).discountable is True
    read = _read(raw_client, invoice.id)
    first, credit = read.lines.data
    assert [d.amount for d in first.discount_amounts] == [500, 750]  # 5.00 off, then half of 15.00
    assert credit.discountable is False and credit.discount_amounts == []
    assert read.subtotal == 2_000 - 300 - 500  # item discounts are in the subtotal
    assert read.total == 2_000 - 300 - 500 - 750
    assert sorted(d.amount for d in read.total_discount_amounts) == [500, 750]


def test_promotion_codes_redeem_their_coupon_within_their_limits(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    raw_client.v1.coupons.create(params={"id": "TEN", "percent_off": 10})
    emulator.record_exchanges = True
    promo = raw_client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "TEN"},
                                                         "code": "SPRING-10", "max_redemptions": 1})
    assert promo.promotion.coupon == "TEN" and promo.active and promo.times_redeemed == 0
    assert [p.id for p in raw_client.v1.promotion_codes.list(params={"code": "spring-10"}).data] == [promo.id]
    assert [p.id for p in raw_client.v1.promotion_codes.list(params={"coupon": "TEN"}).data] == [promo.id]
    assert raw_client.v1.promotion_codes.list(params={"coupon": "OTHER"}).data == []
    invoice_id = _draft(raw_client, refs["acme"], [1_000], discounts=[{"promotion_code": promo.id}])
    invoice = _read(raw_client, invoice_id, "discounts")
    (discount,) = invoice.discounts
    assert not isinstance(discount, str) and discount.promotion_code == promo.id
    assert invoice.total == 900 and raw_client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    with pytest.raises(stripe.InvalidRequestError) as used_up:
        _draft(raw_client, refs["acme"], [1_000], discounts=[{"promotion_code": promo.id}])
    assert used_up.value.http_status == 400 and used_up.value.error is not None
    assert used_up.value.error.param == "discounts[0][promotion_code]"
    assert raw_client.v1.promotion_codes.update(promo.id, params={"active": False}).active is False
    with pytest.raises(stripe.InvalidRequestError) as missing_coupon:
        raw_client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "NOPE"}})
    assert missing_coupon.value.code == "resource_missing"
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)


def test_unknown_coupons_are_refused_wherever_they_are_redeemed(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    before = len(emulator.table("invoice"))
    with pytest.raises(stripe.InvalidRequestError) as on_invoice:
        raw_client.v1.invoices.create(params={"customer": refs["acme"], "discounts": [{"coupon": "NOPE"}]})
    error = on_invoice.value.error
    assert on_invoice.value.http_status == 400 and error is not None
    assert (error.type, error.code, error.param, error.message) == \
        ("invalid_request_error", "resource_missing", "discounts[0][coupon]", "No such coupon: 'NOPE'")
    assert len(emulator.table("invoice")) == before  # nothing made
    with pytest.raises(stripe.InvalidRequestError) as on_item:
        raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "amount": 100,
                                                   "discounts": [{"promotion_code": "promo_nope"}]})
    assert on_item.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as on_sub:
        raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}],
                                                   "discounts": [{"coupon": "NOPE"}]})
    assert on_sub.value.code == "resource_missing"
    raw_client.v1.coupons.create(params={"id": "EUROS", "amount_off": 100, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as other_currency:
        raw_client.v1.invoices.create(params={"customer": refs["acme"], "currency": "usd",
                                              "discounts": [{"coupon": "EUROS"}]})
    assert other_currency.value.http_status == 400


def test_a_once_coupon_on_a_subscription_discounts_its_first_invoice_only(
        cards_on_file: StripeEmulator, running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    raw_client.v1.coupons.create(params={"id": "WELCOME", "amount_off": 500, "currency": "usd"})
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}],
                                                     "discounts": [{"coupon": "WELCOME"}]})
    first = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    (discount,) = first.discounts
    assert first.total == 4_500 and emulator.table("discount")[str(discount)]["subscription"] == sub.id
    emulator.clock.advance(32 * 86400)
    assert emulator.renew_subscriptions()
    renewal = raw_client.v1.invoices.retrieve(str(raw_client.v1.subscriptions.retrieve(str(sub.id)).latest_invoice))
    assert renewal.id != first.id and renewal.total == 5_000 and renewal.discounts == []


def test_a_credit_note_must_refund_or_credit_exactly_what_it_credits_after_payment(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    made = seed(running_stripe, {"invoices": [{"customer": refs["acme"], "currency": "usd", "status": "paid",
                                               "items": [{"amount": 5_000, "description": "Seats"}]},
                                              {"customer": refs["acme"], "currency": "usd", "status": "open",
                                               "items": [{"amount": 4_000, "description": "Seats"}]}]})
    paid, open_ = made["created"]["invoices"]
    line = raw_client.v1.invoices.retrieve(paid).lines.data[0].id
    create: Any = raw_client.v1.credit_notes.create
    credit: Any = {"invoice": paid, "lines": [{"type": "invoice_line_item", "invoice_line_item": line, "amount": 3_000}]}
    for extra in ({}, {"refund_amount": 2_000}, {"refund_amount": 2_000, "out_of_band_amount": 2_000}):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            create(params={**credit, **extra})
        assert caught.value.http_status == 400, extra
    assert raw_client.v1.credit_notes.list(params={"invoice": paid}).data == []
    note = create(params={**credit, "refund_amount": 2_000, "out_of_band_amount": 1_000})
    assert (note.total, note.post_payment_amount, note.pre_payment_amount, note.out_of_band_amount) == \
        (3_000, 3_000, 0, 1_000)
    with pytest.raises(stripe.InvalidRequestError):  # more than is left to credit
        create(params={**credit, "out_of_band_amount": 3_000})
    pre = raw_client.v1.credit_notes.create(params={"invoice": open_, "amount": 1_000})
    assert (pre.type, pre.pre_payment_amount) == ("pre_payment", 1_000)
    assert raw_client.v1.invoices.retrieve(open_).amount_due == 3_000
    with pytest.raises(stripe.InvalidRequestError):  # nothing was paid: nothing to refund
        raw_client.v1.credit_notes.create(params={"invoice": open_, "amount": 500, "refund_amount": 500})
