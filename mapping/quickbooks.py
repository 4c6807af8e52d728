"""QuickBooks Online objects <-> canonical entities. Pure functions, Decimal only.

Entity types: customer (Customer), product (Item), invoice (Invoice), payment (Payment, applied
to an invoice through ``LinkedTxn``), credit_note (CreditMemo), refund (RefundReceipt).

The hub's marker (``hub:<canonical id>``) lives in a free-text field the hub owns on each object:
``Customer.Notes``, ``Item.PurchaseDesc`` (hub items are service items that are never
purchased), ``PrivateNote`` on transactions. The natural keys are ``DisplayName`` / email for
customers, ``Name`` / ``Sku`` for items, ``DocNumber`` for documents.

Amounts: QBO amounts are exact to the cent and are converted exactly (``Money.from_decimal``
without rounding; a value with more places is refused). ``UnitPrice`` may carry more places
than the currency and QBO rounds the line to the cent, so the canonical unit amount is rounded
half-up explicitly and the exact price is kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mapping.lines import exact_quantity_and_unit, line_discounts
from mapping.model import (
    CreditNote,
    Customer,
    Discount,
    Entity,
    Invoice,
    InvoiceLine,
    Money,
    Payment,
    Product,
    Refund,
    TaxId,
    TaxLine,
)
from mapping.postings import all_inclusive, exclusive_lines
from mapping.quickbooks_tax import QboTax, QboTaxError, code_lines, tax_detail, tax_lines_in
from mapping.quickbooks_wire import (
    CANONICAL_TYPES,
    ENTITY_NAMES,
    MARKER_FIELDS,
    MARKER_PREFIX,
    NAME_ENTITIES,
    QBO_UNIT_PLACES,
    VOID_PREFIX,
    MappingError,
    address_in,
    address_out,
    at_midnight,
    currency_of,
    dec,
    marker,
    marker_of,
    money,
    parse_date,
    parse_time,
    ref_value,
    required_ref,
    updated_of,
)
from mapping.refs import RefResolver

# --------------------------------------------------------------------------- customer / item


def customer_to_canonical(obj: Mapping[str, Any], refs: RefResolver, home_currency: str = "USD") -> Customer:
    email = obj.get("PrimaryEmailAddr")
    phone = obj.get("PrimaryPhone")
    name = str(obj.get("DisplayName") or "")
    active = bool(obj.get("Active", True))
    if not active and name.endswith(" (deleted)"):
        name = name[: -len(" (deleted)")]
    extra = {k: obj[k] for k in ("CompanyName", "GivenName", "FamilyName") if obj.get(k)}
    if obj.get("Balance") not in (None, ""):
        extra["balance"] = str(dec(obj.get("Balance"), "Balance"))
    return Customer(
        id=refs.canonical_id("customer", str(obj["Id"])), name=name,
        email=email.get("Address") if isinstance(email, Mapping) else None,
        phone=phone.get("FreeFormNumber") if isinstance(phone, Mapping) else None,
        address=address_in(obj.get("BillAddr")), shipping_address=address_in(obj.get("ShipAddr")),
        tax_ids=(TaxId("quickbooks_tax_id", str(obj["PrimaryTaxIdentifier"])),)
        if obj.get("PrimaryTaxIdentifier") else (),
        currency=currency_of(obj, home_currency), active=active, updated_at=updated_of(obj), extra=extra)


def customer_from_canonical(entity: Customer) -> dict[str, Any]:
    name = " ".join(entity.name.replace(":", "-").split())  # QBO refuses ':' in names
    body: dict[str, Any] = {"DisplayName": name, "Active": entity.active}
    if entity.email:
        body["PrimaryEmailAddr"] = {"Address": entity.email}
    if entity.phone:
        body["PrimaryPhone"] = {"FreeFormNumber": entity.phone}
    if (bill := address_out(entity.address)) is not None:
        body["BillAddr"] = bill
    if (ship := address_out(entity.shipping_address)) is not None:
        body["ShipAddr"] = ship
    if entity.currency:
        body["CurrencyRef"] = {"value": entity.currency}
    if entity.extra.get("CompanyName"):
        body["CompanyName"] = entity.extra["CompanyName"]
    if entity.tax_ids:  # the customer's VAT/GST/EIN number: QuickBooks keeps one
        body["PrimaryTaxIdentifier"] = entity.tax_ids[0].value
    return body


def product_to_canonical(obj: Mapping[str, Any], refs: RefResolver) -> Product:
    return Product(id=refs.canonical_id("product", str(obj["Id"])), name=str(obj.get("Name") or ""),
                   description=obj.get("Description") or None, sku=obj.get("Sku") or None,
                   active=bool(obj.get("Active", True)), updated_at=updated_of(obj),
                   extra={"type": obj.get("Type", "Service")})


def product_from_canonical(entity: Product, income_account_id: str = "1") -> dict[str, Any]:
    body: dict[str, Any] = {"Name": " ".join(entity.name.replace(":", "-").split()), "Type": "Service",
                            "Active": entity.active, "IncomeAccountRef": {"value": income_account_id}}
    if entity.description:
        body["Description"] = entity.description
    if entity.sku:
        body["Sku"] = entity.sku
    return body


# --------------------------------------------------------------------------- document lines


def _lines_in(obj: Mapping[str, Any], refs: RefResolver, currency: str) -> tuple[list[InvoiceLine], list[Discount]]:
    lines: list[InvoiceLine] = []
    discounts: list[Discount] = []
    for raw in obj.get("Line") or []:
        kind = raw.get("DetailType")
        if kind == "DiscountLineDetail":
            discounts.append(Discount(name=str(raw.get("Description") or "Discount"),
                                      amount=money(raw.get("Amount"), currency, "Line.Amount")))
            continue
        if kind != "SalesItemLineDetail":
            continue
        detail = raw.get("SalesItemLineDetail") or {}
        amount = money(raw.get("Amount"), currency, "Line.Amount")
        if detail.get("TaxInclusiveAmt") not in (None, ""):
            # a tax-inclusive line: Amount is its net, the canonical amount (the source's) the gross
            amount = money(detail["TaxInclusiveAmt"], currency, "TaxInclusiveAmt")
        qty = dec(detail.get("Qty"), "Qty") if detail.get("Qty") not in (None, "") else Decimal(1)
        if detail.get("UnitPrice") not in (None, ""):
            unit = Money.from_decimal(dec(detail.get("UnitPrice"), "UnitPrice"), currency, ROUND_HALF_UP)
        elif qty:
            unit = Money.from_decimal(amount.to_decimal() / qty, currency, ROUND_HALF_UP)
        else:
            unit = amount
        item = ref_value(detail, "ItemRef")
        lines.append(InvoiceLine(
            description=str(raw.get("Description") or ""), quantity=qty, unit_amount=unit, amount=amount,
            product_id=refs.canonical_id("product", item) if item else None,
            tax_rate=None, external_id=str(raw["Id"]) if raw.get("Id") else None))
    return lines, discounts


def _lines_out(lines: tuple[InvoiceLine, ...], discounts: tuple[Discount, ...],
               refs: RefResolver, taxable: bool, tax: QboTax | None = None,
               inclusive: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in lines:
        detail: dict[str, Any] = {}
        amount = line.amount.to_decimal()
        # Amount is the line's exact total; Qty x UnitPrice (QuickBooks keeps 7 places) is sent
        # only where it gives that total back (``mapping.lines``)
        quantity, unit = exact_quantity_and_unit(line.quantity, line.amount, QBO_UNIT_PLACES)
        if quantity == line.quantity:
            detail["Qty"] = quantity
            detail["UnitPrice"] = unit
        if line.product_id:
            item = refs.external_id("product", line.product_id)
            if item is not None:
                detail["ItemRef"] = {"value": item}
        row: dict[str, Any] = {"DetailType": "SalesItemLineDetail", "Amount": amount,
                               "SalesItemLineDetail": detail}
        if line.description:
            row["Description"] = line.description
        out.append(row)
    # TaxCodeRef per line by the company's tax model (US TAX/NON, else its VAT/GST codes)
    code_lines(out, lines, tax, taxable=taxable, inclusive=inclusive)
    out += discount_lines(lines, discounts)
    return out


def discount_lines(lines: tuple[InvoiceLine, ...], discounts: tuple[Discount, ...]) -> list[dict[str, Any]]:
    """QuickBooks has no line discounts: its DiscountLineDetail lines (after the sales lines, so
    they discount their subtotal) carry every discount of the document — the invoice's, and the
    lines' own where the source allocated some (``mapping.lines``: one rule for both ledgers).
    One line per source discount when they account for it all, else one line of the sum."""
    if not lines:
        return []
    currency = lines[0].amount.currency
    total = sum(line_discounts(lines, discounts, currency))
    if total <= 0:
        return []
    named = [d for d in discounts if d.amount.currency == currency and d.amount.minor]
    parts = [(d.name, d.amount) for d in named] if sum(d.amount.minor for d in named) == total \
        else [("Discount", Money(total, currency))]
    return [{"DetailType": "DiscountLineDetail", "Amount": amount.to_decimal(), "Description": name,
             "DiscountLineDetail": {"PercentBased": False}} for name, amount in parts]


def _fx_extra(obj: Mapping[str, Any], currency: str, home_currency: str) -> dict[str, Any]:
    if currency == home_currency:
        return {}
    extra: dict[str, Any] = {}
    if obj.get("ExchangeRate") not in (None, ""):
        extra["exchange_rate"] = str(dec(obj["ExchangeRate"], "ExchangeRate"))
    if obj.get("HomeTotalAmt") not in (None, ""):
        home = money(obj["HomeTotalAmt"], home_currency, "HomeTotalAmt")
        extra["home_total"] = {"minor": home.minor, "currency": home.currency}
    return extra


def _voided(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("PrivateNote") or "").startswith(VOID_PREFIX)


def _fx_out(body: dict[str, Any], currency: str, extra: Mapping[str, Any]) -> None:
    body["CurrencyRef"] = {"value": currency}
    if extra.get("exchange_rate"):
        body["ExchangeRate"] = dec(extra["exchange_rate"], "exchange_rate")


# --------------------------------------------------------------------------- invoice


def invoice_to_canonical(obj: Mapping[str, Any], refs: RefResolver, home_currency: str = "USD") -> Invoice:
    currency = currency_of(obj, home_currency)
    lines, discounts = _lines_in(obj, refs, currency)
    tax = money((obj.get("TxnTaxDetail") or {}).get("TotalTax"), currency, "TotalTax")
    total = money(obj.get("TotalAmt"), currency, "TotalAmt")
    balance = money(obj.get("Balance", obj.get("TotalAmt")), currency, "Balance")
    subtotal = Money(sum(line.amount.minor for line in lines), currency)
    inclusive = obj.get("GlobalTaxCalculation") == "TaxInclusive"
    if _voided(obj):
        status = "void"
    elif balance.minor == 0 and total.minor > 0:
        status = "paid"
    else:
        status = "open"
    customer = ref_value(obj, "CustomerRef")
    rated = tax_lines_in(obj)  # the global tax model's rate detail, when QuickBooks has it
    tax_lines = tuple(TaxLine(name=rate_id, rate=pct, amount=money(amount, currency, "TaxLine.Amount"),
                              inclusive=inclusive,
                              taxable_amount=money(net, currency, "NetAmountTaxable") if net is not None else None)
                      for rate_id, pct, amount, net in rated) if rated else \
        (TaxLine(name="Sales tax", rate=Decimal(0), amount=tax, inclusive=inclusive),) if tax.minor else ()
    return Invoice(
        id=refs.canonical_id("invoice", str(obj["Id"])),
        customer_id=refs.canonical_id("customer", customer) if customer else "",
        number=obj.get("DocNumber") or None, status=status, currency=currency,
        issued_at=at_midnight(parse_date(obj.get("TxnDate"))), due_date=parse_date(obj.get("DueDate")),
        lines=tuple(lines), tax_lines=tax_lines, discounts=tuple(discounts), subtotal=subtotal, tax=tax,
        total=total, amount_paid=total - balance, amount_due=balance, tax_inclusive=inclusive,
        updated_at=updated_of(obj), extra=_fx_extra(obj, currency, home_currency))


def invoice_from_canonical(entity: Invoice, refs: RefResolver, tax: QboTax | None = None) -> dict[str, Any]:
    """``tax`` is the company's tax model and codes (``mapping.quickbooks_tax``); without it the
    invoice goes as to a US company."""
    try:
        shares = line_discounts(entity.lines, entity.discounts, entity.currency)
        detail, calculation = tax_detail(entity.lines, shares, entity.tax, tax, inclusive=entity.tax_inclusive)
        lines = _lines_out(entity.lines, entity.discounts, refs, taxable=entity.tax.minor != 0, tax=tax,
                           inclusive=entity.tax_inclusive)
    except QboTaxError as exc:
        raise MappingError(str(exc)) from None
    body: dict[str, Any] = {
        "CustomerRef": required_ref(refs, "customer", entity.customer_id, "customer"),
        "Line": lines, "TxnTaxDetail": detail,
    }
    if calculation is not None:
        body["GlobalTaxCalculation"] = calculation
    if any(line["DetailType"] == "DiscountLineDetail" for line in body["Line"]):
        body["ApplyTaxAfterDiscount"] = True  # Stripe taxes the discounted amounts (Intuit's flag)
    if entity.tax_inclusive:
        body["GlobalTaxCalculation"] = "TaxInclusive"
    if entity.number:
        if len(entity.number) > 21:
            raise MappingError(f"invoice number {entity.number!r} is longer than QuickBooks' 21 characters")
        body["DocNumber"] = entity.number
    if entity.issued_at:
        body["TxnDate"] = entity.issued_at.astimezone(UTC).date().isoformat()
    if entity.due_date:
        body["DueDate"] = entity.due_date.isoformat()
    _fx_out(body, entity.currency, entity.extra)
    return body


# --------------------------------------------------------------------------- payment


def payment_to_canonical(obj: Mapping[str, Any], refs: RefResolver, home_currency: str = "USD") -> Payment:
    currency = currency_of(obj, home_currency)
    invoice = next((str(linked["TxnId"]) for line in obj.get("Line") or []
                    for linked in line.get("LinkedTxn") or [] if linked.get("TxnType") == "Invoice"), None)
    customer = ref_value(obj, "CustomerRef")
    rate = obj.get("ExchangeRate")
    return Payment(
        id=refs.canonical_id("payment", str(obj["Id"])),
        customer_id=refs.canonical_id("customer", customer) if customer else None,
        invoice_id=refs.canonical_id("invoice", invoice) if invoice else None,
        amount=money(obj.get("TotalAmt"), currency, "TotalAmt"),
        status="canceled" if _voided(obj) else "succeeded",
        paid_at=at_midnight(parse_date(obj.get("TxnDate"))),
        exchange_rate=dec(rate, "ExchangeRate") if currency != home_currency and rate not in (None, "") else None,
        reference=obj.get("PaymentRefNum") or None, updated_at=updated_of(obj),
        extra=_fx_extra(obj, currency, home_currency))


def payment_from_canonical(entity: Payment, refs: RefResolver) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerRef": required_ref(refs, "customer", entity.customer_id, "customer"),
        "TotalAmt": entity.amount.to_decimal(),
    }
    if entity.invoice_id:
        invoice = required_ref(refs, "invoice", entity.invoice_id, "invoice")
        body["Line"] = [{"Amount": entity.amount.to_decimal(),
                         "LinkedTxn": [{"TxnId": invoice["value"], "TxnType": "Invoice"}]}]
    if entity.paid_at:
        body["TxnDate"] = entity.paid_at.astimezone(UTC).date().isoformat()
    if entity.reference:
        body["PaymentRefNum"] = entity.reference[:21]
    _fx_out(body, entity.amount.currency, entity.extra)
    if entity.exchange_rate is not None and entity.net is not None:
        # Stripe's rate is settlement units per payment unit: QuickBooks' direction only when
        # Stripe settled in the home currency, which the writer knows (it reads the company)
        body["_fx"] = {"settled_in": entity.net.currency, "settlement_rate": str(entity.exchange_rate)}
    return body


# --------------------------------------------------------------------------- credit memo / refund receipt


def credit_note_to_canonical(obj: Mapping[str, Any], refs: RefResolver, home_currency: str = "USD") -> CreditNote:
    currency = currency_of(obj, home_currency)
    lines, _discounts = _lines_in(obj, refs, currency)
    customer = ref_value(obj, "CustomerRef")
    return CreditNote(
        id=refs.canonical_id("credit_note", str(obj["Id"])),
        customer_id=refs.canonical_id("customer", customer) if customer else None,
        number=obj.get("DocNumber") or None, status="void" if _voided(obj) else "issued", currency=currency,
        lines=tuple(lines), total=money(obj.get("TotalAmt"), currency, "TotalAmt"),
        issued_at=at_midnight(parse_date(obj.get("TxnDate"))), updated_at=updated_of(obj),
        extra=_fx_extra(obj, currency, home_currency))


def _credit_lines(lines: tuple[InvoiceLine, ...], total: Money,
                  description: str) -> tuple[tuple[InvoiceLine, ...], Money]:
    """A credit document's lines and their tax (README "Posting model"): a credit or a refund
    reverses VAT as the lines carry it; with no lines, one untaxed line of the whole amount."""
    lines = lines or (InvoiceLine(description=description, quantity=Decimal(1), unit_amount=total, amount=total),)
    tax = Money(sum(line.tax_amount.minor for line in lines if line.tax_amount), total.currency)
    return lines, tax


def _credit_tax(lines: tuple[InvoiceLine, ...], tax: Money, company_tax: QboTax | None,
                inclusive: bool = False) -> dict[str, Any]:
    """A credit document's TxnTaxDetail and GlobalTaxCalculation (outside the US; and, as on an
    invoice, TaxInclusive for tax-inclusive lines)."""
    try:
        detail, calculation = tax_detail(lines, [0] * len(lines), tax, company_tax, inclusive=inclusive)
    except QboTaxError as exc:
        raise MappingError(str(exc)) from None
    calculation = "TaxInclusive" if inclusive else calculation
    return {"TxnTaxDetail": detail, **({"GlobalTaxCalculation": calculation} if calculation else {})}


def credit_note_from_canonical(entity: CreditNote, refs: RefResolver,
                               company_tax: QboTax | None = None) -> dict[str, Any]:
    lines, tax = _credit_lines(entity.lines, entity.total, entity.reason or "Credit")
    # a note on a tax-inclusive invoice is inclusive as the invoice was; a mix, netted, is not
    inclusive = all_inclusive(lines)
    lines = lines if inclusive else exclusive_lines(lines)
    body: dict[str, Any] = {
        "CustomerRef": required_ref(refs, "customer", entity.customer_id, "customer"),
        "Line": _lines_out(lines, (), refs, taxable=tax.minor != 0, tax=company_tax, inclusive=inclusive),
        **_credit_tax(lines, tax, company_tax, inclusive),
    }
    if entity.number:
        body["DocNumber"] = entity.number[:21]
    if entity.issued_at:
        body["TxnDate"] = entity.issued_at.astimezone(UTC).date().isoformat()
    if entity.invoice_id and entity.status != "void":
        invoice = refs.external_id("invoice", entity.invoice_id)
        if invoice:  # the writer applies the memo to it (a Payment linking both), as QuickBooks does
            body["_apply_to"] = invoice
    _fx_out(body, entity.currency, entity.extra)
    return body


def refund_to_canonical(obj: Mapping[str, Any], refs: RefResolver, home_currency: str = "USD") -> Refund:
    currency = currency_of(obj, home_currency)
    customer = ref_value(obj, "CustomerRef")
    lines = [line for line in obj.get("Line") or [] if line.get("DetailType") == "SalesItemLineDetail"]
    return Refund(
        id=refs.canonical_id("refund", str(obj["Id"])),
        customer_id=refs.canonical_id("customer", customer) if customer else None,
        amount=money(obj.get("TotalAmt"), currency, "TotalAmt"),
        status="canceled" if _voided(obj) else "succeeded",
        reason=(lines[0].get("Description") or None) if lines else None,
        refunded_at=at_midnight(parse_date(obj.get("TxnDate"))), updated_at=updated_of(obj),
        extra=_fx_extra(obj, currency, home_currency))


def refund_from_canonical(entity: Refund, refs: RefResolver, deposit_account_id: str = "2",
                          company_tax: QboTax | None = None) -> dict[str, Any]:
    """A RefundReceipt: money out of the deposit account, with the lines and tax of its credit
    note or its invoice's tax reversed (``mapping.postings`` fills ``lines`` when it is pushed)."""
    lines, tax = _credit_lines(entity.lines, entity.amount, entity.reason or "Refund")
    body: dict[str, Any] = {
        "CustomerRef": required_ref(refs, "customer", entity.customer_id, "customer"),
        "Line": _lines_out(lines, (), refs, taxable=tax.minor != 0, tax=company_tax),
        **_credit_tax(lines, tax, company_tax),
        "DepositToAccountRef": {"value": deposit_account_id},
    }
    if entity.refunded_at:
        body["TxnDate"] = entity.refunded_at.astimezone(UTC).date().isoformat()
    _fx_out(body, entity.amount.currency, entity.extra)
    return body


