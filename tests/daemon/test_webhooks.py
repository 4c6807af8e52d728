"""Webhook endpoints: verified, stored once, answered at once, processed by the inbox worker;
bad input (malformed, unsigned, tampered, oversized, stale replay) is a 4xx and stores nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from aiohttp.test_utils import TestClient

from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN, sign
from connectors.stripe.emulator import sign_payload
from connectors.xero.emulator import DEFAULT_TENANT, DEFAULT_WEBHOOK_KEY
from tests.connectors.stripe.conftest import WEBHOOK_SECRET
from tests.daemon.conftest import MAX_BODY, Env, control, daemon

Client = TestClient[Any, Any]


def _stripe_event(env: Env, name: str = "Hooked Ltd") -> bytes:
    env.stripe_emulator.seed_objects({"customers": [{"name": name, "email": "hook@example.com"}]})
    return json.dumps(env.stripe_emulator.events[-1]).encode()


def _stripe_headers(env: Env, body: bytes, delay: int = 0) -> dict[str, str]:
    now = env.stripe_emulator.clock.timestamp() + delay
    return {"Stripe-Signature": sign_payload(WEBHOOK_SECRET, body, now), "Content-Type": "application/json"}


async def test_stripe_bad_deliveries_are_4xx_and_store_nothing(env: Env, client: Client) -> None:
    body = _stripe_event(env)
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("unsigned", body, {"Content-Type": "application/json"}, 400),
        ("tampered", body.replace(b"Hooked", b"Hacked"), _stripe_headers(env, body), 400),
        ("malformed", b"{not json", _stripe_headers(env, b"{not json"), 400),
        ("not an event", b"[1, 2]", _stripe_headers(env, b"[1, 2]"), 400),
        ("garbage header", body, {"Stripe-Signature": "t=abc,v1=zz"}, 400),
        ("stale replay", body, _stripe_headers(env, body, delay=-301), 400),
        ("oversized", b"{" + b" " * MAX_BODY + b"}", _stripe_headers(env, b"x"), 413),
    ]
    for label, data, headers, expected in cases:
        response = await client.post("/webhooks/stripe", data=data, headers=headers)
        assert response.status == expected, (label, response.status, await response.text())
    assert env.inbox() == []


async def test_stripe_event_is_stored_once_and_processed_into_both_ledgers(env: Env, client: Client) -> None:
    body = _stripe_event(env, "Webhook Customer GmbH")
    first = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
    assert first.status == 200 and (await first.json())["stored"] == 1
    # Stripe redelivers (freshly signed) when it missed our answer: 2xx, nothing stored again.
    again = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body, delay=30))
    assert again.status == 200 and (await again.json()) == {"received": 1, "stored": 0, "duplicate": 1}
    assert [r["status"] for r in env.inbox()] == ["pending"]

    outcome = await daemon(client).jobs.run_now("inbox")
    assert outcome["outcome"] == "ok", outcome
    assert [r["status"] for r in env.inbox()] == ["processed"]
    qbo_names = [c["DisplayName"] for c in env.qbo_emulator.realm(DEFAULT_REALM).table("Customer").values()]
    xero_names = [c["Name"] for c in env.xero_emulator.live("Contacts")]
    assert qbo_names.count("Webhook Customer GmbH") == 1
    assert xero_names.count("Webhook Customer GmbH") == 1
    # Processing again changes nothing: the event is done and the inbox is empty.
    await daemon(client).jobs.run_now("inbox")
    assert [c["DisplayName"] for c in env.qbo_emulator.realm(DEFAULT_REALM).table("Customer").values()
            ].count("Webhook Customer GmbH") == 1


async def test_quickbooks_deliveries(env: Env, client: Client) -> None:
    url = str(client.make_url("/webhooks/quickbooks"))
    events = [{"name": "Customer", "id": "1", "operation": "Create"}]
    bad = await control(env.qbo, "/__emulator/webhook", {"url": url, "events": events, "bad_signature": True})
    assert bad["status"] == 401
    assert env.inbox() == []
    good = await control(env.qbo, "/__emulator/webhook", {"url": url, "events": events, "format": "cloudevents"})
    assert good["status"] == 200
    # The same CloudEvents delivery again (Intuit retries): stored once.
    payload = good["payload"].encode()
    again = await client.post("/webhooks/quickbooks", data=payload,
                              headers={"intuit-signature": sign(payload, DEFAULT_VERIFIER_TOKEN)})
    assert again.status == 200 and (await again.json())["stored"] == 0
    malformed = b'{"eventNotifications": "nope"}'
    for data, headers, expected in [
        (malformed, {"intuit-signature": sign(malformed, DEFAULT_VERIFIER_TOKEN)}, 400),
        (b"\xff\xfe", {"intuit-signature": sign(b"\xff\xfe", DEFAULT_VERIFIER_TOKEN)}, 400),
        (payload, {}, 401),
        (payload, {"intuit-signature": "!!not base64!!"}, 401),
        (b"[" + b" " * MAX_BODY + b"]", {"intuit-signature": "x"}, 413),
    ]:
        response = await client.post("/webhooks/quickbooks", data=data, headers=headers)
        assert response.status == expected, (data[:20], response.status)
    rows = env.inbox()
    assert len(rows) == 1 and rows[0]["system"] == "quickbooks" and rows[0]["payload"]["entity_type"] == "customer"

    before = sum(n for k, n in env.qbo_emulator.stats.calls.items() if "/cdc" in k or "/query" in k or "/batch" in k)
    outcome = await daemon(client).jobs.run_now("inbox")
    assert outcome["outcome"] == "ok", outcome
    assert [r["status"] for r in env.inbox()] == ["processed"]
    after = sum(n for k, n in env.qbo_emulator.stats.calls.items() if "/cdc" in k or "/query" in k or "/batch" in k)
    assert after > before  # the nudge made an incremental read of customers


def _xero_sign(body: bytes, key: str = DEFAULT_WEBHOOK_KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


async def test_xero_intent_to_receive_and_events(env: Env, client: Client) -> None:
    url = str(client.make_url("/webhooks/xero"))
    intent = await control(env.xero, "/__emulator/intent", {"url": url})
    assert intent == {"valid_status": 200, "invalid_status": 401, "passed": True}
    empty = env.xero_emulator.webhook_body([])
    response = await client.post("/webhooks/xero", data=empty, headers={"x-xero-signature": _xero_sign(empty)})
    assert response.status == 200 and await response.read() == b""  # Xero: no body
    assert "Set-Cookie" not in response.headers
    event = {"resourceUrl": "https://api.xero.com/api.xro/2.0/Contacts/c1", "resourceId": "c1",
             "eventDateUtc": "2026-11-01T12:00:00", "eventType": "UPDATE", "eventCategory": "CONTACT",
             "tenantId": DEFAULT_TENANT, "tenantType": "ORGANISATION"}
    bad = await control(env.xero, "/__emulator/webhooks", {"url": url, "events": [event], "valid": False})
    assert env.inbox() == [], bad
    good = await control(env.xero, "/__emulator/webhooks", {"url": url, "events": [event], "valid": True})
    await control(env.xero, "/__emulator/webhooks", {"url": url, "events": [event], "valid": True})
    rows = env.inbox()
    assert len(rows) == 1 and rows[0]["payload"]["entity_type"] == "customer", (good, rows)
    for data, headers, expected in [
        (b"{}", {}, 401),
        (b"not json", {"x-xero-signature": _xero_sign(b"not json")}, 400),
        (b'{"events": [{"x": 1}]}', {"x-xero-signature": _xero_sign(b'{"events": [{"x": 1}]}')}, 400),
        (b" " * (MAX_BODY + 1), {"x-xero-signature": "x"}, 413),
    ]:
        response = await client.post("/webhooks/xero", data=data, headers=headers)
        assert response.status == expected and await response.read() == b""
    assert len(env.inbox()) == 1
    outcome = await daemon(client).jobs.run_now("inbox")
    assert outcome["outcome"] == "ok" and [r["status"] for r in env.inbox()] == ["processed"]


async def test_unknown_system_and_connection_are_404(env: Env, client: Client) -> None:
    for path in ("/webhooks/salesforce", "/webhooks/paypal", "/webhooks/stripe/other"):
        response = await client.post(path, data=b"{}")
        assert response.status == 404, path
    body = _stripe_event(env)
    named = await client.post("/webhooks/stripe/stripe", data=body, headers=_stripe_headers(env, body))
    assert named.status == 200 and len(env.inbox()) == 1


async def test_webhooks_refused_while_stopping(env: Env, client: Client) -> None:
    daemon(client).jobs.stop()
    body = _stripe_event(env)
    response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
    assert response.status == 503 and env.inbox() == []


async def test_a_claim_reads_each_stripe_object_once_and_a_failed_read_fails_only_its_events(
        env: Env, client: Client) -> None:
    """Several events name one invoice (created, finalized, paid): the inbox reads it once and
    stores the claim together. An object that cannot be read fails only the events naming it;
    they wait for a retry while the rest are processed."""
    emulator = env.stripe_emulator
    start = len(emulator.events)
    seeded = emulator.seed_objects({
        "customers": [{"ref": "batch", "name": "Batch Co", "email": "batch@example.com"},
                      {"ref": "unread", "name": "Unreadable Ltd", "email": "unread@example.com"}],
        "products": [{"ref": "widget", "name": "Widget"}],
        "prices": [{"ref": "one", "product": "@widget", "currency": "usd", "unit_amount": 1250}],
        "invoices": [{"customer": "@batch", "currency": "usd", "status": "paid",
                      "items": [{"price": "@one", "quantity": 2}]}]})["created"]
    unreadable, (invoice,) = seeded["customers"][1], seeded["invoices"]
    events = emulator.events[start:]
    assert sum(1 for e in events if e["data"]["object"]["id"] == invoice) >= 2
    for event in events:
        body = json.dumps(event).encode()
        response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
        assert response.status == 200
    emulator.set_faults(error_rate=1.0, path_prefix=f"/v1/customers/{unreadable}")
    before = dict(emulator.stats.calls)

    outcome = await daemon(client).jobs.run_now("inbox")

    assert outcome["outcome"] == "ok", outcome
    reads = {route: n - before.get(route, 0) for route, n in emulator.stats.calls.items()
             if route.startswith("GET ") and n > before.get(route, 0)}
    assert reads["GET /v1/invoices/{id}"] == 1, reads
    status = {r["event_id"]: (r["status"], r["error"]) for r in env.inbox()}
    for event in events:
        got, error = status[event["id"]]
        if event["data"]["object"]["id"] == unreadable:
            assert got == "claimed" and error == "RetryableError: stripe: injected service unavailable"
        else:
            assert (got, error) == ("processed", None), event["type"]
    qbo = env.qbo_emulator.realm(DEFAULT_REALM)
    assert [c["DisplayName"] for c in qbo.table("Customer").values()].count("Batch Co") == 1
    assert [i["TotalAmt"] for i in qbo.table("Invoice").values()] == [25.0]


async def test_a_full_inbox_claim_takes_the_next_events_before_pushing(env: Env, client: Client) -> None:
    """Under a backlog the inbox takes the next claim instead of pushing (the outbox job pushes);
    the claim that empties the inbox pushes, so the ledgers get every change."""
    for name in ("Backlog One", "Backlog Two", "Backlog Three"):
        env.stripe_emulator.seed_objects({"customers": [{"name": name, "email": f"{name.split()[1]}@example.com"}]})
        body = json.dumps(env.stripe_emulator.events[-1]).encode()
        assert (await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))).status == 200
    jobs = daemon(client).jobs
    jobs.inbox_batch = 2
    qbo = env.qbo_emulator.realm(DEFAULT_REALM)

    def in_quickbooks() -> list[str]:
        return sorted(c["DisplayName"] for c in qbo.table("Customer").values() if c["DisplayName"].startswith("Backlog"))

    assert (await jobs.run_now("inbox"))["detail"] == "processed 2, failed 0"
    assert in_quickbooks() == []  # a full claim: more were waiting, nothing pushed yet
    assert (await jobs.run_now("inbox"))["detail"] == "processed 1, failed 0"
    assert in_quickbooks() == ["Backlog One", "Backlog Three", "Backlog Two"]
