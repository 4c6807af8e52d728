"""The canonical billing model every system maps into.

Entities are frozen dataclasses. Each has a canonical ``id`` (a UUID string), the fields that all
four systems can express, and ``extra`` for one system's leftovers. Money is ``Money`` (integer
minor units); quantities and rates are ``Decimal``; timestamps are timezone-aware UTC.

``to_data`` / ``from_data`` convert to and from plain JSON-able dicts (the stored payload), and
``content_hash`` hashes the canonical JSON without volatile fields, so equal content hashes equal
on every process and platform.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Union

from mapping.encoding import OMITTED_AT_DEFAULT, decimal_str, encode, utc, uuid5_text
from mapping.money import Money, MoneyError, exponent, normalize_currency

__all__ = [
    "Address", "CreditNote", "Customer", "Deal", "DealLine", "Discount", "Entity", "ENTITY_TYPES",
    "Invoice", "InvoiceLine", "Money", "MoneyError", "NoteRefund", "Payment", "Payout", "Price", "Product", "Refund",
    "Subscription", "SubscriptionItem", "TaxId", "TaxLine", "content_hash", "entity_class",
    "decimal_str", "from_data", "new_id", "stable_id", "to_data", "utc", "exponent", "normalize_currency",
]

# Fields that change without the content changing (bookkeeping); never hashed.
VOLATILE_FIELDS = frozenset({"updated_at"})

_STABLE_NAMESPACE = uuid.UUID("5d3e4a80-6b1f-4c59-9f0b-7f4c2b1a9e11")


def new_id() -> str:
    return str(uuid.uuid4())


@functools.lru_cache(maxsize=1 << 16)
def stable_id(system: str, entity_type: str, external_id: str) -> str:
    """Deterministic canonical id for a record first seen in ``system``.

    Re-reading the same record after a crash yields the same canonical id, so a replayed page
    can never create a second canonical entity. Remembered (bounded): a page's records name
    the same customers, products and prices over and over.
    """
    return uuid5_text(_STABLE_NAMESPACE, f"{system}/{entity_type}/{external_id}")


def repoint(value: Any, old_id: str, new_id: str) -> Any:
    """``value`` (an entity, a line, a tuple of them) with every reference to ``old_id`` made to
    ``new_id``: how a hub record holding a placeholder follows the record it named once that is
    linked. Ids are UUIDs, so no other string equals one; an entity's own id is left alone."""
    if isinstance(value, str):
        return new_id if value == old_id else value
    if isinstance(value, tuple):
        return tuple(repoint(v, old_id, new_id) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: repoint(getattr(value, f.name), old_id, new_id)
                   for f in dataclasses.fields(value) if f.name not in ("id", "extra", "updated_at")}
        changed = {k: v for k, v in changes.items() if v != getattr(value, k)}
        return dataclasses.replace(value, **changed) if changed else value
    return value


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class Address:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2


@dataclass(frozen=True, slots=True)
class TaxId:
    type: str  # e.g. "eu_vat", "us_ein", "au_abn"
    value: str


@dataclass(frozen=True, slots=True)
class TaxLine:
    name: str
    rate: Decimal  # percent, e.g. Decimal("20")
    amount: Money
    inclusive: bool = False  # True when the tax is inside the line amounts (GST-style)
    taxable_amount: Money | None = None
    # what a VAT/GST return needs besides the rate (all optional: older payloads decode as None)
    reason: str | None = None  # the source's taxability reason, Stripe's words (``reverse_charge``)
    country: str | None = None  # ISO 3166-1 alpha-2 of the rate's jurisdiction
    state: str | None = None  # ISO 3166-2 subdivision without the country prefix ("NY")


