"""Xero's XML: request bodies read into the dict shape the JSON path uses, and answers written
as XML for a client whose ``Accept`` asks for it.

Xero's accounting API takes either format (``Content-Type: application/xml``/``text/xml`` or
``application/json``) and answers in XML by default, JSON on ``Accept: application/json`` (Xero's
"HTTP Requests and Responses" page). pyxero, for one, sends every PUT/POST body as XML
(``<Contacts><Contact>…`` or a lone ``<Contact>``) and asks for JSON answers. The emulator
answers JSON unless ``Accept`` names an XML type before JSON, as every client it serves asks for
JSON; a request with no ``Accept`` at all gets JSON here, where Xero would send XML.

XML has no arrays or types, so the reading follows Xero's element names: a list is a plural
element of singular children (``<LineItems><LineItem>``, ``<Tracking><TrackingCategory>``; an
empty known plural is an empty list), the boolean elements read ``true``/``false`` in any case,
amounts are exact Decimals, anything else is text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from connectors.xero import wire

XML_TYPES = ("application/xml", "text/xml")
# plural element -> its items' element (Xero's names; pyxero's table and the spec's schemas)
LISTS = {
    "Accounts": "Account", "Addresses": "Address", "Allocations": "Allocation", "Attachments": "Attachment",
    "BankTransactions": "BankTransaction", "BankTransfers": "BankTransfer", "BrandingThemes": "BrandingTheme",
    "ContactGroups": "ContactGroup", "ContactPersons": "ContactPerson", "Contacts": "Contact",
    "CreditNotes": "CreditNote", "Currencies": "Currency", "Elements": "DataContractBase",
    "ExpenseClaims": "ExpenseClaim", "InvoiceAddresses": "InvoiceAddress", "Invoices": "Invoice",
    "Items": "Item", "Journals": "Journal", "JournalLines": "JournalLine", "LineItems": "LineItem",
    "ManualJournals": "ManualJournal", "Options": "Option", "Organisations": "Organisation",
    "Overpayments": "Overpayment", "Payments": "Payment", "PaymentServices": "PaymentService",
    "Phones": "Phone", "Prepayments": "Prepayment", "PurchaseOrders": "PurchaseOrder", "Quotes": "Quote",
    "Receipts": "Receipt", "RepeatingInvoices": "RepeatingInvoice", "SalesTrackingCategories":
    "SalesTrackingCategory", "PurchasesTrackingCategories": "SalesTrackingCategory",
    "TaxComponents": "TaxComponent", "TaxRates": "TaxRate", "Tracking": "TrackingCategory",
    "TrackingCategories": "TrackingCategory", "Users": "User", "ValidationErrors": "ValidationError",
    "Warnings": "ValidationError",
}
BOOLEANS = frozenset({
    "IsSupplier", "IsCustomer", "IsSold", "IsPurchased", "IsTrackedAsInventory", "IsReconciled",
    "SentToContact", "HasAttachments", "HasErrors", "HasValidationErrors", "IsDiscounted", "HasAccount",
    "IncludeInEmails", "EnablePaymentsToAccount", "ShowInExpenseClaims", "IsCompound", "IsNonRecoverable",
    "CanApplyToAssets", "CanApplyToEquity", "CanApplyToExpenses", "CanApplyToLiabilities",
    "CanApplyToRevenue", "AddToWatchlist", "IsDeleted", "ShowOnCashBasisReports", "IsSubscriber",
})
AMOUNTS = frozenset({
    "Amount", "AppliedAmount", "BankAmount", "CurrencyRate", "DiscountAmount", "DiscountRate", "LineAmount",
    "Quantity", "SubTotal", "TaxAmount", "Total", "TotalTax", "UnitAmount", "UnitPrice", "Rate",
    "FromBankAccountAmount", "ToBankAccountAmount",
})
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


def is_xml(content_type: str, raw: bytes) -> bool:
    """A body to read as XML: declared so, or undeclared (no JSON type) and starting with ``<``."""
    if content_type in XML_TYPES:
        return True
    return "json" not in content_type and raw.lstrip()[:1] == b"<"


def read_body(raw: bytes, collection: str) -> dict[str, Any]:
    """An XML body as the JSON path's dict: ``{collection: [items]}`` whether the root is the
    plural (``<Invoices>``) or one item (``<Invoice>``); ``CreditNotes/{id}/Allocations`` roots
    read the same way (``<Allocations>``/``<Allocation>``, Xero's XML ``AppliedAmount`` as the
    JSON ``Amount``). ValueError if it is not XML."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ValueError(f"The request body could not be parsed as XML: {exc}") from None
    value = _read(root)
    if root.tag == collection or root.tag in LISTS:
        items = value if isinstance(value, list) else [value] if value != "" else []
        name = root.tag
    else:  # one item: <Contact>, <Payment>, <Allocation>
        items = [value]
        name = "Allocations" if root.tag == "Allocation" else collection
    if name == "Allocations":
        items = [{**{k: v for k, v in i.items() if k != "AppliedAmount"},
                  "Amount": i.get("Amount", i.get("AppliedAmount"))} if isinstance(i, dict) else i for i in items]
    return {name: items}


