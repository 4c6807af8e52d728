"""Xero objects <-> canonical entities: pure functions, exact to the minor unit.

Xero amounts arrive as JSON numbers that the connector parses as ``Decimal`` (never float) and
convert with ``Money.from_decimal`` exactly: Xero rounds line amounts and tax to 2 places
itself, so anything finer is an error, not something to round away silently.

Hub markers (what ``lookup`` queries with ``where``):

==============  =================  =====================================================
canonical       Xero object        marker
==============  =================  =====================================================
customer        Contact            ``ContactNumber`` = hub id (API-settable, <= 50 chars)
product         Item               ``PurchaseDescription`` = hub id (``Code`` is the SKU)
invoice         Invoice ACCREC     ``Reference`` = hub id
payment         Payment            ``Reference`` = hub id
credit_note     CreditNote         ``Reference`` = hub id
refund          CreditNote         ``Reference`` = ``refund:`` + hub id, settled by an
                ACCRECCREDIT       allocation to the invoice (or a cash refund payment)
==============  =================  =====================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mapping.lines import described, exact_quantity_and_unit, line_discounts
from mapping.model import (
    Address,
    CreditNote,
    Customer,
    Discount,
    Entity,
    Invoice,
    InvoiceLine,
    Payment,
    Product,
    Refund,
    TaxId,
)
from mapping.money import Money, normalize_currency, sum_money
from mapping.postings import all_inclusive, exclusive_lines
from mapping.refs import RefResolver
from mapping.tax_codes import TaxCodeMissing, TaxCodes, rate_text
from mapping.xero_dates import parse_date
from mapping.xero_fx import fx_hint
from mapping.xero_payouts import PAYOUT_PREFIX

REFUND_PREFIX = "refund:"

INVOICE_STATUS_TO_CANONICAL = {"DRAFT": "draft", "SUBMITTED": "draft", "AUTHORISED": "open",
                               "PAID": "paid", "VOIDED": "void", "DELETED": "void"}
INVOICE_STATUS_TO_XERO = {"draft": "DRAFT", "open": "AUTHORISED", "paid": "AUTHORISED",
                          "void": "VOIDED", "uncollectible": "AUTHORISED"}
DEFAULT_TAX_TYPES: dict[str, str] = {"0": "NONE", "10": "OUTPUT", "20": "OUTPUT2"}
XERO_UNIT_PLACES = 4  # Xero keeps unit amounts to 4 decimal places


class MappingError(ValueError):
    """A record cannot be mapped (missing reference, unknown tax rate, inexact amount)."""


def marker_field(entity_type: str) -> str:
    return {"customer": "ContactNumber", "product": "PurchaseDescription"}.get(entity_type, "Reference")


def marker_value(entity_type: str, hub_id: str) -> str:
    if entity_type == "payout":  # its BankTransfer and fee BankTransaction (mapping/xero_payouts.py)
        return PAYOUT_PREFIX + hub_id
    return REFUND_PREFIX + hub_id if entity_type == "refund" else hub_id


def hub_id_of(entity_type: str, data: Mapping[str, Any]) -> str | None:
    """The hub id in a record's marker field (``marker_value`` read back), if it carries one."""
    value = str(data.get(marker_field(entity_type)) or "").strip()
    prefix = PAYOUT_PREFIX if entity_type == "payout" else REFUND_PREFIX if entity_type == "refund" else ""
    if prefix:
        return value[len(prefix):] or None if value.startswith(prefix) else None
    return value or None


# --------------------------------------------------------------------------- helpers


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):
        raise MappingError("Xero amounts must be parsed as Decimal, not float")
    return Decimal(str(value))


def _money(value: Any, currency: str) -> Money:
    try:
        return Money.from_decimal(_dec(value), currency)
    except ValueError as exc:
        raise MappingError(str(exc)) from None


def _currency(value: Any) -> str:
    """A document's currency as Xero states it: real Xero always does, so a document without
    one (or with a code no one knows) is held, never taken for USD."""
    if not value:
        raise MappingError("the document names no CurrencyCode")
    try:
        return normalize_currency(str(value))
    except ValueError as exc:
        raise MappingError(str(exc)) from None


