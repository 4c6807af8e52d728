"""Canonical entities -> the parameters billhub sends Stripe (the types the hub writes).

Pure functions; every object the hub writes carries ``metadata.hub_id``, its marker. A reference
to a record not linked in Stripe yet is refused (``StripeMappingError``), never sent empty.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mapping.model import Address, Customer, Entity, Invoice, Price, Product, Subscription
from mapping.refs import RefResolver
from mapping.stripe_wire import StripeMappingError, to_stripe_amount


def _need(refs: RefResolver, entity_type: str, canonical_id: str | None) -> str:
    ext = refs.external_id(entity_type, canonical_id) if canonical_id else None
    if not ext:
        raise StripeMappingError(f"{entity_type} {canonical_id} is not linked to a Stripe object yet")
    return ext


def _address_params(address: Address | None) -> dict[str, str] | str:
    if address is None:
        return ""
    return {"line1": address.line1 or "", "line2": address.line2 or "", "city": address.city or "",
            "state": address.region or "", "postal_code": address.postal_code or "",
            "country": address.country or ""}


def customer_from_canonical(entity: Customer, refs: RefResolver) -> dict[str, Any]:
    return {"name": entity.name, "email": entity.email or "", "phone": entity.phone or "",
            "address": _address_params(entity.address), "metadata": {"hub_id": entity.id}}


def product_from_canonical(entity: Product, refs: RefResolver) -> dict[str, Any]:
    return {"name": entity.name, "description": entity.description or "", "active": entity.active,
            "metadata": {"hub_id": entity.id}}


def price_from_canonical(entity: Price, refs: RefResolver) -> dict[str, Any]:
    params: dict[str, Any] = {
        "product": _need(refs, "product", entity.product_id),
        "currency": entity.unit_amount.currency.lower(),
        "unit_amount": to_stripe_amount(entity.unit_amount), "active": entity.active,
        "metadata": {"hub_id": entity.id},
    }
    if entity.recurring_interval:
        params["recurring"] = {"interval": entity.recurring_interval,
                               "interval_count": entity.interval_count}
    if entity.tax_behavior != "unspecified":
        params["tax_behavior"] = entity.tax_behavior
    if entity.nickname:
        params["nickname"] = entity.nickname
    return params


def subscription_from_canonical(entity: Subscription, refs: RefResolver) -> dict[str, Any]:
    meta = {"hub_id": entity.id}
    if entity.deal_id:
        meta["deal_id"] = entity.deal_id
    params: dict[str, Any] = {
        "customer": _need(refs, "customer", entity.customer_id),
        "items": [{"price": _need(refs, "price", i.price_id), "quantity": i.quantity} for i in entity.items],
        "metadata": meta, "proration_behavior": "create_prorations",
    }
    if entity.status == "canceled":
        params["status"] = "canceled"
    return params


def invoice_from_canonical(entity: Invoice, refs: RefResolver) -> dict[str, Any]:
    """A one-off invoice: the invoice, then one invoice item per line (see writes.py)."""
    meta = {"hub_id": entity.id}
    if entity.deal_id:
        meta["deal_id"] = entity.deal_id
    customer = _need(refs, "customer", entity.customer_id)  # first: refused, no line is looked up
    lines = []
    for line in entity.lines:
        item: dict[str, Any] = {"description": line.description}
        price = refs.external_id("price", line.price_id) if line.price_id else None
        if price and line.quantity == line.quantity.to_integral_value():
            item.update(pricing={"price": price}, quantity=int(line.quantity))
        else:
            item.update(amount=to_stripe_amount(line.amount), currency=entity.currency.lower())
        lines.append(item)
    params: dict[str, Any] = {
        "customer": customer, "currency": entity.currency.lower(),
        "collection_method": "send_invoice", "metadata": meta, "lines": lines,
    }
    if entity.due_date and entity.issued_at:
        params["days_until_due"] = max((entity.due_date - entity.issued_at.date()).days, 0)
    elif entity.due_date:
        params["due_date"] = int(datetime.combine(entity.due_date, datetime.min.time(), UTC).timestamp())
    else:
        params["days_until_due"] = 30
    return params


def from_canonical(entity: Entity, refs: RefResolver) -> dict[str, Any]:
    """The Stripe write payload for a canonical entity (only the types the hub writes)."""
    if isinstance(entity, Customer):
        return customer_from_canonical(entity, refs)
    if isinstance(entity, Product):
        return product_from_canonical(entity, refs)
    if isinstance(entity, Price):
        return price_from_canonical(entity, refs)
    if isinstance(entity, Subscription):
        return subscription_from_canonical(entity, refs)
    if isinstance(entity, Invoice):
        return invoice_from_canonical(entity, refs)
    raise StripeMappingError(f"the hub does not write {entity.type} records to Stripe")