# --------------------------------------------------------------------------- dispatch


def to_canonical(entity_type: str, obj: Mapping[str, Any], refs: RefResolver,
                 home_currency: str = "USD") -> Entity:
    if entity_type == "customer":
        return customer_to_canonical(obj, refs, home_currency)
    if entity_type == "product":
        return product_to_canonical(obj, refs)
    if entity_type == "invoice":
        return invoice_to_canonical(obj, refs, home_currency)
    if entity_type == "payment":
        return payment_to_canonical(obj, refs, home_currency)
    if entity_type == "credit_note":
        return credit_note_to_canonical(obj, refs, home_currency)
    if entity_type == "refund":
        return refund_to_canonical(obj, refs, home_currency)
    raise MappingError(f"QuickBooks does not hold {entity_type!r}; supported: {', '.join(ENTITY_NAMES)}")


def from_canonical(entity: Entity, refs: RefResolver, *, income_account_id: str = "1",
                   deposit_account_id: str = "2", tax: QboTax | None = None) -> dict[str, Any]:
    """``tax``: the company's tax model and codes (the connector reads them); None = US."""
    if isinstance(entity, Customer):
        return customer_from_canonical(entity)
    if isinstance(entity, Product):
        return product_from_canonical(entity, income_account_id)
    if isinstance(entity, Invoice):
        return invoice_from_canonical(entity, refs, tax)
    if isinstance(entity, Payment):
        return payment_from_canonical(entity, refs)
    if isinstance(entity, CreditNote):
        return credit_note_from_canonical(entity, refs, tax)
    if isinstance(entity, Refund):
        return refund_from_canonical(entity, refs, deposit_account_id, tax)
    raise MappingError(f"QuickBooks does not hold {entity.type!r}; supported: {', '.join(ENTITY_NAMES)}")


