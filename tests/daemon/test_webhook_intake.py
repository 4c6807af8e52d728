"""Webhook intake on SQLite and PostgreSQL: what the inbox cannot store is a 400 naming the reason
(never a 500 from the database), a large delivery is one insert, and secrets are not stored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN
from connectors.quickbooks.emulator import sign as qbo_sign
from connectors.stripe.emulator import sign_payload
from state.queues import INBOX_TEXT_LIMITS
from sync.web.app import create_app
from tests.connectors.stripe.conftest import WEBHOOK_SECRET
from tests.daemon.conftest import Env, daemon, env_per_database

Client = TestClient[Any, Any]
env = pytest.fixture(params=["sqlite", "postgres"])(env_per_database)


def _stripe_headers(env: Env, body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": sign_payload(WEBHOOK_SECRET, body, env.stripe_emulator.clock.timestamp())}


def _qbo_body(entities: list[dict[str, Any]]) -> bytes:
    return json.dumps({"eventNotifications": [{"realmId": DEFAULT_REALM,
                                               "dataChangeEvent": {"entities": entities}}]}).encode()


def _stripe_body(**fields: Any) -> bytes:
    return json.dumps({"id": "evt_intake", "object": "event", "type": "customer.updated",
                       "data": {"object": {"id": "cus_1", "object": "customer"}}, **fields}).encode()


async def test_what_the_inbox_cannot_store_is_a_400_with_its_reason(env: Env, client: Client) -> None:
    longest_type = INBOX_TEXT_LIMITS["event_type"]
    stripe_cases = {
        "longer than": _stripe_body(type="t" * (longest_type + 1)),
        "longer than ": _stripe_body(id="e" * (INBOX_TEXT_LIMITS["event_id"] + 1)),
        "NUL": _stripe_body(type="customer.\x00updated"),
        "NUL ": _stripe_body(metadata={"k\x00": "v"}),
        "non-finite": b'{"id": "evt_nan", "object": "event", "type": "x", "amount": NaN}',
        "non-finite ": b'{"id": "evt_inf", "object": "event", "type": "x", "data": [-Infinity]}',
        "non-finite  ": b'{"id": "evt_big", "object": "event", "type": "x", "rate": 1e999}',
        "lone surrogate": _stripe_body(description="\ud800"),
        "deeper than": _stripe_body(data=json.loads("[" * 200 + "]" * 200)),
    }
    for reason, body in stripe_cases.items():
        response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
        assert response.status == 400, (reason, response.status, await response.text())
        assert reason.strip() in (await response.json())["error"], reason
    qbo_cases = {
        "NUL": [{"name": "Customer", "id": "1", "operation": "Up\x00date"}],
        "longer than": [{"name": "C" * longest_type, "id": "1", "operation": "Update"}],
    }
    for reason, entities in qbo_cases.items():
        body = _qbo_body(entities)
        response = await client.post("/webhooks/quickbooks", data=body,
                                     headers={"intuit-signature": qbo_sign(body, DEFAULT_VERIFIER_TOKEN)})
        assert response.status == 400, (reason, response.status, await response.text())
        assert reason in (await response.json())["error"], reason
    assert env.inbox() == []
    # The limits are the schema's: a type exactly as long as its column is stored.
    body = _stripe_body(type="t" * longest_type)
    response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
    assert response.status == 200 and [r["event_type"] for r in env.inbox()] == ["t" * longest_type]


@pytest.fixture
async def big_client(env: Env) -> AsyncIterator[Client]:
    """The app with a body limit that lets a 5,000-entity QuickBooks notification in."""
    config = dataclasses.replace(env.config, server={**env.config.server, "max_body_bytes": 2_000_000})
    app = create_app(config, env.hub, start_scheduler=False, clock=env.clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_quickbooks_notification_of_5000_entities_is_stored_once_each(
        env: Env, big_client: Client) -> None:
    entities = [{"name": "Customer", "id": str(i), "operation": "Update", "lastUpdated": "2026-11-01T12:00:00Z"}
                for i in range(5000)]
    body = _qbo_body(entities)
    headers = {"intuit-signature": qbo_sign(body, DEFAULT_VERIFIER_TOKEN)}
    response = await big_client.post("/webhooks/quickbooks", data=body, headers=headers)
    assert response.status == 200, await response.text()
    assert await response.json() == {"received": 5000, "stored": 5000, "duplicate": 0}
    again = await big_client.post("/webhooks/quickbooks", data=body, headers=headers)
    assert await again.json() == {"received": 5000, "stored": 0, "duplicate": 5000}
    rows = env.inbox()
    assert len(rows) == 5000 and len({r["event_id"] for r in rows}) == 5000
    assert sorted(int(r["payload"]["id"]) for r in rows) == list(range(5000))


async def test_a_stripe_payment_intent_is_stored_without_its_client_secret_and_processed(
        env: Env, client: Client) -> None:
    emulator = env.stripe_emulator
    start = len(emulator.events)
    emulator.seed_objects({
        "customers": [{"ref": "payer", "name": "Payer Ltd", "email": "payer@example.com"}],
        "products": [{"ref": "widget", "name": "Widget"}],
        "prices": [{"ref": "one", "product": "@widget", "currency": "usd", "unit_amount": 1250}],
        "invoices": [{"customer": "@payer", "currency": "usd", "status": "paid", "items": [{"price": "@one"}]}]})
    events = emulator.events[start:]
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")
    assert succeeded["data"]["object"]["client_secret"]  # the vendor sends it ...
    for event in events:
        body = json.dumps(event).encode()
        response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
        assert response.status == 200, await response.text()
    rows = {r["event_id"]: r for r in env.inbox()}
    stored = rows[succeeded["id"]]["payload"]
    assert "client_secret" not in stored["data"]["object"]  # ... the inbox does not keep it
    assert stored["data"]["object"]["id"] == succeeded["data"]["object"]["id"]
    assert not any("client_secret" in json.dumps(r["payload"]) for r in rows.values())

    outcome = await daemon(client).jobs.run_now("inbox")
    assert outcome["outcome"] == "ok", outcome
    assert {r["status"] for r in env.inbox()} == {"processed"}
