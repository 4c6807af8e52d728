"""Webhooks: the emulator POSTs signed deliveries (legacy and CloudEvents) to a receiver that
verifies them with the connector; bad signatures and bad bodies are refused with a 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiohttp import web

from connectors.base import InboundEvent, WebhookRejected
from connectors.emulation import Emulator, RunningEmulator
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN, sign
from tests.connectors.quickbooks.conftest import QboEnv


class Receiver(Emulator):
    """A stand-in for the hub's webhook endpoint: verifies, then 'stores' into ``inbox``."""

    system = "receiver"

    def __init__(self, connector: QuickBooksConnector) -> None:
        self.connector = connector
        self.inbox: list[InboundEvent] = []
        super().__init__()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/webhooks/quickbooks", self._hook)

    def reset_state(self) -> None:
        self.inbox = []

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            events = self.connector.verify_webhook(dict(request.headers), body)
        except WebhookRejected as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        self.inbox.extend(events)
        return web.json_response({"stored": len(events)})


@pytest.fixture
def receiver(qbo_env: QboEnv) -> Iterator[tuple[Receiver, str]]:
    hook = Receiver(qbo_env.connector())
    with RunningEmulator(hook) as running:
        yield hook, running.base_url + "/webhooks/quickbooks"


def _deliver(env: QboEnv, url: str, **body: Any) -> dict[str, Any]:
    response = requests.post(env.running.base_url + "/__emulator/webhook", json={"url": url, **body}, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize("fmt", ["legacy", "cloudevents"])
def test_both_webhook_formats_verify_and_name_the_changed_records(
        qbo_env: QboEnv, receiver: tuple[Receiver, str], fmt: str) -> None:
    hook, url = receiver
    answer = _deliver(qbo_env, url, format=fmt, events=[
        {"name": "Invoice", "id": "130", "operation": "Create"},
        {"name": "Customer", "id": "58", "operation": "Update"}])
    assert answer["status"] == 200
    assert [(e.payload["entity_type"], e.payload["id"], e.payload["operation"]) for e in hook.inbox] == [
        ("invoice", "130", "Create"), ("customer", "58", "Update")]
    assert all(e.payload["realm_id"] == DEFAULT_REALM for e in hook.inbox)
    assert len({e.event_id for e in hook.inbox}) == 2


def test_bad_signature_is_rejected_and_nothing_is_stored(qbo_env: QboEnv, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    answer = _deliver(qbo_env, url, format="legacy", bad_signature=True,
                      events=[{"name": "Invoice", "id": "1", "operation": "Update"}])
    assert answer["status"] == 401
    assert hook.inbox == []


def test_redelivery_gives_the_same_event_ids(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    body = json.dumps({"eventNotifications": [{"realmId": DEFAULT_REALM, "dataChangeEvent": {"entities": [
        {"name": "Payment", "id": "9", "operation": "Create", "lastUpdated": "2026-11-01T12:00:00Z"}]}}]}).encode()
    headers = {"intuit-signature": sign(body, DEFAULT_VERIFIER_TOKEN)}
    first = connector.verify_webhook(headers, body)
    assert [e.event_id for e in first] == [e.event_id for e in connector.verify_webhook(headers, body)]


@pytest.mark.parametrize("body, headers, status", [
    (b'{"eventNotifications": []}', {}, 401),  # no signature
    (b'{"eventNotifications": []}', {"intuit-signature": "***not base64***"}, 401),
    (b"not json at all", None, 400),
    (b'{"eventNotifications": "nope"}', None, 400),
    (b'[{"specversion": "1.0", "type": "bogus"}]', None, 400),
    (b'{"something": "else"}', None, 400),
])
def test_malformed_deliveries_get_a_clear_4xx(qbo_env: QboEnv, body: bytes, headers: dict[str, str] | None,
                                              status: int) -> None:
    connector = qbo_env.connector()
    with pytest.raises(WebhookRejected) as err:
        connector.verify_webhook(headers if headers is not None else
                                 {"Intuit-Signature": sign(body, DEFAULT_VERIFIER_TOKEN)}, body)
    assert err.value.status == status
    assert err.value.reason


def test_events_for_another_realm_are_dropped(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    body = json.dumps([{"specversion": "1.0", "id": "e1", "type": "qbo.customer.updated.v1",
                        "intuitentityid": "1", "intuitaccountid": "other-realm", "time": "t"}]).encode()
    assert connector.verify_webhook({"intuit-signature": sign(body, DEFAULT_VERIFIER_TOKEN)}, body) == []
