"""The emulated account (``/v1/account``, ``/v1/accounts/{id}``, the ``Stripe-Account`` header)
and recurring prices read as plans (``/v1/plans``), through the official SDK over HTTP, each
answer validated against Stripe's spec."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import stripe

from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.helpers import company
from tests.connectors.stripe.spec_api import spec_api, validate


def test_the_key_reads_its_own_account_and_no_other(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.record_exchanges = True
    account = raw_client.v1.accounts.retrieve_current()
    assert account.id == emulator.account_id and account.id.startswith("acct_")
    assert (account.country, account.default_currency, account.charges_enabled, account.payouts_enabled) == \
        ("US", "usd", True, True)
    assert account.settings is not None and account.settings.dashboard.display_name == "Emulated Co"
    # the name invoices carry as ``account_name`` is the account's
    assert raw_client.v1.accounts.retrieve(emulator.account_id).to_dict() == account.to_dict()
    with pytest.raises(stripe.PermissionError, match="does not have access to account 'acct_1Other"):
        raw_client.v1.accounts.retrieve("acct_1OtherAccount0001")
    # The Stripe-Account header: the key's own account is served, another one refused.
    assert raw_client.v1.customers.list(options={"stripe_account": emulator.account_id}).data == []
    with pytest.raises(stripe.PermissionError) as refused:
        raw_client.v1.customers.list(options={"stripe_account": "acct_1OtherAccount0001"})
    assert refused.value.http_status == 403
    body: Any = refused.value.json_body
    assert body["error"]["code"] == "account_invalid"
    assert raw_client.v1.accounts.list().data == []  # no connected accounts: not a platform
    problems = validate(spec_api(), list(emulator.exchanges))
    assert not problems, "\n".join(problems[:20])


def test_recurring_prices_are_listed_and_retrieved_as_plans(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    yearly = raw_client.v1.prices.create(params={
        "product": refs["pro"], "currency": "eur", "unit_amount": 48000, "nickname": "Pro yearly",
        "recurring": {"interval": "year", "interval_count": 1}, "metadata": {"hub_id": "h-pro-y"}})
    raw_client.v1.prices.update(refs["basic_m"], params={"active": False})
    emulator.record_exchanges = True
    plans = raw_client.v1.plans.list(params={"limit": 100}).data
    # newest first, one-time prices (setup_jpy, setup_eur) are no plans
    assert [p.id for p in plans] == [yearly.id, refs["pro_m"], refs["basic_m"]]
    plan = raw_client.v1.plans.retrieve(yearly.id)
    assert (plan.object, plan.amount, plan.amount_decimal, plan.currency, plan.interval, plan.interval_count,
            plan.product, plan.active, plan.nickname, plan.usage_type, plan.billing_scheme) == \
        ("plan", 48000, Decimal("48000"), "eur", "year", 1, refs["pro"], True, "Pro yearly", "licensed", "per_unit")
    assert plan.metadata is not None and plan.metadata.to_dict() == {"hub_id": "h-pro-y"}
    assert [p.id for p in raw_client.v1.plans.list(params={"active": False}).data] == [refs["basic_m"]]
    assert [p.id for p in raw_client.v1.plans.list(params={"product": refs["pro"]}).data] == [yearly.id, refs["pro_m"]]
    page = raw_client.v1.plans.list(params={"limit": 1, "starting_after": yearly.id})
    assert [p.id for p in page.data] == [refs["pro_m"]] and page.has_more
    with pytest.raises(stripe.InvalidRequestError, match="No such plan"):
        raw_client.v1.plans.retrieve(refs["setup_jpy"])
    problems = validate(spec_api(), list(emulator.exchanges))
    assert not problems, "\n".join(problems[:20])


def test_kinds_the_account_has_none_of_list_empty_in_the_real_shape(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.record_exchanges = True
    lists: list[Any] = [raw_client.v1.setup_intents.list(), raw_client.v1.checkout.sessions.list(),
             raw_client.v1.issuing.cards.list(), raw_client.v1.issuing.authorizations.list(),
             raw_client.v1.radar.early_fraud_warnings.list(), raw_client.v1.reviews.list(),
             raw_client.v1.topups.list(), raw_client.v1.subscription_schedules.list(),
             raw_client.v1.shipping_rates.list(params={"active": True}), raw_client.v1.files.list(),
             raw_client.v1.application_fees.list(),
             raw_client.v1.accounts.external_accounts.list(emulator.account_id),
             raw_client.v1.accounts.persons.list(emulator.account_id)]
    assert [(page.object, page.data, page.has_more) for page in lists] == [("list", [], False)] * len(lists)
    assert [ex["body"]["url"] for ex in emulator.exchanges][:2] == ["/v1/setup_intents", "/v1/checkout/sessions"]
    with pytest.raises(stripe.PermissionError):  # another account's: refused, not listed
        raw_client.v1.accounts.persons.list("acct_1OtherAccount0001")
    problems = validate(spec_api(), list(emulator.exchanges))
    assert not problems, "\n".join(problems[:20])
