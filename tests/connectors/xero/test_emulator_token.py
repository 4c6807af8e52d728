"""The Xero emulator's token endpoint on the wire (the shared grant server under Xero's policy):
Xero's success body, client credentials in the form (as xero-python sends them) or by Basic, the
30-minute grace for a used refresh token, tenants carried from grant to token, the control call."""

from __future__ import annotations

import base64
from typing import Any

import requests

from connectors.emulation import RunningEmulator
from connectors.xero.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    XeroEmulator,
)

FORM_CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


def token(running: RunningEmulator, refresh_token: str, **extra: Any) -> requests.Response:
    return requests.post(running.base_url + "/connect/token", timeout=10,
                         data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                               **extra.pop("form", FORM_CLIENT)}, **extra)


def connections(running: RunningEmulator, access_token: str) -> requests.Response:
    return requests.get(running.base_url + "/connections", timeout=10,
                        headers={"Authorization": "Bearer " + access_token})


def test_a_refresh_answers_xeros_body_and_rotates_with_a_grace(
        xero_emulator: RunningEmulator, emu: XeroEmulator) -> None:
    first = token(xero_emulator, DEFAULT_REFRESH_TOKEN, form={**FORM_CLIENT, "scope": "offline_access"})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    body = first.json()
    assert set(body) == {"id_token", "access_token", "expires_in", "token_type", "refresh_token", "scope"}
    assert body["id_token"] is None and body["expires_in"] == 1800 and body["token_type"] == "Bearer"
    assert body["scope"] == "offline_access" and body["refresh_token"].startswith("rt-")
    emu.clock.advance(29 * 60)  # the answer was lost: the used token still works in the grace
    assert token(xero_emulator, DEFAULT_REFRESH_TOKEN).status_code == 200
    emu.clock.advance(2 * 60)
    refused = token(xero_emulator, DEFAULT_REFRESH_TOKEN)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert emu.oauth.counts["invalid_grant"] == 1
    assert connections(xero_emulator, body["access_token"]).status_code == 401  # 31 minutes old


def test_client_credentials_by_basic_and_a_wrong_client(xero_emulator: RunningEmulator) -> None:
    basic = "Basic " + base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()
    assert token(xero_emulator, DEFAULT_REFRESH_TOKEN, form={}, headers={"Authorization": basic}).ok
    wrong = token(xero_emulator, DEFAULT_REFRESH_TOKEN, form={**FORM_CLIENT, "client_secret": "nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")


def test_a_grant_reaches_only_its_tenants_and_access_tokens_expire_on_demand(
        xero_emulator: RunningEmulator, emu: XeroEmulator) -> None:
    xero_emulator.on_loop(lambda: emu.add_tenant("tenant-b", "Org B"))
    xero_emulator.on_loop(lambda: emu.issue_refresh_token("rt-b", ["tenant-b"]))
    access = token(xero_emulator, "rt-b").json()["access_token"]
    assert [c["tenantId"] for c in connections(xero_emulator, access).json()] == ["tenant-b"]
    control = requests.post(xero_emulator.base_url + "/__emulator/tokens", timeout=10,
                            json={"expire_access_tokens": True, "access_token": "at-seeded"})
    assert control.json() == {"ok": True}
    expired = connections(xero_emulator, access)
    assert expired.status_code == 401 and expired.json()["Detail"].startswith("TokenExpired")
    assert connections(xero_emulator, "at-seeded").status_code == 200  # issued after the expiry
