"""One OAuth 2.0 refresh-token grant server for the vendor emulators (QuickBooks, Xero,
Salesforce): the token endpoint, the grants it keeps, and the bearer check the API uses.

The three vendors differ only in policy and in the success body; everything else (client
authentication, rotation, a used token's grace, error bodies, counting) is written once here.

API::

    server = GrantServer(clock, clients={"id": "secret"}, policy=GrantPolicy(...),
                         mint=..., body=...)
    router.add_post("/oauth2/token", handler)   # handler: ``await server.handle(request)``
    token_response(*server.exchange(...)) -> web.Response   # for a handler that holds a lock
    server.issue_refresh_token("RT-seeded", subject=("tenant-1",)) -> token
    server.issue_access_token() -> token              # a session without a refresh
    server.check_access(token) -> AccessCheck         # .status "valid" | "expired" | "unknown",
                                                      # .grant (client, subject) when valid
    server.exchange(TokenRequest(form, authorization, host)) -> (status, json body)
    server.expire_access_tokens(); server.revoke_all()
    server.policy = dataclasses.replace(server.policy, access_ttl=60)   # at run time
    server.refresh_tokens -> {token: "active" | "used" | "revoked" | "expired"}
    server.access_tokens  -> {token: AccessGrant}
    server.counts         -> Counter: token_calls, refreshes, invalid_grant, invalid_client,
                                      unsupported_grant_type, invalid_request
    server.stats()        -> {"refreshes", "invalid_grant", "token_calls", "active_refresh_tokens"}

``GrantPolicy`` per vendor (facts in shared/reference/api-facts.md):

* Intuit: ``rotate=True``, no grace (a used token gets ``invalid_grant``), ``access_ttl=3600``;
* Xero: ``rotate=True``, ``used_grace=30 min``, ``unused_ttl=60 days``, ``access_ttl=1800``;
* Salesforce: ``rotate`` off by default (the same refresh token keeps working and the body
  carries none), ``access_ttl`` = the session timeout, ``grant_type_first`` (it refuses an
  unsupported grant type before it looks at the client).

Hooks: ``mint(kind)`` makes a token (``kind`` is ``"access"`` or ``"refresh"``), so each vendor's
tokens look like its own; ``body(issued, request)`` builds the success JSON from ``standard_body``
plus the vendor's fields (Intuit ``x_refresh_token_expires_in``; Xero ``id_token``, ``scope``;
Salesforce ``instance_url`` from ``request.host``, ``signature``, ``issued_at``). A grant's
``subject`` (Xero: the tenant ids it may use) is copied to every token issued from it.

The wire (RFC 6749): ``grant_type=refresh_token``, and ``authorization_code`` for a code the
consent page (``connectors.emulation_consent``) issued with ``issue_code`` — one-time, 10 minutes,
same ``redirect_uri``, PKCE ``code_verifier`` checked (RFC 7636) — else 400 ``unsupported_grant_type``;
client credentials by HTTP Basic or ``client_id``/``client_secret`` in the form (§2.3.1 — Intuit
lists both ``client_secret_basic`` and ``client_secret_post``), Basic winning when both are
sent; a wrong client is ``invalid_client``, 401 with ``WWW-Authenticate`` when it came by Basic,
else 400 (§5.2); an unknown, used (after the grace), revoked, expired or another client's
refresh token is 400 ``invalid_grant``. Error bodies are ``{"error", "error_description"}``;
replies carry ``Cache-Control: no-store`` (§5.1).

Not thread-safe: ``exchange`` never awaits, so on the emulator's event loop each exchange is
atomic (two racing refreshes with one token: exactly one wins). An emulator that touches its
state from other threads calls it under its own lock (``exchange`` inside the lock, then
``token_response``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from connectors.emulation import EmulatorClock

TokenKind = Literal["access", "refresh"]
RefreshStatus = Literal["active", "used", "revoked", "expired"]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ERROR_DESCRIPTIONS = {
    "invalid_request": "the request names more than one client",
    "invalid_client": "client authentication failed",
    "unsupported_grant_type": "only the refresh_token and authorization_code grants are supported",
    "invalid_grant": "the refresh token is invalid, expired, revoked or already used",
}


@dataclass(frozen=True)
class GrantPolicy:
    """How a vendor treats its tokens. Replace it (``dataclasses.replace``) to change it live;
    a change applies to tokens issued or presented afterwards."""

    rotate: bool = True  # each refresh returns a new refresh token and uses up the presented one
    used_grace: timedelta = timedelta(0)  # a used refresh token still works this long (Xero 30 min)
    unused_ttl: timedelta | None = None  # a refresh token dies this long after it was issued
    access_ttl: int = 3600  # seconds an access token lives
    grant_type_first: bool = False  # check grant_type before the client (RFC 6749 sets no order)


@dataclass
class RefreshGrant:
    client_id: str | None  # None: any registered client may present it (seeded tokens)
    issued_at: datetime
    subject: tuple[str, ...] = ()
    used_at: datetime | None = None
    revoked: bool = False


@dataclass
class AuthCode:
    """An authorization code (RFC 6749 §4.1.2): one-time, short-lived, bound to its client, its
    redirect URI and (RFC 7636) its PKCE challenge."""

    client_id: str
    redirect_uri: str
    issued_at: datetime
    subject: tuple[str, ...] = ()
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    used: bool = False
    tokens: tuple[str, ...] = ()  # the refresh token issued from it (revoked if the code is replayed)


CODE_TTL = timedelta(minutes=10)  # RFC 6749 §4.1.2 recommends at most 10 minutes


def pkce_challenge(verifier: str, method: str) -> str:
    """RFC 7636 §4.6: S256 is BASE64URL(SHA256(verifier)) without padding; plain is the verifier."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier


@dataclass(frozen=True)
class AccessGrant:
    expires_at: datetime
    client_id: str | None
    subject: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessCheck:
    status: Literal["valid", "expired", "unknown"]
    grant: AccessGrant | None = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"


@dataclass(frozen=True)
class TokenRequest:
    """What the token endpoint reads from a request (``read`` builds it from aiohttp's)."""

    form: Mapping[str, str]
    authorization: str = ""
    host: str = ""  # for bodies that name the server (Salesforce ``instance_url``)

    @classmethod
    async def read(cls, request: web.Request) -> TokenRequest:
        form = await request.post()
        return cls({k: str(v) for k, v in form.items()}, request.headers.get("Authorization", ""),
                   request.host)


@dataclass(frozen=True)
class Issued:
    """One successful exchange: what ``body`` turns into the vendor's JSON."""

    access_token: str
    expires_in: int
    refresh_token: str | None  # None when the policy does not rotate
    grant: RefreshGrant
    issued_at: datetime


def standard_body(issued: Issued, request: TokenRequest) -> dict[str, Any]:
    """RFC 6749 §5.1: ``access_token``, ``token_type``, ``expires_in``, and the new
    ``refresh_token`` when one was issued."""
    body: dict[str, Any] = {"access_token": issued.access_token, "token_type": "Bearer",
                            "expires_in": issued.expires_in}
    if issued.refresh_token is not None:
        body["refresh_token"] = issued.refresh_token
    return body


def default_mint(kind: TokenKind) -> str:
    return ("at-" if kind == "access" else "rt-") + secrets.token_urlsafe(24)


BodyHook = Callable[[Issued, TokenRequest], dict[str, Any]]


def token_response(status: int, body: dict[str, Any]) -> web.Response:
    """An ``exchange`` result as the HTTP reply: never cached (§5.1), a 401 names its scheme."""
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return web.json_response(body, status=status, headers=headers)