def natural_keys(entity_type: str, obj: Mapping[str, Any]) -> dict[str, str]:
    keys: dict[str, str] = {}
    if entity_type == "customer":
        if obj.get("DisplayName"):
            keys["name"] = str(obj["DisplayName"])
        email = obj.get("PrimaryEmailAddr")
        if isinstance(email, Mapping) and email.get("Address"):
            keys["email"] = str(email["Address"])
    elif entity_type == "product":
        if obj.get("Name"):
            keys["name"] = str(obj["Name"])
        if obj.get("Sku"):
            keys["sku"] = str(obj["Sku"])
    elif obj.get("DocNumber"):
        keys["number"] = str(obj["DocNumber"])
    hub_id = marker_of(entity_type, obj) if entity_type in MARKER_FIELDS else None
    if hub_id:  # first contact matches by the hub's marker before any natural key
        keys["hub_id"] = hub_id
    return keys


# what the connector, its reader and writer, and the payout mapping import from here
__all__ = ["CANONICAL_TYPES", "ENTITY_NAMES", "MARKER_FIELDS", "MARKER_PREFIX", "NAME_ENTITIES", "VOID_PREFIX",
           "MappingError", "customer_from_canonical", "from_canonical", "marker", "marker_of", "money",
           "natural_keys", "parse_date", "parse_time", "ref_value", "to_canonical"]
