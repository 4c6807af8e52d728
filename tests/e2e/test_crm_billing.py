"""Issue 18, the CRM side of the flow: the Account's billing status follows Stripe, a won deal's
subscription invoices name their Opportunity, and a prospect stays out of the ledgers until it
has something to book. The hub talks to the emulators through the official SDKs; every
assertion reads an emulator's own state."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.stripe.emulator import StripeAPIError
from tests.e2e.conftest import Company
from tests.e2e.test_scenarios import canonical, minor


def _account_of(company: Company, hub_customer: str) -> dict[str, Any]:
    (account,) = [r for r in company.salesforce.records("Account") if r.get("Hub_Id__c") == hub_customer]
    return dict(account)


def _open_invoice(company: Company, name: str, email: str, amount: int) -> tuple[str, str]:
    """A new Stripe customer with one finalised invoice, due in 30 days: (customer, invoice)."""
    stripe = company.stripe
    customer = stripe.create_customer({"name": name, "email": email})["id"]
    stripe.create_invoice_item({"customer": customer, "amount": amount, "currency": "usd",
                                "description": "Onboarding"})
    invoice = stripe.create_invoice({"customer": customer, "collection_method": "send_invoice",
                                     "days_until_due": 30, "pending_invoice_items_behavior": "include"})
    stripe.finalize_invoice(invoice["id"])
    return customer, str(invoice["id"])


def test_a_declined_payment_makes_the_account_past_due_and_the_retry_active_again(company: Company) -> None:
    stripe = company.stripe
    customer, invoice = _open_invoice(company, "Declines Ltd", "ap@declines.example", 12_500)
    company.hub.engine.sync()
    hub_customer = canonical(company, "stripe", "customer", customer)
    assert _account_of(company, hub_customer)["Billing_Status__c"] == "active"  # open, not yet due

    with pytest.raises(StripeAPIError, match="declined"):
        stripe.pay_invoice(invoice, {"payment_method": "pm_card_chargeDeclined"})
    summary = company.hub.engine.sync()
    assert summary.totals().dead == 0
    assert _account_of(company, hub_customer)["Billing_Status__c"] == "past_due"

    stripe.pay_invoice(invoice, {"payment_method": "pm_card_visa"})
    company.hub.engine.sync()
    assert stripe.table("invoice")[invoice]["status"] == "paid"
    assert _account_of(company, hub_customer)["Billing_Status__c"] == "active"
    company.hub.engine.sync()  # the account's echo changes nothing and writes nothing more
    assert _account_of(company, hub_customer)["Billing_Status__c"] == "active"


def test_a_won_deals_subscription_invoice_names_its_opportunity_in_salesforce(company: Company) -> None:
    company.hub.engine.sync()
    stripe, sf = company.stripe, company.salesforce
    monthly_pro = next(pid for pid, p in stripe.table("price").items()
                       if p.get("recurring") and p["currency"] == "usd"
                       and stripe.table("product")[p["product"]]["name"] == "Pro plan")
    (entry,) = [r for r in sf.records("PricebookEntry")
                if r.get("Hub_Id__c") == canonical(company, "stripe", "price", monthly_pro)]
    account = sf.insert("Account", {"Name": "Dealco GmbH"})
    sf.insert("Contact", {"LastName": "Billing", "Email": "billing@dealco.example", "AccountId": account})
    ids = sf.seed_records({"Opportunity": [{"Name": "Dealco Pro", "AccountId": account, "StageName": "Negotiation",
                                            "CloseDate": "2026-11-30",
                                            "line_items": [{"PricebookEntryId": entry["Id"], "Quantity": 1}]}]})
    opportunity = ids["ids"]["Opportunity"][0]
    sf.update("Opportunity", opportunity, {"StageName": "Closed Won"})

    company.hub.engine.sync()  # deal -> Stripe customer + subscription
    company.hub.engine.sync()  # its first invoice -> ledgers and Salesforce
    (sub,) = [s for s in stripe.table("subscription").values()
              if s["metadata"].get("deal_id") == canonical(company, "salesforce", "deal", opportunity)]
    invoice = stripe.table("invoice")[sub["latest_invoice"]]
    (billing,) = [r for r in sf.records("Billing_Invoice__c") if r.get("Account__c") == account]
    assert billing["Invoice_Number__c"] == invoice["number"]
    assert billing["Opportunity__c"] == opportunity
    assert _account_of(company, canonical(company, "salesforce", "customer", account))["Billing_Status__c"] == "active"


def _ledger_customers(company: Company, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    qbo = [c for c in company.qbo.table("Customer").values() if c.get("DisplayName") == name]
    xero = [c for c in company.xero.table("Contacts").values() if c.get("Name") == name]
    return qbo, xero


def test_a_prospect_stays_out_of_the_ledgers_until_it_is_billed_then_lands_once(company: Company) -> None:
    sf, stripe = company.salesforce, company.stripe
    account = sf.insert("Account", {"Name": "Prospect Pty"})
    sf.insert("Contact", {"LastName": "Buyer", "Email": "buyer@prospect.example", "AccountId": account})
    summary = company.hub.engine.sync()
    assert summary.totals().dead == 0
    hub_customer = canonical(company, "salesforce", "customer", account)
    (in_stripe,) = [c for c in stripe.table("customer").values() if c.get("email") == "buyer@prospect.example"]
    assert _ledger_customers(company, "Prospect Pty") == ([], [])
    # nothing billed: the hub had no cause to write the account it read (status none = empty)
    (prospect,) = [r for r in sf.records("Account") if r["Id"] == account]
    assert prospect.get("Billing_Status__c") in (None, "none")
    findings = company.hub.differ.run(["customer"]).findings
    assert [f for f in findings if f["canonical_id"] == hub_customer] == []

    stripe.create_invoice_item({"customer": in_stripe["id"], "amount": 40_000, "currency": "usd",
                                "description": "Pilot"})
    invoice = stripe.create_invoice({"customer": in_stripe["id"], "collection_method": "send_invoice",
                                     "days_until_due": 14, "pending_invoice_items_behavior": "include"})
    stripe.finalize_invoice(invoice["id"])
    summary = company.hub.engine.sync()  # one pass: the invoice's write waits for the customer's, no deadlock
    assert summary.totals().dead == 0
    qbo, xero = _ledger_customers(company, "Prospect Pty")
    assert len(qbo) == 1 and len(xero) == 1
    number = stripe.table("invoice")[invoice["id"]]["number"]
    (qbo_inv,) = [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == number]
    (xero_inv,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number]
    assert qbo_inv["CustomerRef"]["value"] == qbo[0]["Id"] and minor(qbo_inv["TotalAmt"], "USD") == 40_000
    assert xero_inv["Contact"]["ContactID"] == xero[0]["ContactID"]
    (billed,) = [r for r in sf.records("Account") if r["Id"] == account]
    assert billed["Billing_Status__c"] == "active"
    company.hub.engine.sync()
    assert tuple(map(len, _ledger_customers(company, "Prospect Pty"))) == (1, 1)
    findings = company.hub.differ.run(["customer"]).findings
    assert [f for f in findings if f["canonical_id"] == hub_customer] == []


def test_a_customer_linked_in_a_ledger_without_the_billable_flag_still_gets_its_rename(company: Company) -> None:
    """A database from before the billable flag: customers the ledgers hold carry no flag (nor
    billing facts). Linked in QuickBooks, a rename in Salesforce must still reach the ledgers."""
    import dataclasses

    from mapping.model import content_hash

    company.hub.engine.sync()
    sf = company.salesforce
    with company.hub.store.transaction() as tx:
        link = next(lk for lk in tx.links_in("quickbooks", "customer")
                    if tx.get_entity(lk.canonical_id).entity().extra.get("billable"))  # type: ignore[union-attr]
        hub_customer = link.canonical_id
        stored = tx.get_entity(hub_customer)
        assert stored is not None
        old = stored.entity()
        extra = {k: v for k, v in old.extra.items() if k not in ("billable", "billing", "billing_status")}
        before = dataclasses.replace(old, extra=extra)  # as the hub stored it before the flag existed
        tx.upsert_entity(before, stored.source or "hub")
        for connection in ("quickbooks", "xero", "salesforce", "stripe"):  # and as it had pushed it
            pushed = tx.link_for(hub_customer, connection, "customer")
            if pushed is not None:
                tx.link(hub_customer, connection, "customer", pushed.external_id, pushed_hash=content_hash(before))
        account = tx.link_for(hub_customer, "salesforce", "customer")
        assert account is not None and tx.link_for(hub_customer, "xero", "customer") is not None
    sf.clock.advance(120)
    sf.update("Account", account.external_id, {"Name": "Renamed Before Billable Ltd"})

    summary = company.hub.engine.sync()

    assert summary.errors == [] and summary.totals().dead == 0
    (qbo_customer,) = [c for c in company.qbo.table("Customer").values() if c["Id"] == link.external_id]
    assert qbo_customer["DisplayName"] == "Renamed Before Billable Ltd"
    (contact,) = [c for c in company.xero.table("Contacts").values() if c.get("ContactNumber") == hub_customer]
    assert contact["Name"] == "Renamed Before Billable Ltd"
    with company.hub.store.transaction() as tx:
        renamed = tx.get_entity(hub_customer)
        assert renamed is not None and renamed.entity().extra.get("billable") is True  # in the books: billable
    assert company.hub.engine.sync().totals().written == 0
    findings = company.hub.differ.run(["customer"]).findings
    assert findings == [], [(f["kind"], f["system"], f["detail"]) for f in findings]