@dataclass(frozen=True, slots=True)
class Discount:
    name: str
    amount: Money


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    quantity: Decimal
    unit_amount: Money
    amount: Money  # quantity x unit_amount, before tax and discounts, as the source computed it
    product_id: str | None = None
    price_id: str | None = None
    tax_rate: Decimal | None = None  # percent
    tax_amount: Money | None = None
    # The line's tax as a return needs it (mapping/tax_codes.py turns these into a ledger code):
    # whether the tax is inside ``amount``, the source's taxability reason (Stripe's words:
    # standard_rated, zero_rated, reverse_charge, ...), the rate's country and US state, and the
    # amount the tax was computed on. Defaults keep payloads stored before them decodable.
    tax_inclusive: bool = False
    tax_reason: str | None = None
    tax_country: str | None = None
    tax_state: str | None = None
    taxable_amount: Money | None = None
    # Every tax of a line that has several (Canada's GST + PST, a US state's and a county's sales
    # tax), in the source's order, each with its rate, amount, jurisdiction, inclusive flag and
    # reason. ``tax_rate`` is then their combined rate (the sum: each of Stripe's rates applies
    # to the line amount) and ``tax_amount`` their sum, never a rate of its own: the ledger code
    # is chosen for the combination (mapping/tax_codes.py). Empty for a line of one tax or none.
    taxes: tuple[TaxLine, ...] = ()
    discount_amount: Money | None = None
    proration: bool = False
    period_start: datetime | None = None
    period_end: datetime | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionItem:
    price_id: str
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class DealLine:
    product_id: str | None
    description: str
    quantity: Decimal
    unit_amount: Money
    recurring_interval: str | None = None  # "month" | "year" | None for one-off


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True, slots=True)
class Entity:
    """Base of all canonical entities."""

    TYPE: ClassVar[str] = ""

    id: str
    updated_at: datetime | None = field(default=None, kw_only=True)
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)

    @property
    def type(self) -> str:
        return self.TYPE


@dataclass(frozen=True, slots=True)
class Customer(Entity):
    TYPE: ClassVar[str] = "customer"
    name: str = ""
    email: str | None = None
    phone: str | None = None
    address: Address | None = None
    shipping_address: Address | None = None
    tax_ids: tuple[TaxId, ...] = ()
    currency: str | None = None
    domain: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Product(Entity):
    TYPE: ClassVar[str] = "product"
    name: str = ""
    description: str | None = None
    sku: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Price(Entity):
    TYPE: ClassVar[str] = "price"
    product_id: str = ""
    unit_amount: Money = Money(0, "USD")
    recurring_interval: str | None = None  # "day" | "week" | "month" | "year"; None = one-time
    interval_count: int = 1
    tax_behavior: str = "unspecified"  # "inclusive" | "exclusive" | "unspecified"
    active: bool = True
    nickname: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription(Entity):
    TYPE: ClassVar[str] = "subscription"
    customer_id: str = ""
    status: str = "active"  # trialing active past_due unpaid canceled incomplete paused
    currency: str = "USD"
    items: tuple[SubscriptionItem, ...] = ()
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at: datetime | None = None
    canceled_at: datetime | None = None
    deal_id: str | None = None


@dataclass(frozen=True, slots=True)
class Invoice(Entity):
    TYPE: ClassVar[str] = "invoice"
    customer_id: str = ""
    number: str | None = None
    status: str = "draft"  # draft open paid void uncollectible
    currency: str = "USD"
    issued_at: datetime | None = None
    due_date: date | None = None
    lines: tuple[InvoiceLine, ...] = ()
    tax_lines: tuple[TaxLine, ...] = ()
    discounts: tuple[Discount, ...] = ()
    subtotal: Money = Money(0, "USD")  # sum of line amounts
    tax: Money = Money(0, "USD")
    total: Money = Money(0, "USD")  # subtotal - discounts + exclusive tax
    amount_paid: Money = Money(0, "USD")
    amount_due: Money = Money(0, "USD")
    tax_inclusive: bool = False
    subscription_id: str | None = None
    deal_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    paid_at: datetime | None = None

    def totals_consistent(self) -> bool:
        """total == lines + exclusive tax - discounts (the check a ledger will make)."""
        lines = sum(line.amount.minor for line in self.lines)
        discounts = sum(d.amount.minor for d in self.discounts)
        tax = 0 if self.tax_inclusive else self.tax.minor
        return lines == self.subtotal.minor and self.subtotal.minor - discounts + tax == self.total.minor


