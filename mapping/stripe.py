"""Stripe objects <-> canonical entities. Pure functions, exact to the minor unit.

Amounts, ids, timestamps, currencies and tax entries are read with ``mapping.stripe_wire``
(``stripe_money`` refuses any amount that does not fit the ISO minor unit rather than round it).
References to other records go through the ``RefResolver``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mapping.line_taxes import combined_facts, combined_rate, stripe_line_taxes
from mapping.model import (
    CreditNote,
    Customer,
    Discount,
    Entity,
    Invoice,
    InvoiceLine,
    NoteRefund,
    Payment,
    Payout,
    Price,
    Product,
    Refund,
    Subscription,
    SubscriptionItem,
    TaxId,
    TaxLine,
)
from mapping.money import Money
from mapping.refs import RefResolver
from mapping.stripe_params import from_canonical
from mapping.stripe_wire import (
    Data,
    StripeMappingError,
    address_of,
    as_object,
    canonical_ref,
    currency_of,
    decimal_of,
    id_of,
    own_metadata,
    rate_from_amounts,
    stripe_money,
    tax_facts,
    tax_rate_info,
    timestamp,
    to_stripe_amount,
)

# --------------------------------------------------------------------------- to canonical


def _tax_ids(value: Any) -> tuple[TaxId, ...]:
    """A customer's tax ids (``expand[]=tax_ids``: a list envelope of ``tax_id`` objects)."""
    rows = value.get("data") if isinstance(value, Mapping) else value
    if not isinstance(rows, list):
        return ()
    return tuple(TaxId(str(row.get("type") or "unknown"), str(row["value"]))
                 for row in rows if isinstance(row, Mapping) and row.get("value"))


def customer_to_canonical(data: Data, refs: RefResolver) -> Customer:
    shipping = data.get("shipping")
    return Customer(
        id=refs.canonical_id("customer", str(data["id"])),
        name=str(data.get("name") or ""), email=data.get("email"), phone=data.get("phone"),
        address=address_of(data.get("address")),
        shipping_address=address_of(shipping.get("address")) if isinstance(shipping, Mapping) else None,
        currency=str(data["currency"]).upper() if data.get("currency") else None,
        tax_ids=_tax_ids(data.get("tax_ids")),
        active=not data.get("deleted", False), updated_at=timestamp(data.get("created")),
        extra={"metadata": own_metadata(data)} if own_metadata(data) else {},
    )


def product_to_canonical(data: Data, refs: RefResolver) -> Product:
    return Product(id=refs.canonical_id("product", str(data["id"])), name=str(data.get("name") or ""),
                   description=data.get("description"), active=bool(data.get("active", True)),
                   updated_at=timestamp(data.get("updated") or data.get("created")))


def _unit_money(decimal_text: Any, amount: Any, currency: str) -> Money:
    if isinstance(amount, int):
        return stripe_money(amount, currency)
    if decimal_text is None:
        return Money.zero(currency)
    minor = Decimal(str(decimal_text))
    if minor != minor.to_integral_value():
        # Sub-minor-unit prices (unit_amount_decimal "0.5"): Stripe rounds half up when billing.
        minor = minor.to_integral_value(rounding=ROUND_HALF_UP)
    return stripe_money(int(minor), currency)


def price_to_canonical(data: Data, refs: RefResolver) -> Price:
    currency = currency_of(data)
    recurring = data.get("recurring") if isinstance(data.get("recurring"), Mapping) else None
    extra: dict[str, Any] = {}
    if data.get("unit_amount") is None and data.get("unit_amount_decimal") is not None:
        extra["unit_amount_decimal"] = str(data["unit_amount_decimal"])
    return Price(
        id=refs.canonical_id("price", str(data["id"])),
        product_id=canonical_ref(refs, "product", data.get("product")) or "",
        unit_amount=_unit_money(data.get("unit_amount_decimal"), data.get("unit_amount"), currency),
        recurring_interval=str(recurring["interval"]) if recurring else None,
        interval_count=int(recurring.get("interval_count") or 1) if recurring else 1,
        tax_behavior=str(data.get("tax_behavior") or "unspecified"),
        active=bool(data.get("active", True)), nickname=data.get("nickname"),
        updated_at=timestamp(data.get("created")), extra=extra,
    )


