"""What the QuickBooks emulator's answers look like on the wire: names and constants, Pacific
timestamps, amounts as ``Decimal``, the ``Fault`` envelope, the 401 and 429 bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from mapping.exact_json import dumps

PACIFIC = ZoneInfo("America/Los_Angeles")
DEFAULT_REALM = "9130350000000001"
CENT = Decimal("0.01")
BUSINESS_RULE = "A business validation error has occurred while processing your request"
REQUIRED = "Required param missing, need to supply the required value for the API"

# url segment -> QBO entity name
ENTITIES = {
    "customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment",
    "creditmemo": "CreditMemo", "refundreceipt": "RefundReceipt", "account": "Account",
    "taxcode": "TaxCode", "taxrate": "TaxRate", "companyinfo": "CompanyInfo",
    "preferences": "Preferences", "exchangerate": "ExchangeRate",
    "transfer": "Transfer", "purchase": "Purchase",
}
BY_NAME = {v.lower(): v for v in ENTITIES.values()}
# Every QuickBooks Online entity (the IntuitObject substitution group of Intuit's XSD,
# Finance.xsd and IntuitNamesTypes.xsd; tests/connectors/quickbooks/test_qbo_entities.py keeps
# it equal to the XSD). One the emulator does not model queries as an empty company's does.
INTUIT_ENTITIES = (
    "Account", "Attachable", "Bill", "BillPayment", "Budget", "ChargeCredit", "Class", "Company",
    "CompanyCurrency", "CompanyInfo", "CreditCardPaymentTxn", "CreditMemo", "Customer", "CustomerType",
    "Department", "Deposit", "EmailDeliveryInfo", "Employee", "Estimate", "ExchangeRate", "FixedAsset",
    "InventoryAdjustment", "InventorySite", "Invoice", "Item", "JournalCode", "JournalEntry",
    "MasterAccount", "OtherName", "Payment", "PaymentMethod", "Preferences", "PriceLevel", "Purchase",
    "PurchaseOrder", "QbdtEntityIdMapping", "RecurringTransaction", "RefundReceipt", "ReimburseCharge",
    "SalesOrder", "SalesReceipt", "SalesRep", "StatementCharge", "Status", "SyncActivity", "TDSMetadata",
    "Tag", "Task", "TaxAgency", "TaxClassification", "TaxCode", "TaxPayment", "TaxRate", "TaxReturn",
    "TaxService", "Term", "TimeActivity", "Transfer", "UserAlert", "Vendor", "VendorCredit", "VendorType")
UNMODELLED = {name.lower(): name for name in INTUIT_ENTITIES if name.lower() not in BY_NAME}
NAME_LISTS = {"Customer", "Item", "Account", "TaxCode", "TaxRate"}  # deactivated, never deleted
SALES_DOCS = {"Invoice", "CreditMemo", "RefundReceipt"}
TRANSACTIONS = SALES_DOCS | {"Payment", "Transfer", "Purchase"}  # the last two: banking.py
READ_ONLY = {"CompanyInfo", "Preferences", "TaxCode", "TaxRate"}


def qbo_time(value: datetime) -> str:
    """QBO renders timestamps in Pacific time with an offset, to the second."""
    return value.astimezone(PACIFIC).isoformat(timespec="seconds")


def money(value: Any) -> Decimal:
    """Amounts arrive as JSON numbers or (from python-quickbooks) decimal strings."""
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise Fault(2050, "Invalid Number", f"{value!r} is not a number") from None


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def clean(value: Any) -> Any:
    """Drop the ``""`` and ``null`` the SDK sends for unset attributes (dates, amounts, refs)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v not in ("", None)}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


class Fault(Exception):
    """One QBO fault; rendered as ``{"Fault": {"Error": [...], "type": ...}}``."""

    def __init__(self, code: int, message: str, detail: str = "", status: int = 400,
                 element: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.detail, self.status, self.element = code, message, detail, status, element

    def body(self) -> dict[str, Any]:
        kind = "ValidationFault" if self.code < 10000 else "SystemFault"
        return {"Error": [{"Message": self.message, "Detail": self.detail or self.message,
                           "code": str(self.code), "element": self.element}], "type": kind}


def fault_json(fault: Fault, now: datetime) -> web.Response:
    return web.json_response({"Fault": fault.body(), "time": qbo_time(now)}, status=fault.status)


def json_response(data: Any, status: int = 200) -> web.Response:
    """Bodies holding ``Decimal`` amounts, written exactly."""
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def auth_fault(detail: str, now: datetime) -> web.Response:
    """The 401 an expired or unknown access token gets (code 3200)."""
    body = {"warnings": None, "intuitObject": None,
            "fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                 "detail": detail, "code": "3200", "element": None}],
                      "type": "AUTHENTICATION"},
            "time": qbo_time(now)}
    return web.json_response(body, status=401, headers={"WWW-Authenticate": 'Bearer realm="Intuit"'})


def throttled(fmt: str, now: datetime) -> web.Response:
    """The 429 real QBO sends: XML by default, whatever the request asked for."""
    if fmt == "json":
        return fault_json(Fault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                "The request limit was reached.", status=429), now)
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{qbo_time(now)}">'
           '<Fault type="SERVICE"><Error code="3001" element="">'
           '<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>'
           '<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>')
    return web.Response(text=xml, status=429, content_type="application/xml")
