"""``hub check``: every connection called with its stored credentials — reachable, authorised,
which account, its base currency, the scopes, and what setup billhub needs there is missing.

A connection counts as "ok" in ``hub status`` only once a check (or a re-authorisation) said
so; before, it is "unchecked". A passing check stores what it learnt beside the connection's
state; a failing one changes no pause (a refused OAuth grant already marked it
``needs_reauth``), so a network blip during a check never stops the connection's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import AuthError, ConnectorError, RetryableError
from sync.runtime import Hub


def check_connections(hub: Hub, names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per connection checked (all, or ``names``), in name order."""
    unknown = sorted(set(names) - set(hub.connectors))
    if unknown:
        raise LookupError(f"no connection {', '.join(map(repr, unknown))}; configured: "
                          f"{', '.join(sorted(hub.connectors)) or 'none'}")
    return [_check(hub, name) for name in sorted(hub.connectors) if not names or name in names]


def _check(hub: Hub, name: str) -> dict[str, Any]:
    connector = hub.connectors[name]
    row: dict[str, Any] = {"name": name, "system": connector.system, "ok": False, "reachable": False,
                           "authorised": False, "account": None, "base_currency": None, "scopes": [],
                           "missing": [], "details": {}, "problem": None}
    checker = connector.capabilities().checker
    if checker is None:
        row["problem"] = "this connection cannot be checked"
        return row
    try:
        found = checker.check()
    except AuthError as exc:
        row.update(reachable=True, problem=f"not authorised: {exc}")
        return row
    except RetryableError as exc:
        row["problem"] = f"not reachable: {exc}"
        return row
    except ConnectorError as exc:
        row.update(reachable=True, problem=str(exc))
        return row
    row.update(reachable=True, authorised=True, account=found.account, base_currency=found.base_currency,
               scopes=list(found.scopes), missing=list(found.missing), details=dict(found.details),
               ok=not found.missing)
    if found.missing:
        row["problem"] = f"{len(found.missing)} thing(s) to set up: " + "; ".join(found.missing)
    _remember(hub, name, row)
    return row


def _remember(hub: Hub, name: str, row: dict[str, Any]) -> None:
    """A check that reached the vendor with valid credentials: the connection is "ok" (checked)
    unless it is paused for another reason, which the check cannot lift."""
    with hub.store.transaction() as tx:
        state = tx.connection_state(name)
        if state is not None and state["status"] not in ("ok", "needs_reauth"):
            return
        details = {"checked_at": tx.now.isoformat(), "account": row["account"],
                   "base_currency": row["base_currency"], "missing": row["missing"]}
        tx.set_connection_state(name, "ok", reason="checked" if row["ok"] else row["problem"], details=details)


__all__ = ["check_connections"]
