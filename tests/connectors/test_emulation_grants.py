"""The shared refresh-token grant server, driven through ``exchange`` on a pinned clock with the
three vendors' policies (Intuit, Xero, Salesforce)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from typing import Any

from connectors.emulation import EmulatorClock
from connectors.emulation_grants import (
    GrantPolicy,
    GrantServer,
    Issued,
    TokenRequest,
    standard_body,
    token_response,
)

CLIENTS = {"app": "s3cret"}
BASIC = "Basic " + base64.b64encode(b"app:s3cret").decode()
XERO = GrantPolicy(rotate=True, used_grace=timedelta(minutes=30), unused_ttl=timedelta(days=60),
                   access_ttl=1800)


def refresh(server: GrantServer, token: str, authorization: str = BASIC, **form: str) -> tuple[int, dict[str, Any]]:
    return server.exchange(TokenRequest({"grant_type": "refresh_token", "refresh_token": token, **form},
                                        authorization, "emulator.test"))


def test_a_rotated_refresh_token_is_single_use_without_a_grace() -> None:
    server = GrantServer(EmulatorClock(), CLIENTS)
    first = server.issue_refresh_token("rt-1")
    status, body = refresh(server, first)
    assert status == 200 and body["refresh_token"] != first and body["expires_in"] == 3600
    assert server.check_access(body["access_token"]).ok
    assert refresh(server, first) == (400, {"error": "invalid_grant",
                                            "error_description": server.error_descriptions["invalid_grant"]})
    assert server.refresh_tokens == {first: "used", body["refresh_token"]: "active"}
    assert server.stats() == {"refreshes": 1, "invalid_grant": 1, "token_calls": 2, "active_refresh_tokens": 1}


def test_a_used_token_keeps_working_for_the_grace_then_is_refused() -> None:
    clock = EmulatorClock()
    server = GrantServer(clock, CLIENTS, policy=XERO)
    token = server.issue_refresh_token(subject=("tenant-1",))
    assert refresh(server, token)[0] == 200
    clock.advance(29 * 60)
    status, body = refresh(server, token)  # the client lost the first answer and retries
    assert status == 200
    assert server.check_access(body["access_token"]).grant.subject == ("tenant-1",)  # type: ignore[union-attr]
    clock.advance(2 * 60)  # the grace runs from the first use
    assert refresh(server, token)[1]["error"] == "invalid_grant"


def test_an_unused_refresh_token_expires_after_its_ttl() -> None:
    clock = EmulatorClock()
    server = GrantServer(clock, CLIENTS, policy=XERO)
    token = server.issue_refresh_token()
    clock.advance(timedelta(days=60, seconds=1).total_seconds())
    assert server.refresh_tokens[token] == "expired"
    assert refresh(server, token)[1]["error"] == "invalid_grant"


def test_without_rotation_the_same_refresh_token_keeps_working_and_the_body_names_the_server() -> None:
    def salesforce(issued: Issued, request: TokenRequest) -> dict[str, Any]:
        return {**standard_body(issued, request), "instance_url": f"https://{request.host}"}

    server = GrantServer(EmulatorClock(), CLIENTS, policy=GrantPolicy(rotate=False, access_ttl=7200),
                         body=salesforce)
    token = server.issue_refresh_token()
    for _ in range(2):
        status, body = refresh(server, token, authorization="", client_id="app", client_secret="s3cret")
        assert status == 200 and "refresh_token" not in body
        assert body["instance_url"] == "https://emulator.test"
    assert server.refresh_tokens == {token: "active"}
    server.revoke_all()
    assert refresh(server, token)[1]["error"] == "invalid_grant"


def test_client_authentication_by_basic_or_form_and_its_errors() -> None:
    server = GrantServer(EmulatorClock(), CLIENTS)
    token = server.issue_refresh_token()
    wrong_basic = "Basic " + base64.b64encode(b"app:nope").decode()
    assert refresh(server, token, authorization=wrong_basic)[0] == 401
    assert refresh(server, token, authorization="", client_id="app", client_secret="nope")[0] == 400
    assert refresh(server, token, authorization="")[1]["error"] == "invalid_client"
    assert refresh(server, token, client_id="other")[1]["error"] == "invalid_request"  # two clients named
    assert server.refresh_tokens[token] == "active"  # no refused request used the token
    status, body = server.exchange(TokenRequest({"grant_type": "password"}, BASIC))
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    assert refresh(server, token, authorization="", client_id="app", client_secret="s3cret")[0] == 200


def test_a_refresh_token_is_bound_to_the_client_it_was_issued_to() -> None:
    server = GrantServer(EmulatorClock(), {**CLIENTS, "other": "pw"})
    status, body = refresh(server, server.issue_refresh_token())
    assert status == 200
    other = "Basic " + base64.b64encode(b"other:pw").decode()
    assert refresh(server, body["refresh_token"], authorization=other)[1]["error"] == "invalid_grant"


def test_access_tokens_expire_by_ttl_and_on_demand() -> None:
    clock = EmulatorClock()
    server = GrantServer(clock, CLIENTS)
    server.policy = replace(server.policy, access_ttl=60)
    token = server.issue_access_token()
    assert server.check_access(token).ok
    clock.advance(60)
    assert server.check_access(token).status == "expired"
    fresh = server.issue_access_token()
    server.expire_access_tokens()
    assert server.check_access(fresh).status == "expired"
    assert server.check_access("never-issued").status == "unknown"


def test_grant_type_first_refuses_an_unsupported_grant_before_the_client_is_checked() -> None:
    server = GrantServer(EmulatorClock(), CLIENTS)
    nobody = TokenRequest({"grant_type": "password", "client_id": "x", "client_secret": "y"})
    assert server.exchange(nobody)[1]["error"] == "invalid_client"  # by default the client comes first
    server.policy = replace(server.policy, grant_type_first=True)
    assert server.exchange(nobody) == (400, {"error": "unsupported_grant_type",
                                             "error_description": server.error_descriptions["unsupported_grant_type"]})
    assert server.counts["token_calls"] == 2 and server.counts["unsupported_grant_type"] == 1
    token = server.issue_refresh_token()
    assert refresh(server, token, authorization="", client_id="x", client_secret="y")[1]["error"] == "invalid_client"


def test_token_response_is_never_cached_and_a_401_names_basic() -> None:
    ok = token_response(200, {"access_token": "at"})
    assert ok.status == 200 and ok.headers["Cache-Control"] == "no-store" and "WWW-Authenticate" not in ok.headers
    refused = token_response(401, {"error": "invalid_client"})
    assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
