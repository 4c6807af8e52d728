"""A customer's open balance as each ledger keeps it (issue 18, item 7: every scenario asserts
it), read from the emulators' own tables: QuickBooks Customer.Balance and Xero Contact
Balances.AccountsReceivable.Outstanding (what GET Contacts/{id} answers), in minor units."""

from __future__ import annotations

from connectors.xero.emulator.contacts import contact_balances
from tests.e2e.conftest import Company
from tests.e2e.test_scenarios import minor, qbo_invoice, xero_invoice


def customer_balances(company: Company, number: str, currency: str = "USD") -> tuple[int, int]:
    """(QuickBooks, Xero) balance of the customer of invoice ``number``, in its home currency's
    minor units (a contact with nothing open has no balance there: 0)."""
    qbo_id = qbo_invoice(company, number)["CustomerRef"]["value"]
    qbo = minor(str(company.qbo.table("Customer")[qbo_id]["Balance"]), currency)
    contact = xero_invoice(company, number)["Contact"]["ContactID"]
    sums = contact_balances(company.xero, company.emus.xero.emulator.clock.now().date())
    outstanding = (sums.get(contact) or {}).get("AccountsReceivable", {}).get("Outstanding", 0)
    return qbo, minor(str(outstanding), currency)
