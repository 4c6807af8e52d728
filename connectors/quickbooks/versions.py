"""QuickBooks record versions: the ``SyncToken``, a counter QuickBooks moves on every change of an
object (a stale one on an update is error 5010). ``Record.version`` carries it, and the hub keeps it
on the link (``links.remote_version``). Two states of one object are ordered by it exactly, with no
clock in the way: a read carrying a lower token than the one held is an older state (a change
feed's page that was read before the hub's own write landed, say) and is never stored over it.
"""

from __future__ import annotations

from connectors.versions import NumberedVersions

SYNC_TOKENS = NumberedVersions(margin=0)  # ``connectors.base.VersionOrder`` for QuickBooks

__all__ = ["SYNC_TOKENS"]
