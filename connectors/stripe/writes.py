"""Idempotent writes to Stripe: upserts per entity type and usage (meter events).

Every request carries a key derived from the Outbound's deterministic idempotency key plus the
step (``…:create``, ``…:update:<id>``, ``…:item:<n>``), so a retry of the same step replays
Stripe's stored answer and a different step never collides with it. When an earlier attempt's
outcome is unknown (``attempt > 1``) the record is first looked up by ``metadata.hub_id`` (by
search, then among the recently created, as search lags writes); should that miss it, the retried
create carries the first attempt's key and Stripe answers with the object it made.
Stripe has no batch endpoint: a batch is a loop, and one item's failure is that item's
``WriteResult(error=…)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.base import (
    ConnectorError,
    DuplicateError,
    InvalidError,
    Outbound,
    Record,
    WriteResult,
)
from connectors.stripe.client import StripeApi
from connectors.stripe.streams import record_of, to_plain

Lookup = Callable[[str, str, Mapping[str, Any]], Record | None]
WRITABLE = ("customer", "product", "price", "subscription", "invoice")


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One usage fact for a Stripe meter. ``identifier`` makes a resend count once."""

    identifier: str
    event_name: str
    customer: str  # Stripe customer id (cus_…)
    value: Decimal | int
    timestamp: datetime | None = None


def _v1(client: Any) -> Any:
    """The SDK's v1 services, untyped: payloads are built dynamically from canonical data."""
    return client.v1


def with_marker(payload: Mapping[str, Any], hub_id: str) -> dict[str, Any]:
    """The payload with ``metadata.hub_id`` set: the hub's marker on every object it writes."""
    params = {k: v for k, v in payload.items() if not k.startswith("_")}
    params["metadata"] = {**dict(payload.get("metadata") or {}), "hub_id": hub_id}
    return params


