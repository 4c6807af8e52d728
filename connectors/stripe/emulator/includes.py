"""Fields Stripe leaves out of an object unless asked for with ``expand[]`` ("includable"):
a customer's ``sources``, ``subscriptions`` and ``tax_ids``, a charge's ``refunds``. Each is a
list envelope of the first ten, newest first, with ``has_more`` and the list's own ``url``.

The emulator keeps no payment sources (every payment is a card PaymentMethod), so a customer's
``sources`` is an empty list of the real shape. Ids the emulator knows are expanded by the app's
generic ``_expand``; these are the fields that hold no id to look up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.stripe.emulator.catalog import CatalogMixin

_FIRST_PAGE = 10


class IncludesMixin(CatalogMixin):
    """The includable fields, computed from the objects they list."""

    def includable(self, node: Mapping[str, Any], field: str) -> dict[str, Any] | None:
        """The value ``expand[]=<field>`` gives ``node``, or ``None`` when the field is not an
        includable one of this object (or the object is deleted)."""
        obj_id, kind = node.get("id"), node.get("object")
        if not obj_id or node.get("deleted"):
            return None
        obj_id = str(obj_id)
        if kind == "customer":
            if field == "tax_ids":
                return self.customer_tax_ids(obj_id)
            if field == "sources":
                return self._envelope([], f"/v1/customers/{obj_id}/sources")
            if field == "subscriptions":
                live = [s for s in self.live("subscription")
                        if s.get("customer") == obj_id and s.get("status") != "canceled"]
                return self._envelope(live, f"/v1/customers/{obj_id}/subscriptions")
        if kind == "charge" and field == "refunds":
            refunds = [r for r in self.live("refund") if r.get("charge") == obj_id]
            return self._envelope(refunds, f"/v1/charges/{obj_id}/refunds")
        return None

    def _envelope(self, items: list[dict[str, Any]], url: str) -> dict[str, Any]:
        return {"object": "list", "data": [self.render(o) for o in items[:_FIRST_PAGE]],
                "has_more": len(items) > _FIRST_PAGE, "url": url}