def _item_price(item: Data, subscription: Data, refs: RefResolver) -> str:
    """A subscription item's price. An item with only a ``plan`` (the shape before prices) is
    refused (the subscription held with a finding), never stored linked to no price."""
    price = canonical_ref(refs, "price", item.get("price"))
    if not price:
        raise StripeMappingError(
            f"subscription {subscription.get('id')} item {item.get('id')} has no price (plan "
            f"{id_of(item.get('plan')) or 'none'} only): its price cannot be linked")
    return price


def subscription_to_canonical(data: Data, refs: RefResolver) -> Subscription:
    items_data = (data.get("items") or {}).get("data") or []
    items = tuple(SubscriptionItem(price_id=_item_price(i, data, refs), quantity=int(i.get("quantity") or 1))
                  for i in items_data)
    first = items_data[0] if items_data else {}
    start = first.get("current_period_start", data.get("current_period_start"))
    end = first.get("current_period_end", data.get("current_period_end"))
    meta = own_metadata(data)
    return Subscription(
        id=refs.canonical_id("subscription", str(data["id"])),
        customer_id=canonical_ref(refs, "customer", data.get("customer")) or "",
        status=str(data.get("status") or "active"), currency=currency_of(data), items=items,
        current_period_start=timestamp(start), current_period_end=timestamp(end),
        cancel_at=timestamp(data.get("cancel_at")), canceled_at=timestamp(data.get("canceled_at")),
        deal_id=meta.get("deal_id"), updated_at=timestamp(data.get("created")),
    )


def _line_to_canonical(line: Data, currency: str, refs: RefResolver) -> InvoiceLine:
    amount = stripe_money(line.get("amount"), currency)
    quantity = Decimal(str(line.get("quantity_decimal") or line.get("quantity") or 1))
    pricing = as_object(line.get("pricing"))
    details = as_object(pricing.get("price_details"))
    if quantity and Decimal(amount.minor) % quantity == 0:
        unit = Money(int(Decimal(amount.minor) / quantity), amount.currency)
    else:
        unit = _unit_money(pricing.get("unit_amount_decimal"), None, currency)
    parent = as_object(line.get("parent"))
    proration = any(bool((parent.get(k) or {}).get("proration"))
                    for k in ("subscription_item_details", "invoice_item_details"))
    taxes = line.get("taxes") or []
    tax_total = sum(int(t.get("amount") or 0) for t in taxes)
    rate = None
    reason = country = state = None
    if taxes:
        _rid, _name, pct = tax_rate_info(taxes[0])
        rate = pct if pct is not None else rate_from_amounts(taxes[0])
        reason, country, state = tax_facts(taxes[0])
    several = stripe_line_taxes(taxes, currency, rate_from_amounts)  # every tax, never only the first
    if several:
        rate, (reason, country, state) = combined_rate(several), combined_facts(several)
    taxable = taxes[0].get("taxable_amount") if taxes else None
    discount_total = sum(int(d.get("amount") or 0) for d in line.get("discount_amounts") or [])
    period = as_object(line.get("period"))
    return InvoiceLine(
        description=str(line.get("description") or ""), quantity=quantity, unit_amount=unit,
        amount=amount, product_id=canonical_ref(refs, "product", details.get("product")),
        price_id=canonical_ref(refs, "price", details.get("price")), tax_rate=rate,
        tax_amount=stripe_money(tax_total, currency) if taxes else None,
        tax_inclusive=bool(taxes) and taxes[0].get("tax_behavior") == "inclusive",
        tax_reason=reason, tax_country=country, tax_state=state,
        taxable_amount=stripe_money(taxable, currency) if isinstance(taxable, int) else None, taxes=several,
        discount_amount=stripe_money(discount_total, currency) if discount_total else None,
        proration=proration, period_start=timestamp(period.get("start")), period_end=timestamp(period.get("end")),
        external_id=id_of(line.get("id")),
    )


def _tax_lines(taxes: Sequence[Data], currency: str) -> tuple[TaxLine, ...]:
    grouped: dict[tuple[str, str, str | None], list[Data]] = {}
    for tax in taxes:
        rid, _name, _pct = tax_rate_info(tax)
        grouped.setdefault((rid, str(tax.get("tax_behavior")), tax_facts(tax)[0]), []).append(tax)
    lines = []
    for (_rid, behavior, reason), group in grouped.items():
        _id_, name, pct = tax_rate_info(group[0])
        _reason, country, state = tax_facts(group[0])
        amount = sum(int(t.get("amount") or 0) for t in group)
        taxable = sum(int(t.get("taxable_amount") or 0) for t in group)
        lines.append(TaxLine(name=name, rate=pct if pct is not None else rate_from_amounts(group[0]),
                             amount=stripe_money(amount, currency), inclusive=behavior == "inclusive",
                             taxable_amount=stripe_money(taxable, currency), reason=reason,
                             country=country, state=state))
    return tuple(lines)


