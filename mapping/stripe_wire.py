"""Reading Stripe's wire shapes, shared by the Stripe mapping's object readers: amounts in
Stripe's minor unit (which is ISO 4217's except for a few currencies: Stripe treats MGA and UGX as
zero-decimal; ISK, HUF and TWD amounts carry two decimals that must be zero), ids of references
that may be expanded, timestamps, currencies, addresses, metadata and tax entries. Floats from
JSON (tax percentages, exchange rates) are read through their shortest repr, never used in
arithmetic."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from mapping.model import Address
from mapping.money import Money, MoneyError, exponent, normalize_currency
from mapping.refs import RefResolver

Data = Mapping[str, Any]

# Stripe's zero-decimal list (docs.stripe.com/currencies), and ISO-zero currencies Stripe
# represents with two (zero) decimals.
STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


class StripeMappingError(ValueError):
    """A Stripe object that cannot be mapped exactly (the message says which field and why)."""


def stripe_exponent(currency: str) -> int:
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


@cache
def _iso_unit(currency: str) -> bool:
    """Whether Stripe's unit for ``currency`` (as given) is its ISO minor unit (no conversion):
    remembered, every amount of an invoice asks, a few dozen times per invoice. Raises
    ``MoneyError`` for an unknown currency (not remembered)."""
    return stripe_exponent(currency) == exponent(currency)


def stripe_money(amount: int | None, currency: str) -> Money:
    """Stripe integer amount -> Money, exactly (raises if it does not fit the ISO minor unit)."""
    if amount is None:
        amount = 0
    if type(amount) is not int and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise StripeMappingError(f"Stripe amount must be an integer, got {amount!r}")
    try:
        if _iso_unit(currency):
            return Money(amount, currency)
        return Money.from_decimal(Decimal(amount).scaleb(-stripe_exponent(currency)), currency)
    except MoneyError as exc:
        raise StripeMappingError(str(exc)) from None


def to_stripe_amount(money: Money) -> int:
    """Money -> Stripe integer amount in Stripe's minor unit for the currency."""
    scaled = money.to_decimal().scaleb(stripe_exponent(money.currency))
    if scaled != scaled.to_integral_value():
        raise StripeMappingError(f"{money} cannot be expressed in Stripe's unit for {money.currency}")
    return int(scaled)


def decimal_of(value: Any) -> Decimal:
    """A JSON number or decimal string as Decimal (floats through their shortest repr)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def as_object(value: Any) -> Mapping[str, Any]:
    """A nested object, or an empty one when absent, null or not expanded."""
    return value if isinstance(value, Mapping) else {}


def timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) and value else None


def id_of(value: Any) -> str | None:
    """The id of a reference that may be a string or an expanded object."""
    if isinstance(value, Mapping):
        ref = value.get("id")
        return str(ref) if ref else None
    return str(value) if value else None


def canonical_ref(refs: RefResolver, entity_type: str, value: Any) -> str | None:
    ext = id_of(value)
    return refs.canonical_id(entity_type, ext) if ext else None


def currency_of(data: Data) -> str:
    """The object's currency. Stripe puts one on every object that carries money, so a missing
    one is a record the hub cannot read, never a guess of USD."""
    currency = data.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise StripeMappingError(f"{data.get('object') or 'object'} {data.get('id')} has no currency "
                                 f"({currency!r}): its amounts cannot be read")
    return normalize_currency(currency)  # an unknown code is refused here too


def address_of(value: Any) -> Address | None:
    if not isinstance(value, Mapping) or not any(value.values()):
        return None
    return Address(line1=value.get("line1"), line2=value.get("line2"), city=value.get("city"),
                   region=value.get("state"), postal_code=value.get("postal_code"),
                   country=value.get("country"))


def own_metadata(data: Data) -> dict[str, str]:
    """The customer's own metadata. The hub's marker is bookkeeping, not content: keeping it
    would make the echo of every hub write look like a change."""
    meta = data.get("metadata")
    if not isinstance(meta, Mapping):
        return {}
    return {str(k): str(v) for k, v in meta.items() if k != "hub_id"}


def tax_rate_info(tax: Data) -> tuple[str, str, Decimal | None]:
    """(id, display name, percentage) of a tax entry whose rate may or may not be expanded."""
    rate = (tax.get("tax_rate_details") or {}).get("tax_rate")
    if isinstance(rate, Mapping):
        return str(rate.get("id")), str(rate.get("display_name") or rate.get("id")), \
            decimal_of(rate.get("percentage"))
    return str(rate), str(rate), None


def tax_facts(tax: Data) -> tuple[str | None, str | None, str | None]:
    """(reason, country, state) of a tax entry. The reason is Stripe's ``taxability_reason``;
    for a manual tax rate Stripe reports ``not_available``, and the rate's own
    ``metadata[taxability_reason]`` (how a merchant marks a zero-rated, exempt or reverse-charge
    rate) is read instead; otherwise None."""
    rate = as_object((tax.get("tax_rate_details") or {}).get("tax_rate"))
    reason = tax.get("taxability_reason")
    if not isinstance(reason, str) or reason in ("", "not_available"):
        marked = as_object(rate.get("metadata")).get("taxability_reason")
        reason = str(marked) if marked else None
    country = rate.get("country")
    state = rate.get("state")
    return reason, str(country).upper() if country else None, str(state).upper() if state else None


def rate_from_amounts(tax: Data) -> Decimal:
    """Fallback when the rate object is not expanded: the effective rate, to 4 places."""
    taxable = tax.get("taxable_amount") or 0
    if not taxable:
        return Decimal(0)
    return (Decimal(int(tax.get("amount") or 0)) * 100 / Decimal(int(taxable))).quantize(Decimal("0.0001"))


__all__ = ["STRIPE_THREE_DECIMAL", "STRIPE_ZERO_DECIMAL", "Data", "StripeMappingError", "address_of", "as_object",
           "canonical_ref", "currency_of", "decimal_of", "id_of", "own_metadata", "rate_from_amounts",
           "stripe_exponent", "stripe_money", "tax_facts", "tax_rate_info", "timestamp", "to_stripe_amount"]
