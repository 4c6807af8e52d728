"""Session mode with the hub's own OAuth refresh, TLS trust, and secrets kept out of messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.base import AuthError
from tests.connectors.salesforce.conftest import Built, SfEnv, drain


def test_an_expired_session_is_refreshed_once_and_the_call_succeeds(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf.emulator.insert("Account", {"Name": "Acme"})
    built = make_connector()
    drain(built.connector.fetch_all("customer"))
    assert sf.emulator.oauth.counts["token_calls"] == 1
    with built.store.transaction() as tx:
        before = tx.load_credentials("salesforce")
    assert before is not None

    sf.emulator.clock.advance(2 * 3600 + 1)  # past the session timeout
    records, _ = drain(built.connector.fetch_all("customer"))

    assert [r.data["Name"] for r in records] == ["Acme"]
    assert sf.emulator.oauth.counts["token_calls"] == 2
    assert built.connector.client.refreshes == 2
    assert [r["status"] for r in sf.emulator.stats.requests if "/query" in r["path"]] == [200, 401, 200]
    with built.store.transaction() as tx:
        after = tx.load_credentials("salesforce")
    assert after is not None and after["access_token"] != before["access_token"]
    assert built.policy.waits == []  # the refresh is not a retry


def test_a_refused_refresh_marks_the_connection_as_needing_reauthorisation(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    built = make_connector()
    drain(built.connector.fetch_all("customer"))
    sf.emulator.oauth_control(revoke_refresh_tokens=True, expire_sessions=True)  # revoked in Salesforce

    with pytest.raises(AuthError) as caught:
        drain(built.connector.fetch_all("customer"))

    assert caught.value.needs_reauth
    with built.store.transaction() as tx:
        state = tx.connection_state("salesforce")
    assert state is not None and state["status"] == "needs_reauth"
    assert "invalid_grant" in (state["reason"] or "")


def test_rotated_refresh_tokens_are_saved_before_use(sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf.emulator.oauth_control(rotate_refresh_tokens=True)
    built = make_connector()
    drain(built.connector.fetch_all("customer"))
    with built.store.transaction() as tx:
        saved = tx.load_credentials("salesforce")
    assert saved is not None and sf.emulator.oauth.refresh_tokens.get(saved["refresh_token"]) == "active"
    sf.emulator.oauth_control(expire_sessions=True)
    drain(built.connector.fetch_all("customer"))  # uses the rotated token, not the config's
    assert sf.emulator.oauth.counts["token_calls"] == 2


def test_requests_ca_bundle_in_the_environment_does_not_override_the_emulator_certificate(
        sf: SfEnv, make_connector: Callable[..., Built], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/ca.pem")
    sf.emulator.insert("Account", {"Name": "Acme"})
    records, _ = drain(make_connector().connector.fetch_all("customer"))
    assert len(records) == 1


def test_an_untrusted_certificate_is_refused_not_ignored_or_retried(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    built = make_connector(ca_bundle=None)  # system trust store: the emulator's cert is unknown
    with pytest.raises(AuthError) as caught:
        drain(built.connector.fetch_all("customer"))
    assert "ca_bundle" in str(caught.value) and not caught.value.needs_reauth
    assert built.policy.waits == []
    assert sf.emulator.oauth.counts["token_calls"] == 0


def test_tokens_never_appear_in_errors_or_reprs(sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    built = make_connector()
    drain(built.connector.fetch_all("customer"))
    token = built.connector.client._token
    assert token
    sf.emulator.oauth_control(revoke_refresh_tokens=True, expire_sessions=True)
    with pytest.raises(AuthError) as caught:
        drain(built.connector.fetch_all("customer"))
    texts = [str(caught.value), repr(caught.value), repr(built.connector), repr(built.connector.client)]
    for secret in (token, sf.settings()["client_secret"], sf.settings()["refresh_token"]):
        assert not any(secret in text for text in texts)
