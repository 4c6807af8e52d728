"""The Xero endpoints every organisation answers, though billhub's ledger model has nothing in
them: what an organisation that never used the feature lists (issue 19).

A Xero client such as tap-xero or pyxero reads every collection it knows; real Xero answers a
collection the organisation has nothing of with the envelope and an empty list (``{"Id", "Status":
"OK", "ProviderName", "DateTimeUTC", "Overpayments": []}``), never an error, so the emulator must
too. Envelope keys, parameters and paging follow xero_accounting.yaml (16.1.0):

* empty: Overpayments, Prepayments, ManualJournals, PurchaseOrders (these four carry the spec's
  ``pagination`` block when ``page`` is asked), Quotes, Journals (``offset``), ExpenseClaims,
  Receipts, RepeatingInvoices, TrackingCategories, ContactGroups, LinkedTransactions, BatchPayments,
  Budgets. Journals stay empty although real Xero journals every posted document: billhub reads
  no journal, so the emulator does not derive them (a known gap, not an answer real Xero gives
  for an organisation with invoices).
* what comes with every organisation: the default branding theme ("Standard", sort order 0, the
  spec's example) and the subscriber, its one user. They are made with the tenant, so their
  dates are the tenant's creation. Currencies always list the base currency (Xero's list starts
  with it and only grows), whatever currency a test made the organisation's after its creation.

``where`` is checked even on an empty list (a malformed filter is Xero's 400 whatever the data),
``If-Modified-Since`` filters Users as it does every dated collection, and a record asked for by
id that is not there is Xero's 404. The accounting Employees endpoints are not here: Xero removed
them on 28 April 2026 (spec 9.1.0 deprecated them, 16.x has no /Employees), so they answer 404 as
any unknown path does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from connectors.xero.emulator.store import Tenant, XeroStore
from connectors.xero.emulator.validation import Invalid
from connectors.xero.emulator.where import filtered, order

# collection -> its id field (the spec's schema); the lists an unused feature answers empty
EMPTY: dict[str, str] = {
    "Overpayments": "OverpaymentID", "Prepayments": "PrepaymentID", "ManualJournals": "ManualJournalID",
    "PurchaseOrders": "PurchaseOrderID", "Quotes": "QuoteID", "Journals": "JournalID",
    "ExpenseClaims": "ExpenseClaimID", "Receipts": "ReceiptID", "RepeatingInvoices": "RepeatingInvoiceID",
    "TrackingCategories": "TrackingCategoryID", "ContactGroups": "ContactGroupID",
    "LinkedTransactions": "LinkedTransactionID", "BatchPayments": "BatchPaymentID", "Budgets": "BudgetID",
}
# what every organisation has from the day it is created
DEFAULTS: dict[str, str] = {"BrandingThemes": "BrandingThemeID", "Users": "UserID"}
ORG_LISTS: dict[str, str] = {**EMPTY, **DEFAULTS, "Currencies": "Code"}
# ISO 4217 names, as Xero describes a currency, for a base currency the seeded list lacks
CURRENCY_NAMES = {"CAD": "Canadian Dollar", "CHF": "Swiss Franc", "DKK": "Danish Krone", "HKD": "Hong Kong Dollar",
                  "INR": "Indian Rupee", "NOK": "Norwegian Krone", "SEK": "Swedish Krona",
                  "SGD": "Singapore Dollar", "ZAR": "South African Rand"}
# the responses whose schema has a ``pagination`` block (the spec's paged GETs)
PAGINATED = frozenset({"Overpayments", "Prepayments", "ManualJournals", "PurchaseOrders"})
NOT_FOUND = "The resource you're looking for cannot be found"


def _stable_id(tenant: Tenant, what: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.tenant_id}/{what}"))


def organisation_defaults(tenant: Tenant, created: datetime) -> dict[str, list[dict[str, Any]]]:
    """The default branding theme and the subscriber of a new organisation."""
    slug = "".join(ch for ch in tenant.name.lower() if ch.isalnum()) or "org"
    return {
        "BrandingThemes": [{"BrandingThemeID": _stable_id(tenant, "branding/standard"), "Name": "Standard",
                            "Type": "INVOICE", "SortOrder": 0, "CreatedDateUTC": created}],
        "Users": [{"UserID": _stable_id(tenant, "user/subscriber"), "EmailAddress": f"owner@{slug}.example",
                   "FirstName": "Organisation", "LastName": "Owner", "UpdatedDateUTC": created,
                   "IsSubscriber": True, "OrganisationRole": "FINANCIALADVISER"}],
    }


class OrgListsMixin(XeroStore):
    # the app's answers (app.XeroEmulator), one shape for every collection
    def _envelope(self, collection: str, items: list[dict[str, Any]], **extra: Any) -> web.Response:
        raise NotImplementedError

    @staticmethod
    def _validation_400(elements: list[dict[str, Any]], message: str = "A validation exception occurred"
                        ) -> web.Response:
        raise NotImplementedError

    def add_tenant(self, tenant_id: str, name: str, base_currency: str = "USD",
                   country_code: str | None = None) -> Tenant:
        tenant = super().add_tenant(tenant_id, name, base_currency, country_code)
        for collection, records in organisation_defaults(tenant, self.clock.now()).items():
            id_field = DEFAULTS[collection]
            tenant.table(collection).update({str(r[id_field]): r for r in records})
        return tenant

    def _org_list(self, request: web.Request, tenant: Tenant, collection: str) -> web.Response:
        """GET ``collection`` (one of ``ORG_LISTS``), whole or by id."""
        id_field = ORG_LISTS[collection]
        table = tenant.table(collection)
        if collection == "Currencies" and tenant.base_currency not in table:
            base = tenant.base_currency
            table = {**table, base: {"Code": base, "Description": CURRENCY_NAMES.get(base, base)}}
        if "id" in request.match_info:
            found = table.get(request.match_info["id"])
            if found is None:
                return web.Response(status=404, text=NOT_FOUND)
            return self._envelope(collection, [found])
        query = request.query
        items = list(table.values())
        try:
            items = filtered(items, query.get("where"), request.headers.get("If-Modified-Since"),
                             keep_unstamped=True)
            for name in ("page", "pageSize", "offset"):
                if name in query:
                    int(query[name])
        except (Invalid, ValueError) as exc:
            return self._validation_400([], str(exc))
        items = order(items, query.get("order", ""), id_field)
        extra: dict[str, Any] = {}
        if collection in PAGINATED and "page" in query:
            size = max(1, int(query.get("pageSize", 100)))
            extra["pagination"] = {"page": max(1, int(query["page"])), "pageSize": size,
                                   "pageCount": -(-len(items) // size), "itemCount": len(items)}
        return self._envelope(collection, items, **extra)

