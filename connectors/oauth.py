"""OAuth 2.0 refresh-token rotation for one connection, written once for QuickBooks, Xero and
Salesforce; each vendor injects only its token call (an ``Exchange``: refresh token -> ``Grant``,
through its SDK or client, raising ``GrantRefused`` when a person must re-authorise).

Refresh tokens rotate and are single-use (QuickBooks refuses a used one at once, Xero after a
grace), so losing a freshly issued one — a crash after the token call but before saving — would
lock the connection out until a person re-authorises. A refresh therefore runs inside ONE
state-store transaction::

    load_credentials(for_update=True)   # the credentials lock: one refresh at a time, across processes
    adopt a valid token another process stored meanwhile (no token call), or
    exchange(refresh token)             # the vendor's token call
    save_credentials(rotated tokens)    # encrypted
    | set_connection_state(needs_reauth) when the grant was refused (the same transaction)
    COMMIT                              # before the new access token is used anywhere

``needs_reauth`` sticks: later refreshes raise ``AuthError(needs_reauth=True)`` without calling the
token endpoint (a new process reads it from the connection state) until a person re-authorised:
``hub connect`` stored new tokens and marked the connection ok (noticed by a running process on
its next refresh), or a different refresh token is configured, which then wins over the stored one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import AuthError, OAuthCredentials
from state.store import StateStore

# Keys of the stored credentials this module owns; anything else a Grant carries is vendor data.
_OWN_KEYS = ("access_token", "refresh_token", "expires_at", "seed")


@dataclass(frozen=True)
class Grant:
    """A token endpoint's answer. ``refresh_token`` None: the presented one stays valid."""

    access_token: str
    expires_in: float  # seconds from now
    refresh_token: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # vendor fields kept beside the tokens

    def __repr__(self) -> str:  # never show tokens
        return f"Grant(expires_in={self.expires_in!r})"


class GrantRefused(Exception):
    """The token endpoint refused the refresh token (``invalid_grant``): a person must act."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Exchange = Callable[[str], Grant]


def fingerprint(token: str | None) -> str | None:
    """A non-reversible tag of a configured token (to notice a person re-authorised)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


