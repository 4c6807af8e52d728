"""One QuickBooks company for the peer-conformance tests: the e2e company of emulators and the
hub (tests/e2e), with everything in QuickBooks written by billhub's own flows (Stripe customers,
products, invoices, card payments and refunds synced to the ledger), plus a Stripe credit note
on an open invoice that billhub books as a CreditMemo applied to it. Peers only read it.

The QuickBooks clock is the e2e company's (pinned at the wall time the company started), so a
peer reading "up to now" sees every record, and every write shares that second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import stripe

from sync.demo import QBO_REALM, STRIPE_KEY
from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import canonical

HISTORY_DAYS = 29  # the peer's start date: inside CDC's 30 days, which its deleted_objects stream reads


@dataclass(frozen=True)
class QboCompany:
    company: Company
    credited_invoice: str  # the QuickBooks invoice the credit memo was applied to

    @property
    def emulator(self) -> Any:
        return self.company.emus.quickbooks.emulator

    @property
    def realm_id(self) -> str:
        return QBO_REALM

    @property
    def base_url(self) -> str:
        return str(self.company.emus.quickbooks.base_url)

    def table(self, entity: str) -> dict[str, dict[str, Any]]:
        return dict(self.company.qbo.tables.get(entity, {}))

    def start_date(self) -> str:
        return (self.company.emus.now - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def hub_id(self, entity: str, external_id: str) -> str:
        return canonical(self.company, "quickbooks", entity, external_id)

    def close(self) -> None:
        self.company.hub.close()
        self.company.emus.stop()


def start_qbo_company(workdir: Path) -> QboCompany:
    company = start_company(workdir, customers=6, invoices=12)
    try:
        company.hub.engine.sync()
        credited = credit_an_open_invoice(company)
        company.hub.engine.sync()
        (invoice,) = [i for i in company.qbo.table("Invoice").values()
                      if canonical(company, "stripe", "invoice", credited) in str(i.get("PrivateNote") or "")]
        return QboCompany(company, str(invoice["Id"]))
    except Exception:
        company.hub.close()
        company.emus.stop()
        raise


def credit_an_open_invoice(company: Company) -> str:
    """A Stripe credit note of 5.00 on an open USD invoice already in QuickBooks, through the
    official SDK (no refund: billhub books it as a CreditMemo applied to the invoice). Returns
    the Stripe invoice's id."""
    emulator = company.stripe
    (invoice,) = [i for i in emulator.live("invoice") if i["status"] == "open" and i["currency"] == "usd"
                  and i.get("_lines") and i["amount_remaining"] >= 500][:1]
    http = stripe.RequestsClient(timeout=10)
    try:
        client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": company.emus.stripe.base_url},
                                     max_network_retries=0, http_client=http)
        note = client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [
            {"type": "invoice_line_item", "invoice_line_item": invoice["_lines"][0]["id"], "amount": 500}]})
    finally:
        http.close()  # type: ignore[no-untyped-call]  # stripe: RequestsClient.close is unannotated
    assert note.total == 500 and not note.refunds
    return str(invoice["id"])