def _read(element: ET.Element) -> Any:
    children = list(element)
    tag = element.tag
    if not children:
        text = element.text or ""
        if tag in LISTS and not text.strip():
            return []
        return _scalar(tag, text)
    one = LISTS.get(tag) or _singular(tag)
    if all(child.tag == one for child in children):
        return [_read(child) for child in children]
    return {child.tag: _read(child) for child in children}


def _singular(tag: str) -> str:
    if tag.endswith("ies"):
        return tag[:-3] + "y"
    if tag.endswith("sses"):
        return tag[:-2]
    return tag[:-1] if tag.endswith("s") else "\0"


def _scalar(tag: str, text: str) -> Any:
    if tag in BOOLEANS and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    if tag in AMOUNTS and text.strip():
        try:
            return Decimal(text.strip())
        except InvalidOperation:
            return text
    return text


# -- answers -------------------------------------------------------------------------------


def wants_xml(accept: str) -> bool:
    """Whether ``Accept`` prefers an XML type to JSON (by q, then by order)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranked.append((-q, index, media.lower()))
    for _q, _i, media in sorted(ranked):
        if media in XML_TYPES:
            return True
        if media == "application/json":
            return False
    return False


def as_xml_response(response: web.Response, collection: str) -> web.Response:
    """The XML form of a JSON answer (plain-text answers such as a 404 stay as they are)."""
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return response
    body = wire.loads(response.body)
    if isinstance(body, dict) and "ErrorNumber" in body:
        element = to_element("ApiException", body, item_type=_element_name(collection))
    elif isinstance(body, dict) and "Status" in body and "Id" in body:
        element = to_element("Response", body)
    else:
        element = to_element("Allocation" if isinstance(body, dict) and "AllocationID" in body else "Response", body)
    element.set("xmlns:xsi", _XSI)
    element.set("xmlns:xsd", "http://www.w3.org/2001/XMLSchema")
    text = ET.tostring(element, encoding="unicode")
    answer = web.Response(status=response.status, text=text, content_type="text/xml", charset="utf-8")
    for name, value in response.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            answer.headers[name] = value
    return answer


def _element_name(collection: str) -> str:
    return LISTS.get(collection) or _singular(collection)


def to_element(tag: str, value: Any, *, item_type: str | None = None) -> ET.Element:
    """``value`` (a wire-form dict, list or scalar) as the element ``tag``: lists as singular
    children, MS-JSON dates as ISO text (XML carries no ``…String`` twins)."""
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, sub in value.items():
            if sub is None or (key.endswith("String") and key[:-6] in value):
                continue
            element.append(to_element(key, sub, item_type=item_type))
    elif isinstance(value, list):
        one = LISTS.get(tag) or _singular(tag)
        one = one if one != "\0" else "Item"
        for sub in value:
            child = to_element(one, sub, item_type=item_type)
            if one == "DataContractBase" and item_type:
                child.set("xsi:type", item_type)
            element.append(child)
    else:
        element.text = _text(value)
    return element


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        match = _MS_DATE.match(value)
        if match:
            moment = datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
            text = moment.strftime("%Y-%m-%dT%H:%M:%S")
            return text + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "")
    return str(value)