def _item_discounts(data: Data, lines: Sequence[Data]) -> int:
    """Minor units of the discounts applied to single lines (an invoice item's or a
    subscription item's own coupon), as opposed to the invoice's: those in ``invoice.discounts``."""
    invoice_level = {id_of(d) for d in data.get("discounts") or []}
    return sum(int(d.get("amount") or 0) for line in lines for d in line.get("discount_amounts") or []
               if id_of(d.get("discount")) not in invoice_level)


def invoice_to_canonical(data: Data, refs: RefResolver) -> Invoice:
    currency = currency_of(data)
    lines_data = (data.get("lines") or {}).get("data") or []
    taxes = data.get("total_taxes") or []
    tax_total = sum(int(t.get("amount") or 0) for t in taxes)
    inclusive = bool(taxes) and all(t.get("tax_behavior") == "inclusive" for t in taxes)
    transitions = data.get("status_transitions") or {}
    parent = as_object(data.get("parent"))
    sub_details = as_object(parent.get("subscription_details"))
    due = timestamp(data.get("due_date"))
    meta = own_metadata(data)
    return Invoice(
        id=refs.canonical_id("invoice", str(data["id"])),
        customer_id=canonical_ref(refs, "customer", data.get("customer")) or "",
        number=data.get("number"), status=str(data.get("status") or "draft"), currency=currency,
        issued_at=timestamp(transitions.get("finalized_at")), due_date=due.date() if due else None,
        lines=tuple(_line_to_canonical(line, currency, refs) for line in lines_data),
        tax_lines=_tax_lines(taxes, currency),
        discounts=tuple(Discount(name=id_of(d.get("discount")) or "discount",
                                 amount=stripe_money(d.get("amount"), currency))
                        for d in data.get("total_discount_amounts") or []),
        # Stripe's subtotal already has item-level discounts taken off; the canonical one is
        # before every discount (total = subtotal - discounts + exclusive tax)
        subtotal=stripe_money(int(data.get("subtotal") or 0) + _item_discounts(data, lines_data), currency),
        tax=stripe_money(tax_total, currency), total=stripe_money(data.get("total"), currency),
        amount_paid=stripe_money(data.get("amount_paid"), currency),
        # the canonical amount_due is what is still owed (every ledger's balance): Stripe's
        # amount_remaining; its own amount_due stays the billed amount once the invoice is paid
        amount_due=stripe_money(data.get("amount_remaining", data.get("amount_due")), currency),
        tax_inclusive=inclusive,
        subscription_id=canonical_ref(refs, "subscription", sub_details.get("subscription")),
        # a subscription's invoice names the deal through the subscription: Stripe keeps a
        # snapshot of the subscription's metadata (where the hub put ``deal_id``) on the invoice
        deal_id=meta.get("deal_id") or own_metadata(sub_details).get("deal_id"),
        period_start=timestamp(data.get("period_start")),
        period_end=timestamp(data.get("period_end")), paid_at=timestamp(transitions.get("paid_at")),
        updated_at=timestamp(data.get("created")),
    )


_PI_STATUS = {"succeeded": "succeeded", "processing": "pending", "canceled": "canceled",
              "requires_payment_method": "failed", "requires_confirmation": "pending",
              "requires_action": "pending", "requires_capture": "pending"}


def _method(charge: Data) -> str | None:
    """"card visa 4242" at most: never more card data than brand and last four digits."""
    details = charge.get("payment_method_details")
    if not isinstance(details, Mapping):
        return None
    kind = str(details.get("type") or "")
    card = as_object(details.get(kind))
    parts = [kind, str(card.get("brand") or ""), str(card.get("last4") or "")]
    return " ".join(p for p in parts if p) or None


INVOICE_KEY = "billhub_invoice"  # what the connector adds: the invoice an Invoice Payment links