class GrantServer:
    """The refresh-token grant: see the module docstring for the API."""

    def __init__(self, clock: EmulatorClock, clients: Mapping[str, str], *,
                 policy: GrantPolicy | None = None, mint: Callable[[TokenKind], str] = default_mint,
                 body: BodyHook = standard_body,
                 error_descriptions: Mapping[str, str] | None = None) -> None:
        self.clock = clock
        self.clients = dict(clients)
        self.policy = policy or GrantPolicy()
        self.mint = mint
        self.body = body
        self.error_descriptions = {**ERROR_DESCRIPTIONS, **(error_descriptions or {})}
        self.grants: dict[str, RefreshGrant] = {}
        self.access_tokens: dict[str, AccessGrant] = {}
        self.counts: Counter[str] = Counter()
        self.codes: dict[str, AuthCode] = {}

    # -- issuing and checking ---------------------------------------------------------------

    def issue_refresh_token(self, token: str | None = None, *, client_id: str | None = None,
                            subject: tuple[str, ...] = ()) -> str:
        """Register a refresh token (a fresh grant even if the token was known) and return it."""
        token = token or self.mint("refresh")
        self.grants[token] = RefreshGrant(client_id, self.clock.now(), tuple(subject))
        return token

    def issue_access_token(self, token: str | None = None, *, client_id: str | None = None,
                           subject: tuple[str, ...] = ()) -> str:
        """Register an access token living ``policy.access_ttl`` from now and return it."""
        token = token or self.mint("access")
        expires = self.clock.now() + timedelta(seconds=self.policy.access_ttl)
        self.access_tokens[token] = AccessGrant(expires, client_id, tuple(subject))
        return token

    def issue_code(self, client_id: str, redirect_uri: str, *, subject: tuple[str, ...] = (),
                   code_challenge: str | None = None, code_challenge_method: str = "plain") -> str:
        """An authorization code for a consent just given (the authorize endpoint's redirect)."""
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(client_id, redirect_uri, self.clock.now(), tuple(subject),
                                    code_challenge, code_challenge_method)
        return code

    def revoke(self, token: str, client_id: str) -> bool:
        """RFC 7009: a refresh token (or an access token) of ``client_id`` is refused from now on.
        False when it is unknown or another client's (the endpoint answers 200 either way)."""
        grant = self.grants.get(token)
        if grant is not None and grant.client_id in (None, client_id):
            grant.revoked = True
            self.counts["revocations"] += 1
            return True
        access = self.access_tokens.get(token)
        if access is not None and access.client_id in (None, client_id):
            self.access_tokens[token] = AccessGrant(self.clock.now(), access.client_id, access.subject)
            self.counts["revocations"] += 1
            return True
        return False

    def check_access(self, token: str) -> AccessCheck:
        grant = self.access_tokens.get(token)
        if grant is None:
            return AccessCheck("unknown")
        if grant.expires_at <= self.clock.now():
            return AccessCheck("expired")
        return AccessCheck("valid", grant)

    def refresh_status(self, grant: RefreshGrant) -> RefreshStatus:
        now = self.clock.now()
        if grant.revoked:
            return "revoked"
        if self.policy.unused_ttl is not None and now - grant.issued_at > self.policy.unused_ttl:
            return "expired"
        return "active" if grant.used_at is None else "used"

    @property
    def refresh_tokens(self) -> dict[str, RefreshStatus]:
        return {token: self.refresh_status(grant) for token, grant in self.grants.items()}

    def expire_access_tokens(self) -> None:
        now = self.clock.now()
        self.access_tokens = {t: AccessGrant(now, g.client_id, g.subject) for t, g in self.access_tokens.items()}

    def revoke_all(self) -> None:
        """Every refresh token is refused from now on (the user disconnected the app)."""
        for grant in self.grants.values():
            grant.revoked = True

    def stats(self) -> dict[str, int]:
        active = sum(1 for status in self.refresh_tokens.values() if status == "active")
        return {"refreshes": self.counts["refreshes"], "invalid_grant": self.counts["invalid_grant"],
                "token_calls": self.counts["token_calls"], "active_refresh_tokens": active}

    # -- the token endpoint -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler for the token endpoint."""
        return token_response(*self.exchange(await TokenRequest.read(request)))

    def exchange(self, request: TokenRequest) -> tuple[int, dict[str, Any]]:
        """One token request -> (HTTP status, JSON body). Never awaits: atomic on one loop."""
        self.counts["token_calls"] += 1
        grant_type = request.form.get("grant_type")
        unsupported = grant_type not in ("refresh_token", "authorization_code")
        if unsupported and self.policy.grant_type_first:
            return self._error(400, "unsupported_grant_type")
        client = self._client(request)
        if isinstance(client, tuple):
            return client
        if unsupported:
            return self._error(400, "unsupported_grant_type")
        if grant_type == "authorization_code":
            return self._redeem(request, client)
        presented = request.form.get("refresh_token", "")
        grant = self.grants.get(presented)
        if grant is None or not self._usable(grant, client):
            return self._error(400, "invalid_grant")
        now = self.clock.now()
        refresh = None
        if self.policy.rotate:  # without rotation the presented token stays as good as new
            if grant.used_at is None:
                grant.used_at = now  # the grace runs from the first use, not the latest
            refresh = self.issue_refresh_token(client_id=client, subject=grant.subject)
        access = self.issue_access_token(client_id=client, subject=grant.subject)
        self.counts["refreshes"] += 1
        issued = Issued(access, self.policy.access_ttl, refresh, grant, now)
        return 200, self.body(issued, request)

    def _redeem(self, request: TokenRequest, client: str) -> tuple[int, dict[str, Any]]:
        """``grant_type=authorization_code`` (RFC 6749 §4.1.3, RFC 7636 §4.6): the code is the
        client's, unused, younger than ``CODE_TTL``, sent with the same ``redirect_uri`` and a
        ``code_verifier`` matching its challenge. A replayed code also revokes what it gave (§4.1.2)."""
        code = self.codes.get(request.form.get("code", ""))
        if code is None or code.client_id != client or self.clock.now() - code.issued_at > CODE_TTL:
            return self._error(400, "invalid_grant", "the authorization code is invalid or expired")
        if code.used:
            for token in code.tokens:
                self.grants[token].revoked = True
            return self._error(400, "invalid_grant", "the authorization code was already used")
        if request.form.get("redirect_uri", "") != code.redirect_uri:
            return self._error(400, "invalid_grant", "redirect_uri does not match the authorization request")
        if code.code_challenge is not None:
            verifier = request.form.get("code_verifier")
            if not verifier:
                return self._error(400, "invalid_grant", "code_verifier is missing")
            expected = pkce_challenge(verifier, code.code_challenge_method)
            if not hmac.compare_digest(expected.encode(), code.code_challenge.encode()):
                return self._error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        code.used = True
        now = self.clock.now()
        refresh = self.issue_refresh_token(client_id=client, subject=code.subject)
        code.tokens = (refresh,)
        access = self.issue_access_token(client_id=client, subject=code.subject)
        self.counts["codes_redeemed"] += 1
        issued = Issued(access, self.policy.access_ttl, refresh, self.grants[refresh], now)
        return 200, self.body(issued, request)

    def _usable(self, grant: RefreshGrant, client: str) -> bool:
        if grant.client_id is not None and grant.client_id != client:
            return False  # §6: a refresh token is bound to the client it was issued to
        status = self.refresh_status(grant)
        if status == "active":
            return True
        grace = self.policy.used_grace  # zero means none, even on a clock that has not moved
        return (status == "used" and grant.used_at is not None and grace > timedelta(0)
                and self.clock.now() - grant.used_at <= grace)

    def authenticate(self, request: TokenRequest) -> str | tuple[int, dict[str, Any]]:
        """The authenticated client id, or the error reply (also for the revoke endpoint)."""
        return self._client(request)

    def _client(self, request: TokenRequest) -> str | tuple[int, dict[str, Any]]:
        """The authenticated client id, or the error reply."""
        header = request.authorization
        by_basic = header[:6].lower() == "basic "
        if by_basic:
            try:
                client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
                return self._error(401, "invalid_client")
            if request.form.get("client_id", client_id) != client_id:
                return self._error(400, "invalid_request")
        else:
            client_id = request.form.get("client_id", "")
            secret = request.form.get("client_secret", "")
        expected = self.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return self._error(401 if by_basic else 400, "invalid_client")
        return client_id

    def _error(self, status: int, code: str, description: str | None = None) -> tuple[int, dict[str, Any]]:
        self.counts[code] += 1
        return status, {"error": code, "error_description": description or self.error_descriptions[code]}
