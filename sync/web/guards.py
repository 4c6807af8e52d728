"""What stands between a client and the admin token: the console's server-side sessions, the
throttle on wrong tokens, and the token's minimum strength.

Both tables live in the daemon process's memory, so a restart signs everyone out and forgets
the failure counts. Time comes from the daemon's clock, so tests pin it.
"""

from __future__ import annotations

import hmac
import math
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sync.config import ADMIN_KEYS, Config
from sync.users import BOOTSTRAP

# The defaults of the [admin] keys (declared once, in sync/config.py); a Config built by hand
# (tests, the demo) may lack the keys, so the readers below fall back to these.
SESSION_IDLE = timedelta(minutes=ADMIN_KEYS["session_idle_minutes"].default)
SESSION_MAX = timedelta(hours=ADMIN_KEYS["session_max_hours"].default)
FAILURE_LIMIT = int(ADMIN_KEYS["failed_tokens_per_minute"].default)
FAILURE_WINDOW = timedelta(minutes=1)
MIN_ADMIN_TOKEN = 16
_PRUNE_AT = 10_000  # table size past which stale entries are swept (bounds memory under attack)


@dataclass
class Sessions:
    """Live console sessions by id: (opened, last seen). Logout removes one; expiry ends one."""

    clock: Callable[[], datetime]
    idle: timedelta = SESSION_IDLE
    absolute: timedelta = SESSION_MAX
    _live: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    # Whose each session is (a user name; "admin" for the configured [admin] token): the console's
    # guard looks the user up on every request, so a disabled user's session ends there.
    _users: dict[str, str] = field(default_factory=dict)

    def open(self, user: str = BOOTSTRAP) -> str:
        self._sweep()
        sid = secrets.token_urlsafe(24)
        now = self.clock()
        self._live[sid] = (now, now)
        self._users[sid] = user
        return sid

    def user(self, sid: str) -> str | None:
        """The user of a live session (call ``touch`` first), or None."""
        return self._users.get(sid) if sid in self._live else None

    def touch(self, sid: str) -> bool:
        """Whether ``sid`` is a live session; a live one's idle timer restarts."""
        entry = self._live.get(sid)
        if entry is None:
            return False
        now = self.clock()
        if not self._alive(entry, now):
            self.close(sid)
            return False
        self._live[sid] = (entry[0], now)
        return True

    def close(self, sid: str) -> None:
        self._live.pop(sid, None)
        self._users.pop(sid, None)

    def _alive(self, entry: tuple[datetime, datetime], now: datetime) -> bool:
        opened, seen = entry
        return now - seen < self.idle and now - opened < self.absolute

    def _sweep(self) -> None:
        now = self.clock()
        for sid in [s for s, entry in self._live.items() if not self._alive(entry, now)]:
            self.close(sid)


@dataclass
class Throttle:
    """Failed token attempts per client address in a sliding window. Past the limit the address
    is refused (429) without its token being compared, so it learns nothing more until the
    oldest failure leaves the window; successes are never counted."""

    clock: Callable[[], datetime]
    limit: int = FAILURE_LIMIT
    window: timedelta = FAILURE_WINDOW
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying a token again, or None when it may."""
        recent = self._recent(client)
        if recent is None or len(recent) < self.limit:
            return None
        return max(1, math.ceil((recent[0] + self.window - self.clock()).total_seconds()))

    def fail(self, client: str) -> None:
        if len(self._failures) >= _PRUNE_AT:
            for key in list(self._failures):
                self._recent(key)
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(self.clock())

    def _recent(self, client: str) -> deque[datetime] | None:
        recent = self._failures.get(client)
        if recent is None:
            return None
        cutoff = self.clock() - self.window
        while recent and recent[0] <= cutoff:
            recent.popleft()
        if not recent:
            del self._failures[client]
            return None
        return recent


def _raw(text: str) -> bytes:
    """Bytes of a str that may hold lone surrogates (aiohttp decodes bad UTF-8 in headers with
    ``surrogateescape``): comparing must not raise on hostile input."""
    return text.encode("utf-8", "surrogatepass")


def token_matches(expected: str | None, given: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    if not expected:
        return False
    return hmac.compare_digest(_raw(expected), _raw(given))


def _admin(config: Config, key: str) -> float:
    value = (config.admin or {}).get(key)
    return float(ADMIN_KEYS[key].default if value is None else value)


def sessions_for(config: Config, clock: Callable[[], datetime]) -> Sessions:
    return Sessions(clock, idle=timedelta(minutes=_admin(config, "session_idle_minutes")),
                    absolute=timedelta(hours=_admin(config, "session_max_hours")))


def throttle_for(config: Config, clock: Callable[[], datetime]) -> Throttle:
    return Throttle(clock, limit=int(_admin(config, "failed_tokens_per_minute")))


def weak_token_problem(token: str | None) -> str | None:
    """Why the configured admin token is too weak to serve, or None (no token: API off, fine)."""
    if token is None or len(token) >= MIN_ADMIN_TOKEN:
        return None
    return (f"[admin] token is {len(token)} characters; at least {MIN_ADMIN_TOKEN} are needed. Make one with: "
            "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")


__all__ = ["MIN_ADMIN_TOKEN", "Sessions", "Throttle", "sessions_for", "throttle_for", "token_matches",
           "weak_token_problem"]
