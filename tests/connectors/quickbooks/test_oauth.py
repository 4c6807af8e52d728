"""OAuth against the emulator's rotating refresh tokens, with a real (SQLite) state store."""

from __future__ import annotations

import pytest
import requests

from connectors.base import AuthError
from connectors.quickbooks.emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
from tests.connectors.quickbooks.conftest import QboEnv


class Crash(Exception):
    """Stands in for the process dying between saving a new token and using it."""


def _touch(connector: object) -> None:
    """One cheap API call (a marker lookup is one query)."""
    connector.lookup("customer", "nobody")  # type: ignore[attr-defined]


def test_fifty_refreshes_with_a_crash_never_present_a_used_refresh_token(qbo_env: QboEnv) -> None:
    emulator = qbo_env.emulator
    crash_at = 25

    def crash() -> None:
        raise Crash()

    connector = qbo_env.connector()
    for i in range(50):
        qbo_env.on_loop(lambda: emulator.oauth_control(expire_access_tokens=True))
        if i == crash_at:
            connector.tokens.after_save = crash
            with pytest.raises(Crash):
                _touch(connector)
            connector.close()
            connector = qbo_env.connector()  # a restarted process: only the store survives
        _touch(connector)
    stats = emulator.oauth_stats()
    assert stats["invalid_grant"] == 0
    assert stats["refreshes"] == 50
    assert stats["active_refresh_tokens"] == 1
    with qbo_env.store.transaction() as tx:
        saved = tx.load_credentials("quickbooks")
    assert saved is not None
    assert emulator.oauth.refresh_tokens[saved["refresh_token"]] == "active"


def test_token_is_refreshed_ahead_of_expiry_without_a_401(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    _touch(connector)
    qbo_env.on_loop(lambda: qbo_env.emulator.clock.advance(3600 - 120))  # inside the 300 s skew
    _touch(connector)
    assert qbo_env.emulator.oauth_stats()["refreshes"] == 2
    assert not [r for r in qbo_env.emulator.stats.requests if r["status"] == 401]


def test_expired_access_token_401_refreshes_once_and_retries(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    _touch(connector)
    qbo_env.on_loop(lambda: qbo_env.emulator.oauth_control(expire_access_tokens=True))
    assert connector.lookup("customer", "nobody") is None
    assert len([r for r in qbo_env.emulator.stats.requests if r["status"] == 401]) == 1
    assert qbo_env.emulator.oauth_stats()["refreshes"] == 2


def test_invalid_grant_marks_needs_reauth_and_stops_calling_the_token_endpoint(qbo_env: QboEnv) -> None:
    emulator = qbo_env.emulator
    qbo_env.on_loop(lambda: emulator.oauth_control(revoke_refresh_tokens=True))
    connector = qbo_env.connector()
    with pytest.raises(AuthError) as first:
        _touch(connector)
    assert first.value.needs_reauth
    with qbo_env.store.transaction() as tx:
        state = tx.connection_state("quickbooks")
    assert state is not None and state["status"] == "needs_reauth"
    assert "invalid_grant" in str(state["reason"])
    calls = emulator.oauth_stats()["token_calls"]
    with pytest.raises(AuthError):
        _touch(connector)
    with pytest.raises(AuthError):
        _touch(qbo_env.connector())  # a new process reads the state and does not retry either
    assert emulator.oauth_stats()["token_calls"] == calls
    assert connector.health().reason is not None


def test_tokens_never_appear_in_reprs_or_errors(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    _touch(connector)
    with qbo_env.store.transaction() as tx:
        saved = tx.load_credentials("quickbooks")
    assert saved is not None
    qbo_env.on_loop(lambda: qbo_env.emulator.oauth_control(revoke_refresh_tokens=True, expire_access_tokens=True))
    with pytest.raises(AuthError) as err:
        _touch(connector)
    texts = [repr(connector), repr(connector.tokens), repr(connector.client), str(err.value)]
    for secret in (saved["access_token"], saved["refresh_token"], "test-client-secret"):
        assert all(secret not in text for text in texts)


def test_token_request_with_client_credentials_in_the_body_is_accepted(qbo_env: QboEnv) -> None:
    """RFC 6749 §2.3.1 ``client_secret_post``, which Intuit's discovery document lists beside
    ``client_secret_basic`` (the SDK's way): the rotated token then works against the API."""
    base = qbo_env.running.base_url
    discovery = requests.get(f"{base}/.well-known/openid_configuration", timeout=10).json()
    assert {"client_secret_post", "client_secret_basic"} <= set(discovery["token_endpoint_auth_methods_supported"])
    form = {"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN,
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
    reply = requests.post(discovery["token_endpoint"], data=form, timeout=10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] == 8726400
    assert body["refresh_token"] != DEFAULT_REFRESH_TOKEN
    assert reply.headers["Cache-Control"] == "no-store"
    realm = qbo_env.realm.realm_id
    query = requests.get(f"{base}/v3/company/{realm}/query", params={"query": "SELECT * FROM Customer"},
                         headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10)
    assert query.status_code == 200, query.text
    stats = qbo_env.emulator.oauth_stats()
    assert stats["refreshes"] == 1 and stats["active_refresh_tokens"] == 1

    used_again = requests.post(discovery["token_endpoint"], data=form, timeout=10)
    assert used_again.status_code == 400
    assert used_again.json()["error"] == "invalid_grant"
    wrong_secret = requests.post(discovery["token_endpoint"], timeout=10,
                                 data={**form, "refresh_token": body["refresh_token"], "client_secret": "nope"})
    assert wrong_secret.status_code == 400 and wrong_secret.json()["error"] == "invalid_client"
    assert qbo_env.emulator.oauth_stats()["active_refresh_tokens"] == 1  # a refused request uses nothing
