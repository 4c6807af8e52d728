"""Money arithmetic of the Stripe emulator: minor-unit exponents, half-up rounding to whole
minor units, and the fixed rates the emulated account settles at.

Emulator choice (not a Stripe fact): the account settles in USD at the fixed ``FX_TO_USD`` rates.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
FX_TO_USD = {"usd": Decimal("1"), "eur": Decimal("1.08"), "gbp": Decimal("1.27"),
             "jpy": Decimal("0.0067"), "cad": Decimal("0.73"), "aud": Decimal("0.66"),
             "chf": Decimal("1.12"), "sek": Decimal("0.095"), "krw": Decimal("0.00075")}


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (Stripe's zero- and three-decimal lists)."""
    cur = currency.lower()
    return 0 if cur in ZERO_DECIMAL else 3 if cur in THREE_DECIMAL else 2


def round_half_up(value: Decimal) -> int:
    """A computed amount in whole minor units, rounded half up as Stripe rounds tax and proration."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))
