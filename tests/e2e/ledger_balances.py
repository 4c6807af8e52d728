"""What every scenario of issue 18 reads and ends with (item 7): the ledger documents by number,
the customer's open balance as each ledger keeps it, and ``hub diff`` reporting nothing.

The balance is read from the emulators' own tables: QuickBooks Customer.Balance and Xero Contact
Balances.AccountsReceivable.Outstanding (what GET Contacts/{id} answers), in minor units. The
diff is the one ``hub diff`` runs: every entity the configured flows cover."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from connectors.xero.emulator.contacts import contact_balances
from hub import default_diff_entities
from mapping.money import Money
from tests.e2e.conftest import Company


def minor(value: Any, currency: str) -> int:
    return Money.from_decimal(Decimal(str(value)), currency.upper()).minor


def canonical(company: Company, connection: str, entity: str, external_id: str) -> str:
    with company.hub.store.transaction() as tx:
        found = tx.canonical_for(connection, entity, external_id)
    assert found is not None, f"{connection} {entity} {external_id} is not linked"
    return found


def qbo_invoice(company: Company, number: str) -> dict[str, Any]:
    (found,) = [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == number]
    return dict(found)


def xero_invoice(company: Company, number: str) -> dict[str, Any]:
    (found,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number]
    return dict(found)


def customer_balances(company: Company, number: str, currency: str = "USD") -> tuple[int, int]:
    """(QuickBooks, Xero) balance of the customer of invoice ``number``, in its home currency's
    minor units (a contact with nothing open has no balance there: 0)."""
    qbo_id = qbo_invoice(company, number)["CustomerRef"]["value"]
    qbo = minor(str(company.qbo.table("Customer")[qbo_id]["Balance"]), currency)
    contact = xero_invoice(company, number)["Contact"]["ContactID"]
    return qbo, xero_outstanding(company, contact, currency)


def balances_of(company: Company, stripe_customer: str, currency: str = "USD") -> tuple[int, int]:
    """(QuickBooks, Xero) balance of the ledger customers linked to a Stripe customer, for one
    with no invoice of its own in the ledgers (a downgrade's credit only)."""
    with company.hub.store.transaction() as tx:
        hub_id = tx.canonical_for("stripe", "customer", stripe_customer)
        assert hub_id is not None, f"Stripe customer {stripe_customer} is not linked"
        qbo_link, xero_link = tx.link_for(hub_id, "quickbooks", "customer"), tx.link_for(hub_id, "xero", "customer")
    assert qbo_link is not None and xero_link is not None
    qbo = minor(str(company.qbo.table("Customer")[qbo_link.external_id]["Balance"]), currency)
    return qbo, xero_outstanding(company, xero_link.external_id, currency)


def balances_as_stripe(company: Company, stripe_customer: str) -> int:
    """Assert that both ledgers say the customer owes what its open Stripe invoices still ask
    (``amount_remaining``, in its one currency; for a customer with no credit outside its
    invoices) and return that amount in minor units."""
    invoices = [i for i in company.stripe.table("invoice").values()
                if i["customer"] == stripe_customer and i["status"] == "open"]
    currencies = {i["currency"] for i in invoices} or {"usd"}
    assert len(currencies) == 1, currencies
    owed = sum(i["amount_remaining"] for i in invoices)
    assert balances_of(company, stripe_customer, currencies.pop()) == (owed, owed)
    return owed


def xero_outstanding(company: Company, contact: str, currency: str = "USD") -> int:
    """Xero's Balances.AccountsReceivable.Outstanding of ``contact``, in minor units."""
    sums = contact_balances(company.xero, company.emus.xero.emulator.clock.now().date())
    outstanding = (sums.get(contact) or {}).get("AccountsReceivable", {}).get("Outstanding", 0)
    return minor(str(outstanding), currency)


def hub_diff_is_clean(company: Company, also: Sequence[str] = ()) -> None:
    """``hub diff`` over what the flows cover (and ``also``, e.g. payouts) finds nothing."""
    entities = default_diff_entities(company.hub) + [e for e in also if e not in default_diff_entities(company.hub)]
    findings = company.hub.differ.run(entities).findings
    assert findings == [], [(f["kind"], f["entity"], f["system"], f["detail"]) for f in findings]
