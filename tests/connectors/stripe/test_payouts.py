"""Payouts through the official SDK against the emulator: the balance, manual and automatic
payouts, ``balance_transactions?payout=`` (automatic only), the events, and the connector's
payout records with the fees of what they settle (issue 18)."""

from __future__ import annotations

import pytest
import requests
import stripe

from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator
from mapping.model import Payout
from mapping.stripe import StripeMappingError
from tests.connectors.stripe.conftest import seed
from tests.connectors.stripe.helpers import Refs, drain


def _paid(running: RunningEmulator, amounts: list[int]) -> None:
    seed(running, {"customers": [{"ref": "c", "email": "ap@payouts.example"}],
                   "invoices": [{"customer": "@c", "status": "paid",
                                 "items": [{"amount": a, "description": "x"}]} for a in amounts]})


def _sweep(running: RunningEmulator) -> dict[str, object]:
    answer = requests.post(f"{running.base_url}/__emulator/payout", json={"paid": True}, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_an_automatic_payout_lists_what_it_settles_and_the_balance_empties(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    _paid(running_stripe, [10000, 25000])
    fees = (290 + 30) + (725 + 30)
    assert raw_client.v1.balance.retrieve().available[0].amount == 35000 - fees
    payout = _sweep(running_stripe)
    assert payout["amount"] == 35000 - fees and payout["automatic"] is True
    listed = raw_client.v1.balance_transactions.list(params={"payout": str(payout["id"]), "limit": 100}).data
    assert sorted(t.type for t in listed) == ["charge", "charge", "payout"]
    assert sum(t.fee for t in listed) == fees
    assert raw_client.v1.balance.retrieve().available[0].amount == 0
    got = raw_client.v1.payouts.retrieve(str(payout["id"]))
    assert got.status == "paid"
    types = [e.type for e in raw_client.v1.events.list(params={"type": "payout.*"}).data]
    assert {"payout.created", "payout.paid"} <= set(types)


def test_a_manual_payout_moves_the_balance_but_cannot_be_filtered_on(
        running_stripe: RunningEmulator, raw_client: stripe.StripeClient) -> None:
    _paid(running_stripe, [10000])
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.payouts.create(params={"amount": 10**6, "currency": "usd"})  # more than there is
    manual = raw_client.v1.payouts.create(params={"amount": 5000, "currency": "usd"})
    assert manual.automatic is False and manual.status == "pending"
    assert raw_client.v1.balance.retrieve().available[0].amount == 10000 - 320 - 5000
    with pytest.raises(stripe.InvalidRequestError, match="automatic"):
        raw_client.v1.balance_transactions.list(params={"payout": manual.id})
    assert [p.id for p in raw_client.v1.payouts.list(params={"limit": 10}).data] == [manual.id]


def test_the_connector_reads_a_payout_with_its_fees_and_holds_a_manual_one(
        running_stripe: RunningEmulator, raw_client: stripe.StripeClient, connector: StripeConnector) -> None:
    _paid(running_stripe, [10000, 20000, 30000])
    payout = _sweep(running_stripe)
    (record,) = drain(connector.fetch_all("payout"))[0]
    entity = connector.to_canonical(record, Refs())
    assert isinstance(entity, Payout) and entity.status == "paid"
    assert (entity.amount.minor, entity.fee_total.minor, entity.gross.minor) == (payout["amount"], 1830, 60000)
    _paid(running_stripe, [10000])
    manual = raw_client.v1.payouts.create(params={"amount": 1000, "currency": "usd"})
    records = {r.external_id: r for r in drain(connector.fetch_all("payout"))[0]}
    with pytest.raises(StripeMappingError, match="manual payout"):
        connector.to_canonical(records[manual.id], Refs())
