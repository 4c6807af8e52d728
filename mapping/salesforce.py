"""Salesforce records <-> canonical entities. Pure functions, exact money.

Inputs are the connector's ``Record.data``: the SOQL row without ``attributes``, with numbers as
decimal strings (never float), parent fields nested (``PricebookEntry.Billing_Interval__c``) and
child sub-queries as lists (``Contacts``, ``OpportunityLineItems``).

* customer <- Account. Email: the field named by config ``email_field`` (e.g. ``Billing_Email__c``)
  when set, else the first Contact (by CreatedDate) that has an email. ``Billing_Status__c``
  (none / active / past_due / canceled) travels in ``extra["billing_status"]``; the hub derives
  it (``sync.billing``) and never takes Salesforce's copy, so an Account is sent ``none`` until
  the hub knows better.
* product <- Product2; price <- PricebookEntry (``Billing_Interval__c`` month/year = recurring).
* deal <- Opportunity with its OpportunityLineItems; ``won`` when ``IsWon`` or StageName is
  "Closed Won". Price canonical ids of the lines are in ``extra["line_price_ids"]``.
* invoice <-> the custom invoice object (``Billing_Invoice__c``): a summary mirror with no lines,
  so ``subtotal == total`` and ``extra["summary_only"] = True``. ``Amount_Paid__c`` is what
  payments settled, ``Amount_Credited__c`` what credit settled (credit notes applied before
  payment, the customer's credit balance, a negative invoice's own credit), so the amount still
  due, as every ledger's balance, is ``Amount__c - Amount_Paid__c - Amount_Credited__c``.
* Currency: a multi-currency org's records carry ``CurrencyIsoCode`` (read and written); a
  single-currency org has no such field, so reads take the org's currency as the default and the
  writers, given ``org_currency``, send none and refuse a record in another currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from mapping.model import Address, Customer, Deal, DealLine, Invoice, Price, Product, utc
from mapping.money import Money, MoneyError

if TYPE_CHECKING:
    from mapping.refs import RefResolver

INVOICE_STATUSES = {"draft": "draft", "open": "open", "sent": "open", "overdue": "open",
                    "paid": "paid", "void": "void", "voided": "void", "uncollectible": "uncollectible"}
INTERVALS = {"month": "month", "monthly": "month", "year": "year", "yearly": "year",
             "annual": "year", "week": "week", "day": "day"}


class SalesforceMappingError(ValueError):
    """A record that cannot be mapped exactly; the message names the field."""


# --------------------------------------------------------------------------- value helpers


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    return str(value)


def decimal_of(value: Any, field: str) -> Decimal:
    """An exact Decimal from a Salesforce number (decimal string, int or Decimal; never float)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise SalesforceMappingError(f"{field}: {value!r} is not an exact decimal")
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise SalesforceMappingError(f"{field}: {value!r} is not a number") from None


def money_of(value: Any, currency: str, field: str) -> Money:
    try:
        return Money.from_decimal(decimal_of(0 if value is None else value, field), currency)
    except MoneyError as exc:
        raise SalesforceMappingError(f"{field}: {exc}") from None


def parse_sf_datetime(value: Any) -> datetime | None:
    """``2026-11-01T12:00:00.000+0000`` (or ISO with Z / +00:00) -> aware UTC datetime."""
    if value in (None, ""):
        return None
    text = str(value).replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise SalesforceMappingError(f"not a Salesforce date-time: {value!r}") from None


