"""Money as integer minor units plus an ISO 4217 currency.

No float ever holds an amount. Conversions to and from decimal strings are exact: a value that
cannot be represented in the currency's minor unit is refused unless the caller names a rounding
mode (some ledgers demand one, e.g. QuickBooks rounds line amounts half-up to cents).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents (the published list, current codes). Most currencies use 2.
_EXPONENT_0 = (
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
).split()
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND".split()
_EXPONENT_4 = "CLF UYW".split()
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP "
    "GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK "
    "LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK "
    "NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG "
    "YER ZAR ZMW ZWG ZWL"
).split()

EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _EXPONENT_2},
    **{code: 0 for code in _EXPONENT_0},
    **{code: 3 for code in _EXPONENT_3},
    **{code: 4 for code in _EXPONENT_4},
}


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


class CurrencyMismatch(MoneyError):
    """Arithmetic across two currencies."""


def normalize_currency(code: str) -> str:
    """Upper-case ISO code; raises MoneyError for a code not in ISO 4217."""
    if code in EXPONENTS:  # already normal: the common case, on every Money ever made
        return code
    upper = code.strip().upper()
    if upper not in EXPONENTS:
        raise MoneyError(f"unknown currency {code!r}: use an ISO 4217 code such as USD, EUR, JPY")
    return upper


def exponent(currency: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (JPY 0, EUR 2, KWD 3)."""
    return EXPONENTS[normalize_currency(currency)]


def _to_decimal(value: Decimal | str | int) -> Decimal:
    if isinstance(value, float):
        raise MoneyError("floats are not accepted for money; pass a Decimal or a decimal string")
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not a decimal amount: {value!r}") from exc
    if not dec.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return dec


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount in the currency's minor unit (cents, yen, fils)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise MoneyError(f"Money.minor must be an int, got {type(self.minor).__name__}")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(
        cls, value: Decimal | str | int, currency: str, rounding: str | None = None
    ) -> Money:
        """Exact conversion from a major-unit decimal ("19.99" EUR -> 1999).

        Refuses to drop digits unless ``rounding`` (a ``decimal`` rounding mode such as
        ``ROUND_HALF_UP``) is given explicitly.
        """
        dec = _to_decimal(value)
        exp = exponent(currency)
        scaled = dec.scaleb(exp)
        integral = scaled.to_integral_value(rounding=rounding or ROUND_HALF_UP)
        if rounding is None and integral != scaled:
            raise MoneyError(
                f"{value} {currency} has more than {exp} decimal places; "
                "pass an explicit rounding mode if the system rounds"
            )
        return cls(int(integral), currency)

    def to_decimal(self) -> Decimal:
        """Major-unit Decimal with exactly the currency's number of places."""
        exp = EXPONENTS[self.currency]
        return Decimal(self.minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))

    def to_decimal_str(self) -> str:
        return format(self.to_decimal(), "f")

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    def times(self, quantity: Decimal | int, rounding: str | None = None) -> Money:
        """Multiply by a quantity; exact unless a rounding mode is named."""
        product = Decimal(self.minor) * _to_decimal(quantity)
        integral = product.to_integral_value(rounding=rounding or ROUND_HALF_UP)
        if rounding is None and integral != product:
            raise MoneyError(f"{self} x {quantity} is not a whole number of minor units")
        return Money(int(integral), self.currency)

    def __str__(self) -> str:
        return f"{self.to_decimal_str()} {self.currency}"

    def for_people(self) -> str:
        """How a person reads the amount: thousands grouped, the currency's own number of
        decimals, the code after it — ``1,234.50 USD``, ``-1,000 JPY``, ``0.125 KWD``. The one
        formatter for consoles, reports, CSV and the terminal (machine JSON keeps minor units)."""
        return f"{self.to_decimal():,f} {self.currency}"


def format_money(minor: int, currency: str) -> str:
    """``Money(minor, currency).for_people()`` for callers holding the two parts (JSON rows)."""
    return Money(minor, normalize_currency(currency)).for_people()


def sum_money(amounts: list[Money], currency: str) -> Money:
    """Sum that is well-defined for an empty list."""
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total
