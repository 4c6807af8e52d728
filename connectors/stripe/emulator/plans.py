"""Plans: ``GET /v1/plans`` and ``GET /v1/plans/{id}``, every recurring Price read as a Plan.

Stripe's Prices API replaced Plans "and is backwards compatible": a recurring price is also a
plan, under the same id, in the ``plan`` schema (``amount``, ``interval``, ``interval_count``,
``product``, ``currency``, ``active``, ``nickname`` ...). A one-time price is no plan (404
``No such plan``). Plans are read-only here: the hub and the tools that read Stripe create
prices, and the emulator emits no ``plan.*`` events (only ``price.*``).
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.version_shapes import plan_of
from connectors.stripe.emulator.wire import as_bool, created_filter, missing, paginate


class PlansMixin(StripeStore):
    """Recurring prices in the plan shape."""

    def _plan(self, price: dict[str, Any]) -> dict[str, Any] | None:
        return plan_of(self.render(price))

    def list_plans(self, params: Params) -> dict[str, Any]:
        check = created_filter(params)
        active = as_bool(params, "active")
        product = str(params["product"]) if params.get("product") else None
        items = [plan for price in self.live("price")
                 if price.get("recurring") and check(price)
                 and (active is None or price.get("active") == active)
                 and (product is None or price.get("product") == product)
                 and (plan := self._plan(price)) is not None]
        return paginate(items, params, "/v1/plans")

    def retrieve_plan(self, plan_id: str) -> dict[str, Any]:
        price = self.table("price").get(plan_id)
        plan = self._plan(price) if price is not None and not price.get("_deleted") else None
        if plan is None:
            raise missing("plan", plan_id)
        return plan

    def add_plan_routes(self, router: Any, r: Any) -> None:
        r(router, "GET", "/v1/plans", lambda p, m: self.list_plans(p))
        r(router, "GET", "/v1/plans/{id}", lambda p, m: self.retrieve_plan(m["id"]))