def _when(value: Any) -> datetime | None:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise MappingError(str(exc)) from None


def _day(value: Any) -> date | None:
    when = _when(value)
    return when.date() if when else None


def _ref(refs: RefResolver, entity_type: str, external_id: Any) -> str | None:
    return refs.canonical_id(entity_type, str(external_id)) if external_id else None


def _need_external(refs: RefResolver, entity_type: str, canonical_id: str | None) -> str:
    external = refs.external_id(entity_type, canonical_id) if canonical_id else None
    if not external:
        raise MappingError(f"{entity_type} {canonical_id} is not linked to Xero yet; write it first")
    return external


def _iso_day(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    return value.isoformat()


# --------------------------------------------------------------------------- to canonical


def contact_to_customer(data: Mapping[str, Any], canonical_id: str) -> Customer:
    phones = [p for p in data.get("Phones") or [] if isinstance(p, Mapping) and p.get("PhoneNumber")]
    phone = None
    if phones:
        first = next((p for p in phones if p.get("PhoneType") == "DEFAULT"), phones[0])
        phone = " ".join(str(first.get(k)) for k in ("PhoneCountryCode", "PhoneAreaCode", "PhoneNumber")
                         if first.get(k))
    address = None
    for raw in data.get("Addresses") or []:
        if isinstance(raw, Mapping) and raw.get("AddressLine1"):
            address = Address(line1=raw.get("AddressLine1"), line2=raw.get("AddressLine2"),
                              city=raw.get("City"), region=raw.get("Region"),
                              postal_code=raw.get("PostalCode"), country=raw.get("Country"))
            break
    tax_ids = (TaxId("xero_tax_number", str(data["TaxNumber"])),) if data.get("TaxNumber") else ()
    return Customer(id=canonical_id, name=str(data.get("Name") or ""), email=data.get("EmailAddress") or None,
                    phone=phone, address=address, tax_ids=tax_ids,
                    currency=data.get("DefaultCurrency") or None,
                    active=data.get("ContactStatus", "ACTIVE") == "ACTIVE",
                    updated_at=_when(data.get("UpdatedDateUTC")), extra=_balance(data))


def _balance(data: Mapping[str, Any]) -> dict[str, Any]:
    """``extra["balance"]``: what the contact owes on sales less its credit (Balances.
    AccountsReceivable.Outstanding, raw amounts in the documents' currency), when Xero says it."""
    receivable = (data.get("Balances") or {}).get("AccountsReceivable") or {}
    if not isinstance(receivable, Mapping) or receivable.get("Outstanding") in (None, ""):
        return {}
    return {"balance": format(_dec(receivable["Outstanding"]), "f")}


def item_to_product(data: Mapping[str, Any], canonical_id: str) -> Product:
    return Product(id=canonical_id, name=str(data.get("Name") or data.get("Code") or ""),
                   description=data.get("Description") or None, sku=data.get("Code") or None,
                   active=not data.get("_deleted", False), updated_at=_when(data.get("UpdatedDateUTC")))


def _lines(data: Mapping[str, Any], currency: str, refs: RefResolver) -> tuple[InvoiceLine, ...]:
    """Canonical lines: ``amount`` before discount (Xero's ``LineAmount`` is after it), the
    discount as Xero states it or as its rate gives it, and the unit rounded to the currency —
    Xero keeps 4 places, the exact line is in ``amount``."""
    lines = []
    for raw in data.get("LineItems") or []:
        item = raw.get("Item") if isinstance(raw.get("Item"), Mapping) else {}
        quantity, unit = _dec(raw.get("Quantity", 1)), _dec(raw.get("UnitAmount"))
        after = _money(raw.get("LineAmount"), currency)
        if raw.get("DiscountAmount") not in (None, "", 0):
            discount = _money(raw.get("DiscountAmount"), currency)
        elif raw.get("DiscountRate") not in (None, "", 0):
            gross = Money.from_decimal(quantity * unit, currency, ROUND_HALF_UP)
            discount = gross - after
        else:
            discount = Money(0, currency)
        lines.append(InvoiceLine(
            description=str(raw.get("Description") or ""), quantity=quantity,
            unit_amount=Money.from_decimal(unit, currency, ROUND_HALF_UP), amount=after + discount,
            product_id=_ref(refs, "product", item.get("ItemID")) if item else None,
            tax_amount=_money(raw.get("TaxAmount"), currency),
            discount_amount=discount if discount.minor else None, external_id=raw.get("LineItemID")))
    return tuple(lines)


def invoice_to_canonical(data: Mapping[str, Any], canonical_id: str, refs: RefResolver) -> Invoice:
    currency = _currency(data.get("CurrencyCode"))
    contact = data.get("Contact") or {}
    status = str(data.get("Status") or "DRAFT")
    # payments only, as Stripe's amount_paid: what credit settled (AmountCredited) is the rest,
    # total - amount paid - amount due (the diff compares the two apart)
    paid = _money(data.get("AmountPaid"), currency)
    extra: dict[str, Any] = {"xero_status": status}
    if data.get("CurrencyRate") not in (None, "") and _dec(data.get("CurrencyRate")) != 1:
        extra["currency_rate"] = format(_dec(data["CurrencyRate"]), "f")
    lines = _lines(data, currency, refs)
    # Xero's SubTotal is after line discounts; the canonical one is before them
    discounted = sum_money([line.discount_amount for line in lines if line.discount_amount], currency)
    discounts = (Discount(name="line discounts", amount=discounted),) if discounted.minor else ()
    return Invoice(
        id=canonical_id, customer_id=_ref(refs, "customer", contact.get("ContactID")) or "",
        number=data.get("InvoiceNumber") or None, status=INVOICE_STATUS_TO_CANONICAL.get(status, "draft"),
        currency=currency, issued_at=_when(data.get("Date")), due_date=_day(data.get("DueDate")),
        lines=lines, discounts=discounts, subtotal=_money(data.get("SubTotal"), currency) + discounted,
        tax=_money(data.get("TotalTax"), currency), total=_money(data.get("Total"), currency),
        amount_paid=paid, amount_due=_money(data.get("AmountDue"), currency),
        tax_inclusive=data.get("LineAmountTypes") == "Inclusive",
        paid_at=_when(data.get("FullyPaidOnDate")), updated_at=_when(data.get("UpdatedDateUTC")),
        extra=extra)


def payment_to_canonical(data: Mapping[str, Any], canonical_id: str, refs: RefResolver) -> Payment:
    invoice = data.get("Invoice") or {}
    currency = _currency(invoice.get("CurrencyCode") or data.get("CurrencyCode"))
    # canonical exchange_rate is settlement units per payment unit (Stripe's direction); Xero's
    # CurrencyRate is the inverse, foreign per base
    xero_rate = _dec(data.get("CurrencyRate")) if data.get("CurrencyRate") not in (None, "") else Decimal(1)
    rate = (Decimal(1) / xero_rate).quantize(Decimal("1e-10")) if xero_rate not in (Decimal(0), Decimal(1)) else None
    return Payment(
        id=canonical_id, invoice_id=_ref(refs, "invoice", invoice.get("InvoiceID")),
        customer_id=_ref(refs, "customer", (invoice.get("Contact") or {}).get("ContactID")),
        amount=_money(data.get("Amount"), currency),
        status="canceled" if data.get("Status") == "DELETED" else "succeeded",
        paid_at=_when(data.get("Date")), exchange_rate=rate,
        updated_at=_when(data.get("UpdatedDateUTC")))


def credit_note_to_canonical(data: Mapping[str, Any], canonical_id: str, refs: RefResolver) -> CreditNote:
    currency = _currency(data.get("CurrencyCode"))
    allocations = [a for a in data.get("Allocations") or [] if isinstance(a, Mapping)]
    invoice_ext = (allocations[0].get("Invoice") or {}).get("InvoiceID") if allocations else None
    return CreditNote(
        id=canonical_id, invoice_id=_ref(refs, "invoice", invoice_ext),
        customer_id=_ref(refs, "customer", (data.get("Contact") or {}).get("ContactID")),
        number=data.get("CreditNoteNumber") or None,
        status="void" if data.get("Status") in ("VOIDED", "DELETED") else "issued",
        currency=currency, lines=_lines(data, currency, refs), total=_money(data.get("Total"), currency),
        issued_at=_when(data.get("Date")), updated_at=_when(data.get("UpdatedDateUTC")))


def refund_to_canonical(data: Mapping[str, Any], canonical_id: str, refs: RefResolver) -> Refund:
    currency = _currency(data.get("CurrencyCode"))
    allocations = [a for a in data.get("Allocations") or [] if isinstance(a, Mapping)]
    invoice_ext = (allocations[0].get("Invoice") or {}).get("InvoiceID") if allocations else None
    return Refund(
        id=canonical_id, invoice_id=_ref(refs, "invoice", invoice_ext),
        customer_id=_ref(refs, "customer", (data.get("Contact") or {}).get("ContactID")),
        amount=_money(data.get("Total"), currency),
        status="canceled" if data.get("Status") in ("VOIDED", "DELETED") else "succeeded",
        refunded_at=_when(data.get("Date")), updated_at=_when(data.get("UpdatedDateUTC")))


def to_canonical(entity_type: str, external_id: str, data: Mapping[str, Any], refs: RefResolver) -> Entity:
    """Dispatch by canonical type; the record's canonical id comes from ``refs``."""
    canonical_id = refs.canonical_id(entity_type, external_id)
    if entity_type == "customer":
        return contact_to_customer(data, canonical_id)
    if entity_type == "product":
        return item_to_product(data, canonical_id)
    if entity_type == "invoice":
        return invoice_to_canonical(data, canonical_id, refs)
    if entity_type == "payment":
        return payment_to_canonical(data, canonical_id, refs)
    if entity_type == "credit_note":
        return credit_note_to_canonical(data, canonical_id, refs)
    if entity_type == "refund":
        return refund_to_canonical(data, canonical_id, refs)
    raise MappingError(f"Xero does not hold {entity_type} records")


# --------------------------------------------------------------------------- from canonical


TaxRates = Mapping[str, tuple[Decimal, ...]]  # the organisation's TaxType -> its components' rates


def _tax_type(line: InvoiceLine, tax_types: Mapping[str, str], tax_rates: TaxRates | None = None) -> str:
    """The line's Xero TaxType from ``[tax_codes.xero]`` (``mapping.tax_codes``: rate, reason and
    country); none fitting is a mapping error that holds the document, naming the key to add. A
    line of several taxes needs a tax rate of the organisation with one component per tax, at
    the same rates (a combined rate such as "GST + PST (BC)"): Xero splits the line's tax over
    them, so any other rate would report the taxes in the wrong boxes."""
    try:
        code = TaxCodes(tax_types, "xero").code_for(line)
    except TaxCodeMissing as exc:
        raise MappingError(str(exc)) from None
    if line.taxes:
        wanted = sorted(Decimal(t.rate) for t in line.taxes)
        has = sorted((tax_rates or {}).get(code, ()))
        if has != wanted:
            said = " + ".join(f"{rate_text(r)}%" for r in has) if has else "unknown to the hub"
            raise MappingError(f"Xero tax rate {code!r} has the components {said} but the line "
                               f"{line.description!r} is taxed {' + '.join(rate_text(r) + '%' for r in wanted)}: "
                               "name a tax rate with one component per tax in [tax_codes.xero]")
    return code


def _line_items(lines: Sequence[InvoiceLine], refs: RefResolver, account_code: str,
                tax_types: Mapping[str, str], *, currency: str, discounts: Sequence[Discount] = (),
                discountable: bool = True, tax_rates: TaxRates | None = None) -> list[dict[str, Any]]:
    """Xero line items that total exactly what the source's lines do (``mapping.lines``): the
    unit at Xero's 4 places when quantity x unit gives the amount back, each line's discount as
    ``DiscountAmount`` — or, on a credit note (Xero takes no discount there), netted into the
    line amount."""
    out = []
    shares = line_discounts(lines, discounts, currency)
    for line, discount in zip(lines, shares, strict=True):
        amount = line.amount if discountable or not discount else line.amount - Money(discount, currency)
        quantity, unit = exact_quantity_and_unit(line.quantity, amount, XERO_UNIT_PLACES)
        item: dict[str, Any] = {"Description": described(line, quantity), "Quantity": quantity,
                                "UnitAmount": unit, "AccountCode": account_code,
                                "TaxType": _tax_type(line, tax_types, tax_rates)}
        if discountable and discount:
            item["DiscountAmount"] = Money(discount, currency).to_decimal()
        if line.tax_amount is not None and line.tax_rate is not None:
            item["TaxAmount"] = line.tax_amount.to_decimal()
        item_id = refs.external_id("product", line.product_id) if line.product_id else None
        if item_id:
            item["_item_id"] = item_id  # Xero takes an item by its Code: the writer names it
        out.append(item)
    return out


def customer_to_contact(entity: Customer) -> dict[str, Any]:
    data: dict[str, Any] = {"Name": entity.name, "ContactStatus": "ACTIVE" if entity.active else "ARCHIVED"}
    if entity.email:
        data["EmailAddress"] = entity.email
    if entity.phone:
        data["Phones"] = [{"PhoneType": "DEFAULT", "PhoneNumber": entity.phone}]
    if entity.address:
        a = entity.address
        data["Addresses"] = [{"AddressType": "STREET", "AddressLine1": a.line1 or "", "AddressLine2": a.line2 or "",
                              "City": a.city or "", "Region": a.region or "", "PostalCode": a.postal_code or "",
                              "Country": a.country or ""}]
    if entity.currency:
        data["DefaultCurrency"] = entity.currency
    if entity.tax_ids:
        data["TaxNumber"] = entity.tax_ids[0].value
    return data


def product_to_item(entity: Product) -> dict[str, Any]:
    code = entity.sku or entity.id.replace("-", "")[:30]
    return {"Code": code[:30], "Name": entity.name[:50], "Description": entity.description or entity.name,
            "IsSold": True}


def invoice_to_xero(entity: Invoice, refs: RefResolver, *, account_code: str,
                    tax_types: Mapping[str, str] = DEFAULT_TAX_TYPES,
                    tax_rates: TaxRates | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Type": "ACCREC", "Contact": {"ContactID": _need_external(refs, "customer", entity.customer_id)},
        "LineAmountTypes": "Inclusive" if entity.tax_inclusive else "Exclusive",
        "LineItems": _line_items(entity.lines, refs, account_code, tax_types, currency=entity.currency,
                                 discounts=entity.discounts, tax_rates=tax_rates),
        "CurrencyCode": entity.currency, "Status": INVOICE_STATUS_TO_XERO.get(entity.status, "DRAFT")}
    if entity.number:
        data["InvoiceNumber"] = entity.number
    if entity.issued_at:
        data["Date"] = _iso_day(entity.issued_at)
    if entity.due_date:
        data["DueDate"] = _iso_day(entity.due_date)
    # Only a rate read back from Xero is in Xero's direction (QuickBooks' ``exchange_rate`` is
    # home units per foreign unit); the writer drops it on a base-currency document.
    rate = entity.extra.get("currency_rate")
    data["_fx"] = fx_hint(entity.currency, xero_rate=Decimal(str(rate)) if rate else None)
    return data


def payment_to_xero(entity: Payment, refs: RefResolver, *, account_code: str) -> dict[str, Any]:
    data: dict[str, Any] = {"Invoice": {"InvoiceID": _need_external(refs, "invoice", entity.invoice_id)},
                            "Account": {"Code": account_code}, "Amount": entity.amount.to_decimal()}
    if entity.paid_at:
        data["Date"] = _iso_day(entity.paid_at)
    data["_fx"] = fx_hint(entity.amount.currency, settled_in=entity.net.currency if entity.net else None,
                          settlement_rate=entity.exchange_rate)
    return data


def credit_note_to_xero(entity: CreditNote, refs: RefResolver, *, account_code: str,
                        tax_types: Mapping[str, str] = DEFAULT_TAX_TYPES,
                        tax_rates: TaxRates | None = None) -> dict[str, Any]:
    # a note on a tax-inclusive invoice says so, as its invoice did (Xero's LineAmountTypes is
    # the document's: a mix goes as Exclusive, inclusive lines netted, the totals the same)
    inclusive = all_inclusive(entity.lines)
    lines = entity.lines if inclusive else exclusive_lines(entity.lines)
    data: dict[str, Any] = {
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": _need_external(refs, "customer", entity.customer_id)},
        "LineAmountTypes": "Inclusive" if inclusive else "Exclusive",
        "LineItems": _line_items(lines, refs, account_code, tax_types, currency=entity.currency,
                                 discountable=False, tax_rates=tax_rates),
        "CurrencyCode": entity.currency, "Status": "VOIDED" if entity.status == "void" else "AUTHORISED"}
    if entity.number:
        data["CreditNoteNumber"] = entity.number
    if entity.issued_at:
        data["Date"] = _iso_day(entity.issued_at)
    if entity.invoice_id:
        invoice = refs.external_id("invoice", entity.invoice_id)
        if invoice:
            data["_allocate_to"] = invoice
    return data


def refund_to_xero(entity: Refund, refs: RefResolver, *, account_code: str,
                   tax_types: Mapping[str, str] = DEFAULT_TAX_TYPES,
                   tax_rates: TaxRates | None = None) -> dict[str, Any]:
    """A refund is an ACCRECCREDIT credit note the writer pays out (``_pay_out``, a refund
    payment), with the lines and tax of its credit note or its invoice's tax reversed
    (``mapping.postings`` fills ``lines`` when it is pushed); with no lines, one untaxed line."""
    customer = entity.customer_id
    data: dict[str, Any] = {
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": _need_external(refs, "customer", customer)},
        "LineAmountTypes": "Exclusive" if entity.lines else "NoTax", "CurrencyCode": entity.amount.currency,
        "Status": "VOIDED" if entity.status == "canceled" else "AUTHORISED",
        "LineItems": _line_items(entity.lines, refs, account_code, tax_types, currency=entity.amount.currency,
                                 discountable=False, tax_rates=tax_rates) if entity.lines else
        [{"Description": f"Refund{': ' + entity.reason if entity.reason else ''}",
          "Quantity": Decimal(1), "UnitAmount": entity.amount.to_decimal(),
          "AccountCode": account_code, "TaxType": tax_types.get("0", "NONE")}]}
    if entity.refunded_at:
        data["Date"] = _iso_day(entity.refunded_at)
    if entity.invoice_id:
        data["_allocate_to"] = _need_external(refs, "invoice", entity.invoice_id)
    return data


def from_canonical(entity: Entity, refs: RefResolver, *, sales_account: str = "200",
                   payment_account: str = "090",
                   tax_types: Mapping[str, str] = DEFAULT_TAX_TYPES,
                   tax_rates: TaxRates | None = None) -> dict[str, Any]:
    """Xero JSON for a canonical entity (without the hub marker; the writer adds it);
    ``tax_rates`` the organisation's, read by the connector (what a line of several taxes needs)."""
    if isinstance(entity, Customer):
        return customer_to_contact(entity)
    if isinstance(entity, Product):
        return product_to_item(entity)
    if isinstance(entity, Invoice):
        return invoice_to_xero(entity, refs, account_code=sales_account, tax_types=tax_types, tax_rates=tax_rates)
    if isinstance(entity, Payment):
        return payment_to_xero(entity, refs, account_code=payment_account)
    if isinstance(entity, CreditNote):
        return credit_note_to_xero(entity, refs, account_code=sales_account, tax_types=tax_types,
                                   tax_rates=tax_rates)
    if isinstance(entity, Refund):
        return refund_to_xero(entity, refs, account_code=sales_account, tax_types=tax_types, tax_rates=tax_rates)
    raise MappingError(f"Xero does not hold {entity.type} records")