def _invoice_of_payment(pi: Data) -> str | None:
    """The invoice of a payment intent (or of a refund): from the Invoice Payments (``INVOICE_KEY``),
    or as API versions before 2025-03-31 named it (``invoice``). ``payment_details.order_reference``
    is the business's own text, never taken for a link."""
    linked = pi.get(INVOICE_KEY)
    return linked if isinstance(linked, str) and linked else id_of(pi.get("invoice"))


def payment_to_canonical(data: Data, refs: RefResolver) -> Payment:
    currency = currency_of(data)
    charge = as_object(data.get("latest_charge"))
    txn = as_object(charge.get("balance_transaction"))
    fee = net = rate = None
    if txn:
        settle = str(txn.get("currency") or currency).upper()
        fee, net = stripe_money(txn.get("fee"), settle), stripe_money(txn.get("net"), settle)
        rate = decimal_of(txn["exchange_rate"]) if txn.get("exchange_rate") is not None else None
    invoice = _invoice_of_payment(data)
    received = data.get("amount_received")
    return Payment(
        id=refs.canonical_id("payment", str(data["id"])),
        customer_id=canonical_ref(refs, "customer", data.get("customer")),
        invoice_id=refs.canonical_id("invoice", invoice) if invoice else None,
        amount=stripe_money(received if received else data.get("amount"), currency),
        status=_PI_STATUS.get(str(data.get("status")), "pending"),
        paid_at=timestamp(charge.get("created")) if charge else None,
        method=_method(charge) if charge else None, fee=fee, net=net, exchange_rate=rate,
        reference=id_of(charge.get("id")) if charge else None, updated_at=timestamp(data.get("created")),
    )


def refund_to_canonical(data: Data, refs: RefResolver) -> Refund:
    pi = data.get("payment_intent")
    invoice = _invoice_of_payment(data) or (_invoice_of_payment(pi) if isinstance(pi, Mapping) else None)
    customer = pi.get("customer") if isinstance(pi, Mapping) else data.get("customer")
    status = str(data.get("status") or "succeeded")
    return Refund(
        id=refs.canonical_id("refund", str(data["id"])),
        payment_id=canonical_ref(refs, "payment", pi), invoice_id=refs.canonical_id("invoice", invoice) if invoice else None,
        customer_id=canonical_ref(refs, "customer", customer),
        amount=stripe_money(data.get("amount"), currency_of(data)),
        status=status if status in ("succeeded", "pending", "failed", "canceled") else "pending",
        reason=data.get("reason"), refunded_at=timestamp(data.get("created")), updated_at=timestamp(data.get("created")),
    )


def _credited_rate(tax: Data) -> Decimal:
    """The rate of a credited line's tax when the rate object is not expanded: a credit of part of
    a line has its tax rounded (1667 on 8333 is 20%, not 20.0048%), so the rate is the one with
    the fewest places that gives the tax back."""
    taxable, amount = int(tax.get("taxable_amount") or 0), int(tax.get("amount") or 0)
    for places in range(5):
        rate = rate_from_amounts(tax).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
        if (Decimal(taxable) * rate / 100).to_integral_value(ROUND_HALF_UP) == amount:
            return rate.normalize()
    return rate_from_amounts(tax)


