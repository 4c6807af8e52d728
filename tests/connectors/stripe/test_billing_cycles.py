"""Subscription billing in the Stripe emulator as Stripe bills (issue 19), through the official
SDK: metered prices billed in arrears from meter events, pending invoice items pulled into the
next invoice, and billing cycle anchors (``billing_cycle_anchor_config``) shared by two
subscriptions. Every successful answer is validated against Stripe's OpenAPI spec."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import stripe
from openapi_core import OpenAPI

from connectors.emulation import RunningEmulator
from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.helpers import company
from tests.connectors.stripe.test_spec_fidelity import _validate, stripe_openapi

pytestmark = pytest.mark.usefixtures("cards_on_file")  # the company pays by cards on file

__all__ = ["stripe_openapi"]  # the session fixture, used by name below

DAY = 86400
JAN_15 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def _ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


def _spec_clean(api: OpenAPI, emulator: StripeEmulator) -> None:
    problems = _validate(api, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)


def _advance(running: RunningEmulator, seconds: int) -> dict[str, Any]:
    """The clock moved the way a test harness moves it: the control route (renewals, retries)."""
    answer = requests.post(f"{running.base_url}/__emulator/clock", json={"advance_seconds": seconds}, timeout=10)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _lines(raw: stripe.StripeClient, invoice_id: str) -> list[Any]:
    return list(raw.v1.invoices.line_items.list(invoice_id, params={"limit": 100}).data)


def test_a_metered_price_bills_the_periods_summed_usage_at_its_end(
        stripe_openapi: OpenAPI, running_stripe: RunningEmulator, emulator: StripeEmulator,
        raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    emulator.record_exchanges = True
    meter = raw_client.v1.billing.meters.create(params={
        "display_name": "API calls", "event_name": "api_call", "default_aggregation": {"formula": "sum"}})
    product = raw_client.v1.products.create(params={"name": "API"})
    create_price: Any = raw_client.v1.prices.create  # the SDK's stubs type a decimal as Decimal
    metered = create_price(params={
        "product": product.id, "currency": "usd", "unit_amount_decimal": "2.5",
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id}})
    sub = raw_client.v1.subscriptions.create(params={
        "customer": refs["acme"], "items": [{"price": str(metered.id)}, {"price": refs["basic_m"]}]})
    first = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert first.total == 2_000  # usage is billed in arrears: nothing metered yet
    start = sub.items.data[0].current_period_start
    end = sub.items.data[0].current_period_end
    for value, at in ((1_000, start + 60), (237, end - 60), (50, end + 60)):  # the last: next period
        raw_client.v1.billing.meter_events.create(params={
            "event_name": "api_call", "timestamp": at,
            "payload": {"stripe_customer_id": refs["acme"], "value": str(value)}})
    raw_client.v1.billing.meter_events.create(params={  # another customer's usage is not ours
        "event_name": "api_call", "payload": {"stripe_customer_id": refs["gmbh"], "value": "9"}})
    renewed = _advance(running_stripe, end - emulator.now() + 1)["renewed_invoices"]
    (renewal_id,) = [i for i in renewed if emulator.table("invoice")[i]["customer"] == refs["acme"]]
    renewal = raw_client.v1.invoices.retrieve(renewal_id)
    by_price = {line.pricing.price_details.price: line for line in _lines(raw_client, renewal_id)}
    usage = by_price[metered.id]
    # 1,237 calls × 2.5 cents = 3,092.5 -> 3,093 (half up); for the period that ended
    assert (usage.quantity, usage.amount) == (1_237, 3_093)
    assert (usage.period.start, usage.period.end) == (start, end)
    assert by_price[refs["basic_m"]].amount == 2_000 and by_price[refs["basic_m"]].period.start == end
    assert renewal.total == 5_093 and renewal.billing_reason == "subscription_cycle"
    summary = raw_client.v1.billing.meters.event_summaries.list(str(meter.id), params={
        "customer": refs["acme"], "start_time": start, "end_time": end}).data[0]
    assert summary.aggregated_value == 1_237
    _spec_clean(stripe_openapi, emulator)


def test_pending_invoice_items_go_to_the_customers_next_subscription_invoice(
        stripe_openapi: OpenAPI, running_stripe: RunningEmulator, emulator: StripeEmulator,
        raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    emulator.record_exchanges = True
    setup = raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "amount": 700,
                                                       "currency": "usd", "description": "Setup fee"})
    assert setup.invoice is None
    one_off = raw_client.v1.invoices.create(params={"customer": refs["acme"], "collection_method": "send_invoice",
                                                    "days_until_due": 30})
    assert _lines(raw_client, str(one_off.id)) == []  # ``exclude`` is the default
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]})
    first = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert first.total == 2_700 and raw_client.v1.invoice_items.retrieve(str(setup.id)).invoice == first.id
    extra = raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "amount": 300,
                                                       "currency": "usd", "description": "Extra seat"})
    included = raw_client.v1.invoices.create(params={"customer": refs["acme"], "collection_method": "send_invoice",
                                                     "days_until_due": 30, "pending_invoice_items_behavior": "include"})
    assert [line.amount for line in _lines(raw_client, str(included.id))] == [300]
    assert raw_client.v1.invoice_items.retrieve(str(extra.id)).invoice == included.id
    late = raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "amount": 450,
                                                      "currency": "usd", "description": "Overage"})
    _advance(running_stripe, sub.items.data[0].current_period_end - emulator.now() + 1)
    renewal_id = str(raw_client.v1.subscriptions.retrieve(str(sub.id)).latest_invoice)
    assert raw_client.v1.invoices.retrieve(renewal_id).total == 2_450
    assert raw_client.v1.invoice_items.retrieve(str(late.id)).invoice == renewal_id
    _spec_clean(stripe_openapi, emulator)


def test_two_subscriptions_share_an_anchor_and_renew_together(
        stripe_openapi: OpenAPI, running_stripe: RunningEmulator, emulator: StripeEmulator,
        raw_client: stripe.StripeClient) -> None:
    emulator.clock.now_value = JAN_15
    refs = company(emulator)["refs"]
    emulator.record_exchanges = True
    feb_1 = _ts(2026, 2, 1)
    basic = raw_client.v1.subscriptions.create(params={
        "customer": refs["acme"], "items": [{"price": refs["basic_m"]}],
        "billing_cycle_anchor_config": {"day_of_month": 1, "hour": 0, "minute": 0, "second": 0}})
    pro = raw_client.v1.subscriptions.create(params={
        "customer": refs["acme"], "items": [{"price": refs["pro_m"]}], "billing_cycle_anchor": feb_1})
    free = raw_client.v1.subscriptions.create(params={
        "customer": refs["gmbh"], "items": [{"price": refs["pro_m"]}], "proration_behavior": "none",
        "billing_cycle_anchor_config": {"day_of_month": 1, "hour": 0, "minute": 0, "second": 0}})
    assert basic.billing_cycle_anchor == pro.billing_cycle_anchor == free.billing_cycle_anchor == feb_1
    assert basic.billing_cycle_anchor_config is not None and basic.billing_cycle_anchor_config.day_of_month == 1
    assert pro.billing_cycle_anchor_config is None
    assert basic.items.data[0].current_period_end == pro.items.data[0].current_period_end == feb_1
    # the first invoices bill Jan 15 10:00 .. Feb 1 of a Jan 1 .. Feb 1 period: 1,432,800 / 2,678,400 s
    firsts = [raw_client.v1.invoices.retrieve(str(s.latest_invoice)) for s in (basic, pro, free)]
    assert [i.total for i in firsts] == [1_070, 2_675, 0]  # 1,069.89 and 2,674.73, half up; none
    renewed = _advance(running_stripe, feb_1 - emulator.now())["renewed_invoices"]
    assert len(renewed) == 3
    renewals = [raw_client.v1.invoices.retrieve(i) for i in renewed]
    assert {(i.period_start, i.period_end) for i in renewals} == {(feb_1, _ts(2026, 3, 1))}
    assert sorted(i.total for i in renewals) == [2_000, 5_000, 5_000]
    _spec_clean(stripe_openapi, emulator)


def test_a_month_end_anchor_keeps_its_day_and_the_anchor_rules_hold(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.clock.now_value = JAN_15
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={
        "customer": refs["acme"], "items": [{"price": refs["basic_m"]}],
        "billing_cycle_anchor_config": {"day_of_month": 31}})
    assert sub.billing_cycle_anchor == _ts(2026, 1, 31, 10, 0)  # this month's, at the creation's time
    ends = []
    for _ in range(3):
        emulator.clock.now_value = datetime.fromtimestamp(
            emulator.table("subscription")[str(sub.id)]["items"]["data"][0]["current_period_end"], UTC)
        emulator.renew_subscriptions()
        ends.append(emulator.table("subscription")[str(sub.id)]["items"]["data"][0]["current_period_end"])
    assert ends == [_ts(2026, 2, 28, 10, 0), _ts(2026, 3, 31, 10, 0), _ts(2026, 4, 30, 10, 0)]
    product = str(emulator.table("price")[refs["basic_m"]]["product"])
    weekly = raw_client.v1.prices.create(params={"product": product, "currency": "usd", "unit_amount": 100,
                                                 "recurring": {"interval": "week"}})
    refused: list[dict[str, Any]] = [
        {"billing_cycle_anchor": _ts(2026, 2, 1), "billing_cycle_anchor_config": {"day_of_month": 1}},
        {"billing_cycle_anchor": _ts(2026, 3, 1)},  # later than the first full period's end
        {"billing_cycle_anchor_config": {"day_of_month": 32}},
    ]
    for extra in refused:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            raw_client.v1.subscriptions.create(params={  # type: ignore[arg-type]
                "customer": refs["acme"], "items": [{"price": refs["basic_m"]}], **extra})
        assert caught.value.http_status == 400, extra
    with pytest.raises(stripe.InvalidRequestError) as not_monthly:
        raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": str(weekly.id)}],
                                                   "billing_cycle_anchor_config": {"day_of_month": 1}})
    assert not_monthly.value.http_status == 400


def test_an_older_api_versions_one_off_invoice_takes_pending_items_by_default(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    """``pending_invoice_items_behavior`` defaulted to ``include`` before 2022-08-01 (Stripe's
    changelog), ``exclude`` since: the default follows the request's ``Stripe-Version``."""
    refs = company(emulator)["refs"]
    item = raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "amount": 900, "currency": "usd"})
    params: Any = {"customer": refs["acme"], "collection_method": "send_invoice", "days_until_due": 30}
    current = raw_client.v1.invoices.create(params=params)
    assert _lines(raw_client, str(current.id)) == []
    old = raw_client.v1.invoices.create(params=params, options={"stripe_version": "2022-07-01"})
    assert [line.amount for line in _lines(raw_client, str(old.id))] == [900]
    assert raw_client.v1.invoice_items.retrieve(str(item.id)).invoice == old.id