class StripeWriter:
    def __init__(self, api: StripeApi, lookup: Lookup, system: str = "stripe") -> None:
        self.api = api
        self.lookup = lookup
        self.system = system

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        results = []
        for item in batch:
            try:
                results.append(self._one(entity_type, item))
            except ConnectorError as exc:
                results.append(WriteResult(item.idempotency_key, external_id=item.external_id, error=exc))
        return results

    # -- dispatch ------------------------------------------------------------------------------

    def _one(self, entity_type: str, item: Outbound) -> WriteResult:
        if entity_type not in WRITABLE:
            raise InvalidError(f"{entity_type} records are created by Stripe itself; the hub does not "
                               "write them", system=self.system)
        ext = item.external_id
        if ext is None and item.attempt > 1:
            found = self.lookup(entity_type, item.hub_id, _scope(entity_type, item.payload))
            ext = found.external_id if found else None
        if item.operation in ("delete", "void"):
            if ext is None:
                return WriteResult(item.idempotency_key)  # nothing there: already gone
            return self._remove(entity_type, ext, item)
        handler = getattr(self, f"_write_{entity_type}")
        result: WriteResult = handler(item, ext)
        return result

    def _result(self, entity_type: str, item: Outbound, obj: Any, created: bool) -> WriteResult:
        data = to_plain(obj)
        return WriteResult(item.idempotency_key, external_id=str(data["id"]), created=created,
                           record=record_of(entity_type, data))

    def _opts(self, item: Outbound, step: str) -> Any:
        key = f"{item.idempotency_key}:{step}"
        return {"idempotency_key": key[:255]}

    # -- simple objects --------------------------------------------------------------------------

    def _simple(self, entity_type: str, service: Callable[[Any], Any], item: Outbound,
                ext: str | None) -> WriteResult:
        params = with_marker(item.payload, item.hub_id)
        if ext:
            obj = self.api.call(lambda c: service(c).update(ext, params=params,
                                                            options=self._opts(item, f"update:{ext}")))
            return self._result(entity_type, item, obj, created=False)
        obj = self.api.call(lambda c: service(c).create(params=params, options=self._opts(item, "create")))
        return self._result(entity_type, item, obj, created=True)

    def _write_customer(self, item: Outbound, ext: str | None) -> WriteResult:
        return self._simple("customer", lambda c: _v1(c).customers, item, ext)

    def _write_product(self, item: Outbound, ext: str | None) -> WriteResult:
        return self._simple("product", lambda c: _v1(c).products, item, ext)

    # -- prices: amounts are immutable -------------------------------------------------------------

    _PRICE_FIXED = ("unit_amount", "currency", "recurring", "product", "unit_amount_decimal")

    def _write_price(self, item: Outbound, ext: str | None) -> WriteResult:
        params = with_marker(item.payload, item.hub_id)
        if ext is None:
            obj = self.api.call(lambda c: _v1(c).prices.create(params=params, options=self._opts(item, "create")))
            return self._result("price", item, obj, created=True)
        current = to_plain(self.api.call(lambda c: _v1(c).prices.retrieve(ext)))
        if any(_differs(current.get(k), params.get(k)) for k in self._PRICE_FIXED if k in params):
            # A changed amount is a new price; the old one is deactivated, never edited.
            new = self.api.call(lambda c: _v1(c).prices.create(params=params,
                                                             options=self._opts(item, f"replace:{ext}")))
            self.api.call(lambda c: _v1(c).prices.update(ext, params={"active": False},
                                                       options=self._opts(item, f"deactivate:{ext}")))
            return self._result("price", item, new, created=True)
        mutable: dict[str, Any] = {k: params[k] for k in ("nickname", "active", "metadata", "lookup_key") if k in params}
        if params.get("tax_behavior") and current.get("tax_behavior") == "unspecified":
            mutable["tax_behavior"] = params["tax_behavior"]
        obj = self.api.call(lambda c: _v1(c).prices.update(ext, params=mutable,
                                                         options=self._opts(item, f"update:{ext}")))
        return self._result("price", item, obj, created=False)

    # -- subscriptions -----------------------------------------------------------------------------

    def _write_subscription(self, item: Outbound, ext: str | None) -> WriteResult:
        params = with_marker(item.payload, item.hub_id)
        if params.pop("status", None) == "canceled" and ext:
            return self._remove("subscription", ext, item)
        if ext is None:
            params.pop("proration_behavior", None)
            # A deal won in the CRM brings no card: its invoices are sent to the customer to pay, as
            # the hub's one-off invoices are. A charge_automatically subscription for a customer
            # without a payment method is made `incomplete` by Stripe, its first invoice unpaid,
            # and expires a day later.
            params.setdefault("collection_method", "send_invoice")
            params.setdefault("days_until_due", 30)
            obj = self.api.call(lambda c: _v1(c).subscriptions.create(params=params,
                                                                    options=self._opts(item, "create")))
            return self._result("subscription", item, obj, created=True)
        current = to_plain(self.api.call(lambda c: _v1(c).subscriptions.retrieve(ext)))
        update: dict[str, Any] = {"metadata": params["metadata"],
                                  "proration_behavior": params.get("proration_behavior", "create_prorations")}
        items = _item_changes(current, params.get("items") or [])
        if items:
            update["items"] = items
        obj = self.api.call(lambda c: _v1(c).subscriptions.update(ext, params=update,
                                                                options=self._opts(item, f"update:{ext}")))
        return self._result("subscription", item, obj, created=False)

    # -- one-off invoices: invoice -> items -> finalize ----------------------------------------------

    def _write_invoice(self, item: Outbound, ext: str | None) -> WriteResult:
        params = with_marker(item.payload, item.hub_id)
        lines = params.pop("lines", [])
        finalize = params.pop("finalize", True)
        if ext:
            update: dict[str, Any] = {k: params[k] for k in ("metadata", "description") if k in params}
            obj = self.api.call(lambda c: _v1(c).invoices.update(ext, params=update,
                                                               options=self._opts(item, f"update:{ext}")))
            return self._result("invoice", item, obj, created=False)
        params.setdefault("pending_invoice_items_behavior", "exclude")
        params.setdefault("auto_advance", False)
        invoice = to_plain(self.api.call(lambda c: _v1(c).invoices.create(
            params=params, options=self._opts(item, "create"))))
        inv_id = str(invoice["id"])
        if invoice.get("status") == "draft":
            for n, line in enumerate(lines):
                line_params = {**line, "customer": params["customer"], "invoice": inv_id}
                opts = self._opts(item, f"item:{n}")

                def add_item(c: Any, p: dict[str, Any] = line_params, o: Any = opts) -> Any:
                    return _v1(c).invoice_items.create(params=p, options=o)
                self.api.call(add_item)
            if finalize:
                invoice = to_plain(self.api.call(lambda c: _v1(c).invoices.finalize_invoice(
                    inv_id, options=self._opts(item, "finalize"))))
        final = self.api.call(lambda c: _v1(c).invoices.retrieve(inv_id))
        return self._result("invoice", item, final, created=True)

    # -- removal -----------------------------------------------------------------------------------

    def _remove(self, entity_type: str, ext: str, item: Outbound) -> WriteResult:
        opts = self._opts(item, f"{item.operation}:{ext}")
        if entity_type == "customer":
            self.api.call(lambda c: _v1(c).customers.delete(ext, options=opts))
            return WriteResult(item.idempotency_key, external_id=ext)
        if entity_type in ("product", "price"):
            resource = "products" if entity_type == "product" else "prices"
            obj = self.api.call(lambda c: getattr(_v1(c), resource).update(
                ext, params={"active": False}, options=opts))
        elif entity_type == "subscription":
            obj = self.api.call(lambda c: _v1(c).subscriptions.cancel(ext, options=opts))
        else:
            current = to_plain(self.api.call(lambda c: _v1(c).invoices.retrieve(ext)))
            if current.get("status") == "draft":
                self.api.call(lambda c: _v1(c).invoices.delete(ext, options=opts))
                return WriteResult(item.idempotency_key, external_id=ext)
            if current.get("status") in ("void", "paid"):
                return self._result("invoice", item, current, created=False)
            obj = self.api.call(lambda c: _v1(c).invoices.void_invoice(ext, options=opts))
        return self._result(entity_type, item, obj, created=False)

    # -- usage ---------------------------------------------------------------------------------------

    def record_usage(self, events: Sequence[UsageEvent]) -> list[WriteResult]:
        """One meter event per usage fact; a resent identifier is recognised, not counted twice."""
        results = []
        for event in events:
            key = f"usage:{event.identifier}"[:255]
            params: dict[str, Any] = {
                "event_name": event.event_name, "identifier": event.identifier,
                "payload": {"stripe_customer_id": event.customer, "value": str(event.value)},
            }
            if event.timestamp is not None:
                params["timestamp"] = int(event.timestamp.timestamp())
            try:
                def send(c: Any, p: dict[str, Any] = params, k: str = key) -> Any:
                    return _v1(c).billing.meter_events.create(params=p, options={"idempotency_key": k})
                self.api.call(send)
                results.append(WriteResult(key, external_id=event.identifier, created=True))
            except DuplicateError:
                results.append(WriteResult(key, external_id=event.identifier, created=False))
            except ConnectorError as exc:
                results.append(WriteResult(key, external_id=event.identifier, error=exc))
        return results


