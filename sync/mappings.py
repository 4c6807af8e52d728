"""``hub mappings``: what a ledger holds (accounts, tax codes and rates, items) and a suggested
config section for the user to confirm.

Every suggestion is picked by the account's type and name and carries a comment saying why; where
nothing fits, or several do equally, the line is left commented out with the candidates, never
guessed. The suggestion is text to review and paste, not something billhub reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Account:
    key: str  # QuickBooks: the Id; Xero: the Code
    name: str
    type: str


@dataclass(frozen=True)
class TaxCode:
    code: str  # QuickBooks: the TaxCode's Name; Xero: the TaxType
    name: str
    rate: Decimal | None  # the sales rate in percent (a group: the sum of its rates)
    parts: tuple[Decimal, ...] = ()  # a tax group's rates, in order


@dataclass
class Ledger:
    connection: str
    system: str
    accounts: list[Account] = field(default_factory=list)
    tax_codes: list[TaxCode] = field(default_factory=list)
    items: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, type)


def _rows(answer: dict[str, Any], entity: str) -> list[dict[str, Any]]:
    return [r for r in (answer.get("QueryResponse") or {}).get(entity) or [] if isinstance(r, dict)]


def read_quickbooks(connector: Any) -> Ledger:
    query: Callable[[str], dict[str, Any]] = connector.reader.query
    ledger = Ledger(connector.name, "quickbooks")
    ledger.accounts = [Account(str(a["Id"]), str(a.get("Name", "")), str(a.get("AccountType", "")))
                       for a in _rows(query("SELECT * FROM Account MAXRESULTS 1000"), "Account")]
    rates = {str(r["Id"]): Decimal(str(r.get("RateValue", "0")))
             for r in _rows(query("SELECT * FROM TaxRate MAXRESULTS 1000"), "TaxRate")}
    for code in _rows(query("SELECT * FROM TaxCode MAXRESULTS 1000"), "TaxCode"):
        details = ((code.get("SalesTaxRateList") or {}).get("TaxRateDetail")) or []
        parts = tuple(rates.get(str((d.get("TaxRateRef") or {}).get("value")), Decimal(0)) for d in details)
        # US companies' TAX/NON carry no rates (the transaction's sales tax code does)
        ledger.tax_codes.append(TaxCode(str(code.get("Name", code["Id"])), str(code.get("Name", "")),
                                        sum(parts, Decimal(0)) if parts else None, parts))
    ledger.items = [(str(i["Id"]), str(i.get("Name", "")), str(i.get("Type", "")))
                    for i in _rows(query("SELECT * FROM Item MAXRESULTS 1000"), "Item")]
    return ledger


def read_xero(connector: Any) -> Ledger:
    client = connector.client
    ledger = Ledger(connector.name, "xero")
    ledger.accounts = [Account(str(a.get("Code") or ""), str(a.get("Name", "")), str(a.get("Type", "")))
                       for a in client.call("get_accounts").get("Accounts") or []
                       if a.get("Status", "ACTIVE") == "ACTIVE"]
    for t in client.call("get_tax_rates").get("TaxRates") or []:
        if t.get("Status", "ACTIVE") != "ACTIVE" or t.get("CanApplyToRevenue") is False:
            continue
        parts = tuple(Decimal(str(c.get("Rate", "0"))) for c in t.get("TaxComponents") or [])
        rate = t.get("EffectiveRate", t.get("DisplayTaxRate"))
        ledger.tax_codes.append(TaxCode(str(t.get("TaxType")), str(t.get("Name", "")),
                                        Decimal(str(rate)) if rate is not None else None, parts))
    ledger.items = [(str(i.get("Code", "")), str(i.get("Name", "")), "tracked" if i.get("IsTrackedAsInventory")
                     else "item") for i in client.call("get_items").get("Items") or []]
    return ledger


# (config key, account types that fit, name words that pick one, what it is for)
QBO_KEYS = (
    ("clearing_account_id", ("Bank",), ("stripe", "clearing"),
     "payments are deposited to it, refunds paid from it, payouts leave it"),
    ("payout_bank_account_id", ("Bank",), ("checking", "current", "operating", "business"),
     "the bank account Stripe payouts land in"),
    ("fee_account_id", ("Expense", "Other Expense"), ("stripe", "merchant", "fee", "bank charge"),
     "Stripe's fees are booked to it"),
    ("income_account_id", ("Income",), ("sales", "services", "income", "revenue"),
     "income account of the service items billhub creates"),
)
XERO_KEYS = (
    ("clearing_account_code", ("BANK",), ("stripe", "clearing"),
     "payments go to it, refunds are paid from it, payouts leave it"),
    ("payout_bank_account_code", ("BANK",), ("business bank", "cheque", "checking", "current", "operating"),
     "the bank account Stripe payouts land in"),
    ("fee_account_code", ("EXPENSE", "OVERHEADS", "DIRECTCOSTS"), ("stripe", "merchant", "bank fee", "fee"),
     "Stripe's fees are booked to it"),
    ("sales_account_code", ("REVENUE", "SALES"), ("sales", "revenue", "income"),
     "revenue account of invoice lines and items billhub creates"),
)


def _pick(accounts: list[Account], types: tuple[str, ...], words: tuple[str, ...],
          taken: set[str]) -> tuple[Account | None, str, list[Account]]:
    """The account of a fitting type whose name holds the earliest word; (None, why, candidates)
    when no name says so or two accounts tie."""
    fitting = [a for a in accounts if a.type in types and a.key and a.key not in taken]
    for word in words:
        named = [a for a in fitting if word in a.name.lower()]
        if len(named) == 1:
            return named[0], f'type {named[0].type}, its name has "{word}"', fitting
        if len(named) > 1:
            return None, f'{len(named)} {"/".join(types)} accounts have "{word}" in their name', fitting
    return None, f'no {"/".join(types)} account is named {" / ".join(words)}', fitting


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rate_key(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def suggest(ledger: Ledger) -> str:
    """The suggested ``[connections.<name>]`` keys and ``[tax_codes.<system>]`` table, as TOML."""
    keys = QBO_KEYS if ledger.system == "quickbooks" else XERO_KEYS
    lines = [f"# Suggested by `hub mappings` for the {ledger.system} connection {ledger.connection!r}: review "
             "each line, then merge it into hub.toml.", f"[connections.{ledger.connection}]"]
    taken: set[str] = set()
    for key, types, words, purpose in keys:
        chosen, why, candidates = _pick(ledger.accounts, types, words, taken)
        if chosen is not None:
            taken.add(chosen.key)
            lines.append(f"{key} = {_quote(chosen.key)}  # {chosen.name!r}: {why}; {purpose}")
            continue
        listed = ", ".join(f"{a.key} {a.name!r}" for a in candidates) or "none"
        lines.append(f"# {key} = \"\"  # not chosen: {why} ({purpose}); candidates: {listed}")
    lines += ["", f"[tax_codes.{ledger.system}]"]
    by_rate: dict[str, list[TaxCode]] = {}
    for code in ledger.tax_codes:
        if code.rate is None:
            continue
        key = "+".join(_rate_key(p) for p in code.parts) if len(code.parts) > 1 else _rate_key(code.rate)
        by_rate.setdefault(key, []).append(code)
    if not by_rate:
        lines.append("# no tax code with a sales rate (a US QuickBooks company: lines are TAX or NON; name the "
                     "sales tax code per rate/state here, e.g. \"8.875/standard/US-NY\" = \"NYC\")")
    for key, codes in sorted(by_rate.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if len(codes) == 1:
            lines.append(f"{_quote(key)} = {_quote(codes[0].code)}  # {codes[0].name!r}: the only sales code "
                         f"at {key} %")
        else:
            names = ", ".join(f"{c.code} ({c.name})" for c in codes)
            lines.append(f"# {_quote(key)} = \"\"  # {len(codes)} codes at {key} %: {names}; add a treatment to "
                         f"tell them apart (e.g. \"{key}/zero_rated\", \"{key}/exempt\"), see config.example.toml")
    return "\n".join(lines) + "\n"


def read_ledger(connector: Any) -> Ledger:
    if connector.system == "quickbooks":
        return read_quickbooks(connector)
    if connector.system == "xero":
        return read_xero(connector)
    raise LookupError(f"{connector.name} is a {connector.system} connection; hub mappings reads ledgers "
                      "(quickbooks, xero)")