def parse_expiry(value: Any) -> datetime | None:
    """A stored ``expires_at``: ISO text, or a POSIX timestamp (rows Xero stored before)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class TokenRotation(OAuthCredentials):
    """Hands out the access token of one connection; refreshes under the credentials lock."""

    def __init__(self, *, name: str, system: str, vendor: str, store: StateStore, exchange: Exchange,
                 initial_refresh_token: str | None, now: Callable[[], datetime],
                 skew_seconds: float, after_save: Callable[[], None] | None = None) -> None:
        self.name = name
        self.system = system
        self.vendor = vendor  # for messages: "QuickBooks", "Xero", "Salesforce"
        self._store = store
        self._exchange = exchange
        self._initial = initial_refresh_token
        self._now = now
        self._skew = timedelta(seconds=skew_seconds)
        # Test seams: a crash after the new tokens are saved but before the commit, and after
        # the commit but before the new access token is first used.
        self.after_receive: Callable[[], None] | None = None
        self.after_save = after_save
        self._held: dict[str, Any] = {}
        self._usable = False  # False once the API refused the token in hand
        self._needs_reauth = False
        self.refreshes = 0  # token calls made (adopting another process's tokens is not one)
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show tokens
        return f"{type(self).__name__}(name={self.name!r}, needs_reauth={self._needs_reauth})"

    # ------------------------------------------------------------------ OAuthCredentials

    @property
    def needs_reauth(self) -> bool:
        return self._needs_reauth

    def refresh_credentials(self, *, force: bool = False) -> None:
        with self._lock:
            if force or not self._fresh():
                self._refresh(stale=self._held.get("access_token"))

    def credentials_expire_at(self) -> datetime | None:
        return parse_expiry(self._held.get("expires_at"))

    # ------------------------------------------------------------------ for the vendor's client

    def access_token(self) -> str:
        """A token valid for at least the skew; refreshes (once, under the lock) if needed."""
        with self._lock:
            if not self._fresh():
                self._refresh(stale=self._held.get("access_token"))
            return str(self._held["access_token"])

    def current_token(self) -> str:
        """The token in hand until the API refuses it (sessions whose timeout slides with use,
        as Salesforce's: the stated expiry is only the token job's cue); one if there is none."""
        with self._lock:
            if not (self._usable and self._held.get("access_token")):
                self._refresh(stale=self._held.get("access_token"))
            return str(self._held["access_token"])

    def refused(self, token: str) -> None:
        """The API answered 401 for ``token``: the next call refreshes (unless another did)."""
        with self._lock:
            if self._held.get("access_token") == token:
                self._usable = False  # keep the value: the refresh must know which one is stale

    def extra(self, key: str) -> Any:
        """A vendor field stored with the tokens in hand (e.g. Salesforce's ``instance_url``)."""
        return self._held.get(key) if key not in _OWN_KEYS else None

    # ------------------------------------------------------------------ internals

    def _reconnected(self) -> bool:
        """A connection this process saw refused was connected again meanwhile (``hub connect``
        or the daemon's ``/oauth/callback`` stored new tokens and marked it ok): work resumes
        with the stored tokens, without a restart. One state read; no token call."""
        with self._store.transaction() as tx:
            state = tx.connection_state(self.name) or {}
        if state.get("status") != "ok":  # still refused, or paused for another reason meanwhile:
            return False                  # the refused token is never presented again
        self._needs_reauth = False
        self._usable = False  # adopt the stored tokens on this refresh
        return True

    def _valid(self, creds: Mapping[str, Any]) -> bool:
        expires_at = parse_expiry(creds.get("expires_at"))
        return bool(creds.get("access_token")) and expires_at is not None \
            and expires_at - self._skew > self._now()

    def _fresh(self) -> bool:
        return self._usable and self._valid(self._held)

    def _refresh(self, stale: str | None) -> None:
        """Called with ``_lock`` held. ``stale`` is the token the caller found wanting: a
        stored one that differs and is valid was refreshed by another process, and is adopted."""
        if self._needs_reauth and not self._reconnected():
            raise AuthError(f"{self.vendor} needs re-authorisation (refresh token refused); reconnect the app",
                            needs_reauth=True, system=self.name)
        reauth: str | None = None
        exchanged = False
        configured = fingerprint(self._initial)
        with self._store.transaction() as tx:
            creds = tx.load_credentials(self.name, for_update=True) or {}
            fresh = creds
            state = tx.connection_state(self.name) or {}
            refused_seed = (state.get("details") or {}).get("refused_seed")
            # Stored tokens without a seed were written before seeds were kept: they descend
            # from the configured token.
            seed = creds.get("seed", configured) if creds else None
            configured_new = configured not in (None, seed, refused_seed)
            if state.get("status") == "needs_reauth" and not configured_new:
                reauth = str(state.get("reason") or "refresh token refused")
            elif configured_new or creds.get("access_token") == stale or not self._valid(creds):
                refresh_token = self._initial if configured_new or not creds.get("refresh_token") \
                    else str(creds["refresh_token"])
                if not refresh_token:
                    reauth = "no refresh token: set connections.<name>.refresh_token from the OAuth consent flow"
                else:
                    try:
                        grant = self._exchange(refresh_token)
                    except GrantRefused as exc:
                        reauth = exc.reason
                    else:
                        # what ``hub connect`` stored beside the tokens (the realm, tenant or
                        # instance consented to) stays with the rotated ones
                        kept = {k: v for k, v in creds.items() if k not in _OWN_KEYS}
                        fresh = {**kept, **grant.extra, "access_token": grant.access_token,
                                 "refresh_token": grant.refresh_token or refresh_token,
                                 "expires_at": (self._now() + timedelta(seconds=grant.expires_in)).isoformat(),
                                 "seed": configured if self._initial else creds.get("seed")}
                        tx.save_credentials(self.name, fresh)
                        exchanged = True
                        if state.get("status") == "needs_reauth":
                            tx.set_connection_state(self.name, "ok", reason="re-authorised")
                        if self.after_receive is not None:
                            self.after_receive()
            # else: another worker/process refreshed already: adopt its tokens, no token call
            if reauth is not None:
                tx.set_connection_state(self.name, "needs_reauth", reason=reauth,
                                        details={"system": self.system, "alert": True,
                                                 "refused_seed": configured})
        # committed: the rotated refresh token is durable before the access token is used
        if reauth is not None:
            self._needs_reauth = True
            raise AuthError(f"{self.vendor} needs re-authorisation: {reauth}", needs_reauth=True,
                            system=self.name)
        if exchanged:
            self.refreshes += 1
            if self.after_save is not None:
                self.after_save()
        self._held = dict(fresh)
        self._usable = True
