"""Never guess (issue 23): a signed Stripe event whose object is gone by the time the inbox reads
it again (the refetch answers 404) writes nothing — no customer made from the event's copy, no
writes to the ledgers that can only fail — and is an ``unreadable`` finding naming the event and
the object. Through the daemon's webhook endpoint, its inbox job and the official Stripe SDK."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from connectors.quickbooks.emulator import DEFAULT_REALM
from tests.daemon.conftest import Env, daemon
from tests.daemon.test_webhooks import _stripe_headers

Client = TestClient[Any, Any]


async def test_an_event_whose_object_is_gone_writes_nothing_and_is_a_finding(env: Env, client: Client) -> None:
    emulator = env.stripe_emulator
    start = len(emulator.events)
    created = emulator.seed_objects({"customers": [{"name": "Vanished Ltd", "email": "gone@example.com"}]})
    (customer,) = created["created"]["customers"]
    events = [e for e in emulator.events[start:] if e["data"]["object"]["id"] == customer]
    assert events
    for event in events:
        body = json.dumps(event).encode()
        response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
        assert response.status == 200
    emulator.table("customer").pop(customer)  # gone: GET /v1/customers/{id} answers 404 now

    outcome = await daemon(client).jobs.run_now("inbox")

    assert outcome["outcome"] == "ok", outcome
    assert [r["status"] for r in env.inbox()] == ["processed"] * len(events)
    with env.store.transaction() as tx:
        assert tx.canonical_for("stripe", "customer", customer) is None
        assert tx.list_outbox("dead", limit=100) == [] and tx.list_outbox("pending", limit=100) == []
        found = [f for f in tx.list_findings(kind="unreadable") if f.external_ids == [customer]]
    assert len(found) == 1 and found[0].status == "open" and found[0].system == "stripe"
    assert events[-1]["id"] in found[0].detail and "404" in found[0].detail
    qbo_names = [c["DisplayName"] for c in env.qbo_emulator.realm(DEFAULT_REALM).table("Customer").values()]
    assert "Vanished Ltd" not in qbo_names and "" not in qbo_names
    assert "Vanished Ltd" not in [c["Name"] for c in env.xero_emulator.live("Contacts")]
