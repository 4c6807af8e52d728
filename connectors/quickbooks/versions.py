"""QuickBooks record versions: the ``SyncToken``, a counter QuickBooks moves on every change of an
object (a stale one on an update is error 5010). ``Record.version`` carries it, and the hub keeps it
on the link (``links.remote_version``). Two states of one object are ordered by it exactly, with no
clock in the way: a read carrying a lower token than the one held is an older state (a change
feed's page that was read before the hub's own write landed, say) and is never stored over it.
"""

from __future__ import annotations


def _token(version: str | None) -> int | None:
    try:
        return int(version) if version is not None else None
    except ValueError:
        return None  # not a SyncToken: no order claimed


class SyncTokens:
    """``connectors.base.VersionOrder`` for QuickBooks."""

    def precedes(self, version: str, held: str) -> bool:
        a, b = _token(version), _token(held)
        return a is not None and b is not None and a < b

    def latest(self, version: str, held: str) -> str:
        a, b = _token(version), _token(held)
        if a is None:
            return held
        return version if b is None or a >= b else held


SYNC_TOKENS = SyncTokens()

__all__ = ["SYNC_TOKENS", "SyncTokens"]
