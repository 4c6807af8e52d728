"""The alerts whose condition still holds (``alerts_open``): the store half of ``sync.alerts``.

A condition is alerted when it first holds and not again while it holds; its row goes when it
clears, so it is alerted again if it comes back. The row is claimed before the alert is sent
(``claim_alert`` is an insert that one process wins), so two processes never send one alert twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select

from state import schema as t
from state.txbase import TxBase


class AlertsMixin(TxBase):
    def open_alert_keys(self) -> set[str]:
        return {str(k) for k in self.conn.execute(select(t.alerts_open.c.key)).scalars()}

    def claim_alert(self, key: str, kind: str) -> bool:
        """Mark an alert sent; False when it already was (by this or another process)."""
        return self._insert_ignore(t.alerts_open, {"key": key, "kind": kind, "opened_at": self.now}, ("key",))

    def clear_alerts(self, keys: Iterable[str]) -> None:
        """Forget alerts whose condition cleared (or whose delivery failed: sent again next time)."""
        chosen = list(keys)
        if chosen:
            self.conn.execute(delete(t.alerts_open).where(t.alerts_open.c.key.in_(chosen)))