def test_a_change_prorates_licensed_items_only(emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    """A metered item's usage is billed at its period's end whatever changed: no proration."""
    refs = company(emulator)["refs"]
    meter = raw_client.v1.billing.meters.create(params={
        "display_name": "Calls", "event_name": "call", "default_aggregation": {"formula": "sum"}})
    product = str(emulator.table("price")[refs["basic_m"]]["product"])
    metered = raw_client.v1.prices.create(params={"product": product, "currency": "usd", "unit_amount": 3,
                                                  "recurring": {"interval": "month", "usage_type": "metered",
                                                                "meter": str(meter.id)}})
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": str(metered.id)}]})
    emulator.clock.advance(10 * DAY)
    raw_client.v1.subscriptions.update(str(sub.id), params={
        "items": [{"id": str(sub.items.data[0].id), "price": str(metered.id)}, {"price": refs["basic_m"]}]})
    pending = raw_client.v1.invoice_items.list(params={"customer": refs["acme"]}).data
    assert [(p.amount > 0, p.proration) for p in pending] == [(True, True)]  # the new Basic item only
    assert pending[0].pricing is not None and pending[0].pricing.price_details is not None
    assert pending[0].pricing.price_details.price == refs["basic_m"]


def test_a_metered_price_needs_a_meter_and_its_item_no_quantity(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    product = str(emulator.table("price")[refs["basic_m"]]["product"])
    create_price: Any = raw_client.v1.prices.create
    for recurring, code in (({"interval": "month", "usage_type": "metered"}, "parameter_missing"),
                            ({"interval": "month", "usage_type": "metered", "meter": "mtr_nope"}, "resource_missing")):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            create_price(params={"product": product, "currency": "usd", "unit_amount": 1, "recurring": recurring})
        assert (caught.value.code, caught.value.error and caught.value.error.param) == (code, "recurring[meter]")
    meter = raw_client.v1.billing.meters.create(params={
        "display_name": "Calls", "event_name": "call", "default_aggregation": {"formula": "count"}})
    metered = raw_client.v1.prices.create(params={"product": product, "currency": "usd", "unit_amount": 1,
                                                  "recurring": {"interval": "month", "usage_type": "metered",
                                                                "meter": str(meter.id)}})
    with pytest.raises(stripe.InvalidRequestError) as quantity:
        raw_client.v1.subscriptions.create(params={"customer": refs["acme"],
                                                   "items": [{"price": str(metered.id), "quantity": 2}]})
    assert quantity.value.http_status == 400
