"""OAuth against the emulator's rotating refresh tokens, with a real (SQLite) state store."""

from __future__ import annotations

import pytest

from connectors.base import AuthError
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
