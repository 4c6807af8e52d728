"""The emulator's token endpoint on the wire (plain ``requests``, as the hub's client posts it):
Salesforce's body, its error bodies, client credentials in the form or by Basic, and the token
keys of ``POST /__emulator/salesforce``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.salesforce.emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
from tests.connectors.salesforce.conftest import START, SfEnv

FORM = {"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN,
        "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


@pytest.fixture
def http(sf: SfEnv) -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = str(sf.cert)
    session.trust_env = False
    yield session
    session.close()


def token(sf: SfEnv, http: requests.Session, **form: Any) -> requests.Response:
    return http.post(f"{sf.base_url}/services/oauth2/token", data={**FORM, **form})


def rest(sf: SfEnv, http: requests.Session, access_token: str) -> int:
    return http.get(f"{sf.base_url}/services/data/v59.0/limits",
                    headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_a_refresh_answers_salesforce_s_body_and_the_same_refresh_token_keeps_working(
        sf: SfEnv, http: requests.Session) -> None:
    for _ in range(2):
        reply = token(sf, http)
        assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
        body = reply.json()
        assert set(body) == {"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"}
        assert body["instance_url"] == sf.base_url and body["id"].startswith(sf.base_url + "/id/00D")
        assert body["issued_at"] == str(int(START.timestamp() * 1000)) and body["token_type"] == "Bearer"
        assert body["access_token"].startswith("00D") and rest(sf, http, body["access_token"]) == 200
    assert sf.emulator.oauth.counts["token_calls"] == 2


def test_errors_are_salesforce_s_and_the_grant_type_is_checked_before_the_client(
        sf: SfEnv, http: requests.Session) -> None:
    unsupported = token(sf, http, grant_type="password", client_secret="wrong")
    assert (unsupported.status_code, unsupported.json()) == (
        400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    wrong_client = token(sf, http, client_secret="wrong")
    assert (wrong_client.status_code, wrong_client.json()["error"]) == (400, "invalid_client")
    unknown = token(sf, http, refresh_token="never-issued")
    assert (unknown.status_code, unknown.json()) == (
        400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})


def test_client_credentials_by_basic_are_accepted(sf: SfEnv, http: requests.Session) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN}
    reply = http.post(f"{sf.base_url}/services/oauth2/token", data=form,
                      auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET))
    assert reply.status_code == 200


def test_the_control_keys_rotate_expire_revoke_and_set_the_session_timeout(
        sf: SfEnv, http: requests.Session) -> None:
    control = f"{sf.base_url}/__emulator/salesforce"
    http.post(control, json={"rotate_refresh_tokens": True, "session_ttl_seconds": 60})
    first = token(sf, http).json()
    assert first["refresh_token"] != DEFAULT_REFRESH_TOKEN
    assert token(sf, http).json()["error"] == "invalid_grant"  # a rotated token is single-use
    sf.emulator.clock.advance(60)
    assert rest(sf, http, first["access_token"]) == 401  # the session timeout passed
    second = token(sf, http, refresh_token=first["refresh_token"]).json()
    assert http.post(control, json={"expire_sessions": True}).json()["sessions"] == 0
    assert rest(sf, http, second["access_token"]) == 401
    http.post(control, json={"revoke_refresh_tokens": True})
    assert token(sf, http, refresh_token=second["refresh_token"]).json()["error"] == "invalid_grant"