def _date(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise SalesforceMappingError(f"{field}: {value!r} is not a date") from None


def _currency(data: Mapping[str, Any], default: str) -> str:
    return (_str(data, "CurrencyIsoCode") or default).upper()


def _children(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if isinstance(value, Mapping):  # raw sub-query shape {"records": [...]}
        value = value.get("records")
    return [v for v in value or [] if isinstance(v, Mapping)]


def _address(data: Mapping[str, Any], kind: str) -> Address | None:
    parts = {p: _str(data, f"{kind}{p}") for p in ("Street", "City", "State", "PostalCode", "Country")}
    if not any(parts.values()):
        return None
    country = parts["Country"]
    lines = (parts["Street"] or "").split("\n", 1)
    return Address(line1=lines[0] or None, line2=lines[1] if len(lines) > 1 else None,
                   city=parts["City"], region=parts["State"], postal_code=parts["PostalCode"],
                   country=country.upper() if country and len(country) == 2 else country)


def _address_fields(address: Address | None, kind: str) -> dict[str, Any]:
    if address is None:
        return {}
    street = "\n".join(x for x in (address.line1, address.line2) if x) or None
    return {f"{kind}Street": street, f"{kind}City": address.city, f"{kind}State": address.region,
            f"{kind}PostalCode": address.postal_code, f"{kind}Country": address.country}


def _domain(website: str | None) -> str | None:
    if not website:
        return None
    host = website.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.removeprefix("www.") or None


def _updated(data: Mapping[str, Any]) -> datetime | None:
    return parse_sf_datetime(data.get("SystemModstamp") or data.get("LastModifiedDate"))


def _parent(data: Mapping[str, Any], relationship: str, field: str) -> Any:
    parent = data.get(relationship)
    return parent.get(field) if isinstance(parent, Mapping) else None


# --------------------------------------------------------------------------- to canonical


def account_to_customer(data: Mapping[str, Any], refs: RefResolver, *, email_field: str | None = None,
                        default_currency: str = "USD") -> Customer:
    email = _str(data, email_field) if email_field else None
    if email is None:
        for contact in _children(data, "Contacts"):
            if _str(contact, "Email"):
                email = _str(contact, "Email")
                break
    extra: dict[str, Any] = {}
    if _str(data, "Billing_Status__c"):
        extra["billing_status"] = _str(data, "Billing_Status__c")
    return Customer(
        id=refs.canonical_id("customer", str(data["Id"])), name=_str(data, "Name") or "",
        email=email, phone=_str(data, "Phone"), address=_address(data, "Billing"),
        shipping_address=_address(data, "Shipping"), currency=_currency(data, default_currency),
        domain=_domain(_str(data, "Website")), updated_at=_updated(data), extra=extra)


def product2_to_product(data: Mapping[str, Any], refs: RefResolver) -> Product:
    return Product(id=refs.canonical_id("product", str(data["Id"])), name=_str(data, "Name") or "",
                   description=_str(data, "Description"), sku=_str(data, "ProductCode"),
                   active=bool(data.get("IsActive", True)), updated_at=_updated(data))


def pricebook_entry_to_price(data: Mapping[str, Any], refs: RefResolver, *,
                             default_currency: str = "USD") -> Price:
    currency = _currency(data, default_currency)
    interval = INTERVALS.get((_str(data, "Billing_Interval__c") or "").lower())
    product = _str(data, "Product2Id")
    return Price(id=refs.canonical_id("price", str(data["Id"])),
                 product_id=refs.canonical_id("product", product) if product else "",
                 unit_amount=money_of(data.get("UnitPrice"), currency, "UnitPrice"),
                 recurring_interval=interval, active=bool(data.get("IsActive", True)),
                 nickname=_str(data, "Name"), updated_at=_updated(data))


def opportunity_to_deal(data: Mapping[str, Any], refs: RefResolver, *,
                        default_currency: str = "USD") -> Deal:
    currency = _currency(data, default_currency)
    lines: list[DealLine] = []
    price_ids: list[str | None] = []
    for item in _children(data, "OpportunityLineItems"):
        product = _str(item, "Product2Id")
        entry = _str(item, "PricebookEntryId")
        interval = INTERVALS.get(str(_parent(item, "PricebookEntry", "Billing_Interval__c") or "").lower())
        lines.append(DealLine(
            product_id=refs.canonical_id("product", product) if product else None,
            description=_str(item, "Description") or _str(item, "Name")
            or str(_parent(item, "Product2", "Name") or ""),
            quantity=decimal_of(item.get("Quantity") or 0, "OpportunityLineItem.Quantity"),
            unit_amount=money_of(item.get("UnitPrice"), currency, "OpportunityLineItem.UnitPrice"),
            recurring_interval=interval))
        price_ids.append(refs.canonical_id("price", entry) if entry else None)
    stage = _str(data, "StageName") or ""
    won = bool(data.get("IsWon")) or stage == "Closed Won"
    closed = bool(data.get("IsClosed")) or stage.startswith("Closed")
    account = _str(data, "AccountId")
    extra: dict[str, Any] = {"line_price_ids": price_ids} if lines else {}
    return Deal(id=refs.canonical_id("deal", str(data["Id"])),
                customer_id=refs.canonical_id("customer", account) if account else "",
                name=_str(data, "Name") or "", stage=stage, won=won, currency=currency,
                amount=money_of(data.get("Amount"), currency, "Amount"), lines=tuple(lines),
                closed_at=_date(data.get("CloseDate"), "CloseDate") if closed else None,
                updated_at=_updated(data), extra=extra)


def billing_invoice_to_invoice(data: Mapping[str, Any], refs: RefResolver, *,
                               default_currency: str = "USD") -> Invoice:
    currency = _currency(data, default_currency)
    total = money_of(data.get("Amount__c"), currency, "Amount__c")
    status = INVOICE_STATUSES.get((_str(data, "Status__c") or "open").lower(), "open")
    paid_value = data.get("Amount_Paid__c")
    paid = money_of(paid_value, currency, "Amount_Paid__c") if paid_value is not None else (
        total if status == "paid" else Money.zero(currency))
    credited_value = data.get("Amount_Credited__c")  # absent in an org set up before it existed
    credited = money_of(credited_value, currency, "Amount_Credited__c") if credited_value is not None \
        else Money.zero(currency)
    paid_date = _date(data.get("Paid_Date__c"), "Paid_Date__c")
    account = _str(data, "Account__c")
    opportunity = _str(data, "Opportunity__c")
    return Invoice(
        id=refs.canonical_id("invoice", str(data["Id"])),
        customer_id=refs.canonical_id("customer", account) if account else "",
        number=_str(data, "Invoice_Number__c") or _str(data, "Name"), status=status,
        currency=currency, due_date=_date(data.get("Due_Date__c"), "Due_Date__c"),
        subtotal=total, total=total, amount_paid=paid, amount_due=total - paid - credited,
        deal_id=refs.canonical_id("deal", opportunity) if opportunity else None,
        paid_at=datetime(paid_date.year, paid_date.month, paid_date.day, tzinfo=UTC) if paid_date else None,
        updated_at=_updated(data), extra={"summary_only": True})


# --------------------------------------------------------------------------- from canonical


def currency_field(currency: str | None, org_currency: str | None, what: str) -> dict[str, Any]:
    """``CurrencyIsoCode`` for a multi-currency org (``org_currency`` None). A single-currency
    org has no such field and holds only its own currency: nothing to send when the record is
    in it (or names none), and a record in another currency cannot be written there at all."""
    if org_currency is None:
        return {"CurrencyIsoCode": currency} if currency else {}
    if currency and currency.upper() != org_currency.upper():
        raise SalesforceMappingError(
            f"{what} is in {currency.upper()}, but this Salesforce org has a single currency "
            f"({org_currency.upper()}) and cannot hold {currency.upper()} amounts; it is not written "
            "there (multiple currencies are enabled in Salesforce Setup > Company Information, and "
            "cannot be switched off again)")
    return {}


def _required_ref(refs: RefResolver, entity_type: str, canonical_id: str, what: str) -> str:
    external = refs.external_id(entity_type, canonical_id) if canonical_id else None
    if external is None:
        raise SalesforceMappingError(
            f"{what}: {entity_type} {canonical_id or '(none)'} is not linked to a Salesforce record yet")
    return external


def customer_to_account(entity: Customer, refs: RefResolver, *, email_field: str | None = None,
                        org_currency: str | None = None) -> dict[str, Any]:
    """``org_currency``: a single-currency org's currency (None: the org has multiple)."""
    body: dict[str, Any] = {"Name": entity.name, "Phone": entity.phone,
                            **_address_fields(entity.address, "Billing"),
                            **_address_fields(entity.shipping_address, "Shipping")}
    if entity.domain:
        body["Website"] = entity.domain
    body.update(currency_field(entity.currency, org_currency, f"customer {entity.id}"))
    if email_field:
        body[email_field] = entity.email
    body["Billing_Status__c"] = str(entity.extra.get("billing_status") or "none")
    return body


def product_to_product2(entity: Product, refs: RefResolver) -> dict[str, Any]:
    return {"Name": entity.name, "Description": entity.description, "ProductCode": entity.sku,
            "IsActive": entity.active}


def price_to_pricebook_entry(entity: Price, refs: RefResolver, *,
                             org_currency: str | None = None) -> dict[str, Any]:
    currency = entity.unit_amount.currency
    return {"Product2Id": _required_ref(refs, "product", entity.product_id, "PricebookEntry.Product2Id"),
            "UnitPrice": entity.unit_amount.to_decimal(),
            **currency_field(currency, org_currency, f"price {entity.id}"),
            "IsActive": entity.active, "Billing_Interval__c": entity.recurring_interval}


def deal_to_opportunity(entity: Deal, refs: RefResolver, *, org_currency: str | None = None) -> dict[str, Any]:
    """The Opportunity header (line items are not written by the hub)."""
    body: dict[str, Any] = {
        "Name": entity.name, "StageName": entity.stage or ("Closed Won" if entity.won else "Prospecting"),
        "AccountId": _required_ref(refs, "customer", entity.customer_id, "Opportunity.AccountId"),
        **currency_field(entity.currency, org_currency, f"deal {entity.id}"),
        "Amount": entity.amount.to_decimal()}
    if entity.closed_at:
        body["CloseDate"] = entity.closed_at.isoformat()
    return body


def credited(invoice: Invoice) -> Money:
    """What credit, not payment, settled of ``invoice``: Stripe's total less amount paid less
    what remains (a void or draft settles nothing). A zero amount is zero in any currency (a
    record built with defaults has USD zeros beside its own currency's total)."""
    if invoice.status in ("void", "draft"):
        return Money.zero(invoice.total.currency)
    credit = invoice.total
    for amount in (invoice.amount_paid, invoice.amount_due):
        if amount.minor:
            credit = credit - amount
    return credit


def invoice_to_billing_invoice(entity: Invoice, refs: RefResolver, *,
                               org_currency: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Name": (entity.number or entity.id)[:80], "Invoice_Number__c": entity.number,
        "Account__c": _required_ref(refs, "customer", entity.customer_id, "Billing_Invoice.Account__c"),
        "Amount__c": entity.total.to_decimal(), "Amount_Paid__c": entity.amount_paid.to_decimal(),
        "Amount_Credited__c": credited(entity).to_decimal(),
        **currency_field(entity.currency, org_currency, f"invoice {entity.number or entity.id}"),
        "Status__c": entity.status.capitalize(),
        "Due_Date__c": entity.due_date.isoformat() if entity.due_date else None,
        "Paid_Date__c": entity.paid_at.date().isoformat() if entity.paid_at else None}
    if entity.deal_id:
        deal = refs.external_id("deal", entity.deal_id)
        if deal is not None:
            body["Opportunity__c"] = deal
    return body