def credit_note_to_canonical(data: Data, refs: RefResolver) -> CreditNote:
    currency = currency_of(data)
    lines = []
    for line in (data.get("lines") or {}).get("data") or []:
        amount = stripe_money(line.get("amount"), currency)
        quantity = Decimal(str(line.get("quantity") or 1))
        unit_raw = line.get("unit_amount")
        unit = stripe_money(unit_raw, currency) if isinstance(unit_raw, int) else \
            Money(int(Decimal(amount.minor) / quantity), amount.currency) \
            if Decimal(amount.minor) % quantity == 0 else amount
        taxes = line.get("taxes") or []
        rate = None
        if taxes:  # the rate goes with the line, as on an invoice: a ledger's tax code needs it
            _rid, _name, pct = tax_rate_info(taxes[0])
            rate = pct if pct is not None else _credited_rate(taxes[0])
        components = stripe_line_taxes(taxes, currency, _credited_rate)
        if components:
            rate = combined_rate(components)
        lines.append(InvoiceLine(
            description=str(line.get("description") or ""), quantity=quantity, unit_amount=unit,
            amount=amount, tax_rate=rate,
            tax_amount=stripe_money(sum(int(t.get("amount") or 0) for t in taxes), currency) if taxes else None,
            tax_inclusive=bool(taxes) and taxes[0].get("tax_behavior") == "inclusive", taxes=components,
            external_id=id_of(line.get("id"))))
    refunds = [r for r in data.get("refunds") or [] if isinstance(r, Mapping) and id_of(r.get("refund"))]
    refunded = [a for r in refunds if isinstance(a := r.get("amount_refunded"), int)]
    # every refund when there are several: each is claimed and booked with its share of the note
    several = tuple(NoteRefund(refs.canonical_id("refund", str(id_of(r.get("refund")))),
                               stripe_money(a, currency) if isinstance(a := r.get("amount_refunded"), int) else None)
                    for r in refunds) if len(refunds) > 1 else ()
    return CreditNote(
        id=refs.canonical_id("credit_note", str(data["id"])),
        invoice_id=canonical_ref(refs, "invoice", data.get("invoice")),
        customer_id=canonical_ref(refs, "customer", data.get("customer")), number=data.get("number"),
        status="void" if data.get("status") == "void" else "issued", currency=currency,
        lines=tuple(lines), total=stripe_money(data.get("total"), currency),
        refund_id=canonical_ref(refs, "refund", refunds[0].get("refund")) if refunds else None,
        # what the refund paid out of the note (unknown amounts: the whole note, as older APIs meant)
        refund_amount=stripe_money(sum(refunded), currency) if refunds and len(refunded) == len(refunds) else None,
        issued_at=timestamp(data.get("effective_at") or data.get("created")), reason=data.get("reason"),
        refunds=several, updated_at=timestamp(data.get("created")),
    )


PAYOUT_STATUSES = frozenset({"pending", "in_transit", "paid", "failed", "canceled"})
SETTLED_KEY = "billhub_settled"  # what the connector adds: the payout's balance transactions summed


def payout_to_canonical(data: Data, refs: RefResolver) -> Payout:
    """A Stripe payout with the fees of what it settles (``SETTLED_KEY``: the connector lists
    ``balance_transactions?payout=``). Stripe names those transactions for automatic payouts
    only: a manual payout's fees cannot be attributed, and guessing them would misstate both
    the fee expense and the clearing account, so it is refused (held with a finding)."""
    currency = currency_of(data)
    settled = as_object(data.get(SETTLED_KEY))
    status = str(data.get("status") or "pending")
    if not data.get("automatic") or not settled:
        raise StripeMappingError(
            f"payout {data.get('id')} is a manual payout: Stripe does not say which transactions it "
            "settles, so its fees cannot be booked; book it by hand in the ledgers")
    amount = stripe_money(data.get("amount"), currency)
    fee = stripe_money(settled.get("fee"), currency)
    arrival = timestamp(data.get("arrival_date"))
    return Payout(
        id=refs.canonical_id("payout", str(data["id"])), amount=amount, fee_total=fee,
        gross=Money(amount.minor + fee.minor, currency), currency=currency,
        arrival_date=arrival.date() if arrival else None,
        status=status if status in PAYOUT_STATUSES else "pending",
        created_at=timestamp(data.get("created")), updated_at=timestamp(data.get("created")),
        extra={"settled_count": int(settled.get("count") or 0)},
    )


_TO_CANONICAL = {
    "customer": customer_to_canonical, "product": product_to_canonical, "price": price_to_canonical,
    "subscription": subscription_to_canonical, "invoice": invoice_to_canonical,
    "payment": payment_to_canonical, "refund": refund_to_canonical,
    "credit_note": credit_note_to_canonical, "payout": payout_to_canonical,
}


def to_canonical(entity_type: str, data: Data, refs: RefResolver) -> Entity:
    """Dispatch on the canonical entity type of a Stripe record."""
    try:
        mapper = _TO_CANONICAL[entity_type]
    except KeyError:
        raise StripeMappingError(f"Stripe has no mapping for entity type {entity_type!r}") from None
    entity: Entity = mapper(data, refs)
    return entity


def due_date_of(data: Data) -> date | None:
    due = timestamp(data.get("due_date"))
    return due.date() if due else None


__all__ = ["INVOICE_KEY", "SETTLED_KEY", "StripeMappingError", "due_date_of", "from_canonical", "stripe_money", "to_canonical",
           "to_stripe_amount"]