@dataclass(frozen=True, slots=True)
class Payment(Entity):
    TYPE: ClassVar[str] = "payment"
    customer_id: str | None = None
    invoice_id: str | None = None
    amount: Money = Money(0, "USD")
    status: str = "succeeded"  # succeeded pending failed canceled
    paid_at: datetime | None = None
    method: str | None = None  # "card visa 4242" at most: never card data
    fee: Money | None = None
    net: Money | None = None
    exchange_rate: Decimal | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Refund(Entity):
    TYPE: ClassVar[str] = "refund"
    payment_id: str | None = None
    invoice_id: str | None = None
    customer_id: str | None = None
    amount: Money = Money(0, "USD")
    status: str = "succeeded"  # succeeded pending failed canceled
    reason: str | None = None
    refunded_at: datetime | None = None
    # The credit note that claims this refund (hub-owned: set when a Stripe credit note names
    # it), and the lines a ledger books it with: the credit note's, or the invoice's net and tax
    # split (``mapping.postings``, filled when the refund is pushed).
    credit_note_id: str | None = None
    lines: tuple[InvoiceLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Payout(Entity):
    """Money Stripe sent from the account's balance to its bank (settlement currency).

    ``amount`` is what reaches the bank; ``fee_total`` the Stripe fees of the balance
    transactions the payout settles, so ``gross = amount + fee_total`` is what the payments
    brought into the Stripe balance (less refunds). Only a ``paid`` payout is booked.
    """

    TYPE: ClassVar[str] = "payout"
    amount: Money = Money(0, "USD")  # net, paid to the bank
    fee_total: Money = Money(0, "USD")
    gross: Money = Money(0, "USD")
    currency: str = "USD"
    arrival_date: date | None = None
    status: str = "pending"  # pending in_transit paid failed canceled
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoteRefund:
    """One refund a credit note pays out, with what it paid out of the note (None: unknown)."""

    refund_id: str
    amount: Money | None = None


@dataclass(frozen=True, slots=True)
class CreditNote(Entity):
    TYPE: ClassVar[str] = "credit_note"
    invoice_id: str | None = None
    customer_id: str | None = None
    number: str | None = None
    status: str = "issued"  # issued void
    currency: str = "USD"
    lines: tuple[InvoiceLine, ...] = ()
    total: Money = Money(0, "USD")
    refund_id: str | None = None
    refund_amount: Money | None = None  # what the refund named by ``refund_id`` paid out of it
    issued_at: datetime | None = None
    reason: str | None = None
    # Every refund of a note that has several, in the source's order (``refund_id`` is the first,
    # ``refund_amount`` their sum); empty when ``refund_id`` says it all.
    refunds: tuple[NoteRefund, ...] = ()


@dataclass(frozen=True, slots=True)
class Deal(Entity):
    """A won (or open) CRM opportunity: what the billing side must be created from."""

    TYPE: ClassVar[str] = "deal"
    customer_id: str = ""
    name: str = ""
    stage: str = ""
    won: bool = False
    currency: str = "USD"
    amount: Money = Money(0, "USD")
    lines: tuple[DealLine, ...] = ()
    closed_at: date | None = None


ENTITY_CLASSES: dict[str, type[Entity]] = {
    cls.TYPE: cls
    for cls in (Customer, Product, Price, Subscription, Invoice, Payment, Refund, CreditNote, Deal, Payout)
}
ENTITY_TYPES: tuple[str, ...] = tuple(ENTITY_CLASSES)


def entity_class(entity_type: str) -> type[Entity]:
    try:
        return ENTITY_CLASSES[entity_type]
    except KeyError:
        raise ValueError(
            f"unknown entity {entity_type!r}; expected one of {', '.join(ENTITY_TYPES)}"
        ) from None


# --------------------------------------------------------------------------- serialisation


# Fields added after payloads were stored, left out of the JSON while at their default: a record
# that has none of them hashes as it did before they existed (no mass re-push on upgrade), and a
# stored payload without them decodes to the default.
OMITTED_AT_DEFAULT.update({
    InvoiceLine: {"tax_inclusive": False, "tax_reason": None, "tax_country": None, "tax_state": None,
                  "taxable_amount": None, "taxes": ()},
    TaxLine: {"reason": None, "country": None, "state": None},
    CreditNote: {"refunds": ()},
})


def to_data(entity: Entity) -> dict[str, Any]:
    """Plain JSON-able dict of an entity (what the store keeps as payload)."""
    data: dict[str, Any] = encode(entity)
    return data


_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS_CACHE:
        _HINTS_CACHE[cls] = typing.get_type_hints(cls)
    return _HINTS_CACHE[cls]


_DECODERS: dict[Any, Callable[[Any], Any]] = {}


def _decoder(tp: Any) -> Callable[[Any], Any]:
    """The decoder of values of type ``tp`` (None stays None), worked out once per type, not
    per value: a re-sync decodes each changed record's stored payload to merge it, and asking
    ``typing`` about every field of every line cost more than building the objects."""
    found = _DECODERS.get(tp)
    if found is None:
        convert = _converter(tp)
        if convert is None:
            found = _as_is
        else:
            def found(value: Any) -> Any:
                return None if value is None else convert(value)
        _DECODERS[tp] = found
    return found


def _as_is(value: Any) -> Any:
    return value


def _converter(tp: Any) -> Callable[[Any], Any] | None:
    """How a value (not None) of type ``tp`` is rebuilt from ``to_data`` output; None: as it is."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decoder(args[0]) if len(args) == 1 else None
    if origin is tuple or origin is list:
        item = _decoder(typing.get_args(tp)[0])
        if origin is tuple:
            return lambda value: tuple([item(v) for v in value])
        return lambda value: [item(v) for v in value]
    if origin is dict or tp is Any:
        return None
    if tp is Money:
        return lambda value: Money(int(value["minor"]), value["currency"])
    if tp is Decimal:
        return lambda value: Decimal(str(value))
    if tp is datetime:
        return lambda value: utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    if tp is date:
        return date.fromisoformat
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(tp)}
        cls = tp
        return lambda value: cls(**{k: fields[k](v) for k, v in value.items() if k in fields})
    return None


def from_data(entity_type: str, data: dict[str, Any]) -> Entity:
    """Rebuild an entity from ``to_data`` output (unknown keys are ignored)."""
    entity: Entity = _decoder(entity_class(entity_type))(data)
    return entity


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def hashable_data(entity: Entity) -> dict[str, Any]:
    data = to_data(entity)
    for name in VOLATILE_FIELDS:
        data.pop(name, None)
    return data


def content_hash(entity: Entity) -> str:
    """SHA-256 of the canonical JSON without volatile fields; stable across processes."""
    return hashlib.sha256(canonical_json(hashable_data(entity)).encode("ascii")).hexdigest()


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[Any]]:
    """Top-level fields whose value differs: {field: [old, new]} (volatile fields ignored)."""
    if not old:  # a new record (history's "added"): every field set
        return {key: [None, new[key]] for key in sorted(new)
                if key not in VOLATILE_FIELDS and new[key] is not None}
    return {
        key: [old.get(key), new.get(key)]
        for key in sorted(set(old) | set(new))
        if key not in VOLATILE_FIELDS and old.get(key) != new.get(key)
    }
