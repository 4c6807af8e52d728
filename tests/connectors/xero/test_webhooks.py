"""Xero webhooks: intent-to-receive, tampered signatures, events stored once."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from connectors.base import WebhookRejected
from connectors.emulation import RunningEmulator
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator
from state.store import StateStore


class Receiver:
    """Stands in for the daemon's /webhooks/xero route: verify, store in the inbox, answer."""

    def __init__(self, connector: XeroConnector, store: StateStore) -> None:
        self.connector = connector
        self.store = store
        self.app = web.Application()
        self.app.router.add_post("/webhooks/xero", self.handle)
        self.system = "xero-receiver"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            events = self.connector.verify_webhook(dict(request.headers), body)
        except WebhookRejected as exc:
            return web.Response(status=exc.status)
        with self.store.transaction() as tx:
            for event in events:
                tx.add_inbox("xero", event.event_id, dict(event.payload), event.event_type)
        return web.Response(status=200)


@pytest.fixture
def receiver(connector: XeroConnector, hub_store: StateStore) -> Iterator[RunningEmulator]:
    running = RunningEmulator(Receiver(connector, hub_store))  # type: ignore[arg-type]
    running.start()
    yield running
    running.stop()


def _control(running: RunningEmulator, path: str, body: dict[str, object]) -> dict[str, object]:
    async def go() -> dict[str, object]:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.base_url + path, json=body) as response:
                result: dict[str, object] = await response.json()
                return result
    return running.call(go())  # type: ignore[no-any-return]


def test_intent_to_receive_passes(xero_emulator: RunningEmulator, receiver: RunningEmulator,
                                  hub_store: StateStore) -> None:
    result = _control(xero_emulator, "/__emulator/intent", {"url": receiver.base_url + "/webhooks/xero"})
    assert result == {"valid_status": 200, "invalid_status": 401, "passed": True}
    with hub_store.transaction() as tx:
        assert tx.count_inbox() == 0


def test_events_are_stored_once_and_tampered_ones_not_at_all(
        xero_emulator: RunningEmulator, emu: XeroEmulator, receiver: RunningEmulator,
        hub_store: StateStore) -> None:
    emu.seed_now({"Contacts": [{"Name": "Hooked Ltd"}]})
    events = list(emu.pending_events)
    url = receiver.base_url + "/webhooks/xero"
    bad = _control(xero_emulator, "/__emulator/webhooks", {"url": url, "events": events, "valid": False})
    assert bad["status"] == 401
    with hub_store.transaction() as tx:
        assert tx.count_inbox() == 0
    first = _control(xero_emulator, "/__emulator/webhooks", {"url": url})  # pending events
    again = _control(xero_emulator, "/__emulator/webhooks", {"url": url, "events": events})  # redelivery
    assert first["status"] == 200 and again["status"] == 200 and first["events"] == 1
    with hub_store.transaction() as tx:
        assert tx.count_inbox() == 1
        (item,) = tx.claim_inbox()
    assert item.payload["entity_type"] == "customer"
    assert item.payload["resourceId"] == emu.live("Contacts")[0]["ContactID"]


@pytest.mark.parametrize("body, headers, status", [
    (b"not json", "sign", 400),
    (b'{"events": [{"eventCategory": "INVOICE"}]}', "sign", 400),
    (b'{"events": []}', {"x-xero-signature": "!!not base64!!"}, 401),
    (b'{"events": []}', {}, 401),
])
def test_bad_deliveries_are_clear_4xx(connector: XeroConnector, emu: XeroEmulator, body: bytes,
                                      headers: object, status: int) -> None:
    sent = {"x-xero-signature": emu.sign(body)} if headers == "sign" else headers
    with pytest.raises(WebhookRejected) as info:
        connector.verify_webhook(sent, body)  # type: ignore[arg-type]
    assert info.value.status == status