def _scope(entity_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """List filters that narrow a lookup among recent objects to the write's own neighbours."""
    field = {"invoice": "customer", "subscription": "customer", "price": "product",
             "customer": "email"}.get(entity_type)
    value = payload.get(field) if field else None
    return {field: value} if field and isinstance(value, str) and value else {}


def _differs(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping) and isinstance(current, Mapping):
        return any(_differs(current.get(k), v) for k, v in wanted.items())
    if wanted is None:
        return current is not None
    return str(current).lower() != str(wanted).lower()


def _item_changes(current: Mapping[str, Any], wanted: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Subscription ``items`` parameter turning the current items into the wanted ones.

    A removed price paired with an added one becomes a price swap on the same item, which is how
    Stripe prorates an upgrade; leftovers are added or deleted.
    """
    have = {str(i["price"]["id"]): i for i in current.get("items", {}).get("data", [])}
    want = {str(w["price"]): int(w.get("quantity", 1)) for w in wanted}
    changes: list[dict[str, Any]] = []
    for price, qty in want.items():
        if price in have and int(have[price].get("quantity") or 1) != qty:
            changes.append({"id": have[price]["id"], "quantity": qty})
    removed = [i for p, i in have.items() if p not in want]
    added = [(p, q) for p, q in want.items() if p not in have]
    while removed and added:
        old, (price, qty) = removed.pop(0), added.pop(0)
        changes.append({"id": old["id"], "price": price, "quantity": qty})
    changes += [{"price": p, "quantity": q} for p, q in added]
    changes += [{"id": old["id"], "deleted": True} for old in removed]
    return changes
