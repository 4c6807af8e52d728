"""Stripe's weaker guarantees, switchable: search lag, idempotency-key expiry, paged credit note
lines. Tests that prove a client copes with real Stripe turn them on; the defaults are what the
rest of the suite was written against, and, where Stripe's own behaviour is harmless to it, that.

Stripe facts kept (docs: "Search", "Idempotent requests", the credit note object):
- search is not read-after-write: "data is searchable in under 1 minute" normally, later during an
  outage. With ``search_lag_seconds`` an object is found by ``/v1/*/search`` only that long
  (emulator clock) after it was created or last changed, and until then by what it was before
  (the version the index holds); lists and retrieves are always current;
- idempotency keys may be pruned once at least 24 hours old, and a key reused after that runs the
  request anew. ``idempotency_ttl_seconds`` (default 86400) is when the emulator forgets one;
  ``None`` keeps every key;
- a credit note embeds at most the first 10 of its lines (``has_more``), the rest are read from
  ``GET /v1/credit_notes/{id}/lines``. ``credit_note_lines_inline`` (default 10) is that page;
  ``None`` embeds every line;
- a ``charge_automatically`` invoice is charged only with a payment method the customer (or its
  subscription or invoice) has; without one it stays open, unpaid (``collection.py``), as on
  Stripe. ``payment_method_required = False`` stands a test Visa card in for a card on file the
  fixture never collected (tests of other things that bill such customers say so).

Switched at construction (``StripeEmulator(realism=Realism(search_lag_seconds=60))``) or at run
time with ``POST /__emulator/realism {"search_lag_seconds": 60, ...}`` (``GET`` answers the
settings in force; ``/__emulator/reset`` keeps them, it forgets state, not configuration).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL, EmulatorClock
from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import paginate

DAY = 86400


@dataclass
class Realism:
    """Which of Stripe's weaker guarantees the emulator plays (see the module docstring)."""

    search_lag_seconds: int = 0
    idempotency_ttl_seconds: int | None = DAY
    credit_note_lines_inline: int | None = 10
    payment_method_required: bool = True


class IdempotencyKeys(dict[tuple[str, str], tuple[str, int, dict[str, Any]]]):
    """The stored answers by (API key, idempotency key), forgotten ``ttl`` seconds (emulator
    clock) after they were stored: a key used again after that is a new request."""

    def __init__(self, clock: EmulatorClock, ttl: Callable[[], int | None]) -> None:
        super().__init__()
        self.clock = clock
        self.ttl = ttl  # read on every use: the setting can change at run time
        self.stored_at: dict[tuple[str, str], float] = {}

    def __setitem__(self, key: tuple[str, str], value: tuple[str, int, dict[str, Any]]) -> None:
        self.prune()
        super().__setitem__(key, value)
        self.stored_at[key] = self.clock.now().timestamp()

    def get(self, key: tuple[str, str], default: Any = None) -> Any:  # type: ignore[override]
        ttl = self.ttl()
        at = self.stored_at.get(key)
        if ttl is not None and at is not None and self.clock.now().timestamp() - at >= ttl:
            self.pop(key, None)
            self.stored_at.pop(key, None)
            return default
        return super().get(key, default)

    def clear(self) -> None:
        super().clear()
        self.stored_at.clear()

    def prune(self) -> None:
        """Drop expired keys from the oldest on (insertion order), so memory stays bounded."""
        ttl = self.ttl()
        if ttl is None:
            return
        cutoff = self.clock.now().timestamp() - ttl
        while self.stored_at:
            key, at = next(iter(self.stored_at.items()))
            if at > cutoff:
                break  # stored in time order (a clock set back only keeps some a little longer)
            del self.stored_at[key]
            self.pop(key, None)


class RealismMixin(StripeStore):
    """Search as an index that lags, keys that expire, credit note lines paged."""

    realism: Realism

    def reset_state(self) -> None:
        super().reset_state()
        self.idempotency = IdempotencyKeys(self.clock, lambda: self.realism.idempotency_ttl_seconds)
        # per object id: the versions the search index will hold, (visible from, snapshot),
        # oldest first; only kept while a lag is on
        self._indexed: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    def emit(self, event_type: str, obj: Mapping[str, Any],
             previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        # every change the emulator makes emits an event, so this sees each version an index would
        lag = self.realism.search_lag_seconds
        if lag > 0 and obj.get("id"):
            versions = self._indexed.setdefault(str(obj["id"]), [])
            versions.append((self.now() + lag, copy.deepcopy(dict(obj))))
            now = self.now()
            while len(versions) > 1 and versions[1][0] <= now:
                versions.pop(0)  # an older version no search can see any more
        return super().emit(event_type, obj, previous)

    def search_view(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The version of ``obj`` the search index holds now (None: not indexed yet)."""
        if self.realism.search_lag_seconds <= 0:
            return obj
        versions = self._indexed.get(str(obj.get("id")))
        if not versions:
            return obj  # changed without an event (or before the lag was on): as it is
        now = self.now()
        visible = [snapshot for since, snapshot in versions if since <= now]
        return visible[-1] if visible else None

    def render(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        out = super().render(obj)
        inline = self.realism.credit_note_lines_inline
        if obj.get("object") == "credit_note" and inline is not None and isinstance(out.get("lines"), dict):
            lines = out["lines"]["data"]
            out["lines"] = {**out["lines"], "data": lines[:inline], "has_more": len(lines) > inline}
        return out

    def credit_note_lines(self, obj_id: str, params: Params) -> dict[str, Any]:
        """``GET /v1/credit_notes/{id}/lines``: every line, paged as any list."""
        note = self.get("credit_note", obj_id)
        lines = [copy.deepcopy(line) for line in note["_lines"]]
        return paginate(lines, params, f"/v1/credit_notes/{obj_id}/lines")

    def add_realism_routes(self, router: web.UrlDispatcher, route: Any) -> None:
        route(router, "GET", "/v1/credit_notes/{id}/lines", lambda p, m: self.credit_note_lines(m["id"], p))
        router.add_get(CONTROL + "realism", self._control_realism)
        router.add_post(CONTROL + "realism", self._control_realism)

    async def _control_realism(self, request: web.Request) -> web.Response:
        body = await request.json() if request.method == "POST" and request.can_read_body else {}
        known = {f.name for f in dataclasses.fields(Realism)}
        unknown = sorted(set(body) - known)
        if unknown:
            return web.json_response({"error": f"unknown realism setting(s): {', '.join(unknown)}"}, status=400)
        for name, value in body.items():
            if value is None and name == "search_lag_seconds":
                value = 0
            if name == "payment_method_required":
                value = bool(value)
            setattr(self.realism, name, value if value is None or isinstance(value, bool) else int(value))
        return web.json_response(dataclasses.asdict(self.realism))
