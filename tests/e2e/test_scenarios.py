"""Issue 7's scenarios on the four emulators; every assertion reads the emulators' own state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.e2e.conftest import Company
from tests.e2e.ledger_balances import (
    balances_as_stripe,
    canonical,
    customer_balances,
    hub_diff_is_clean,
    minor,
    qbo_invoice,
    xero_invoice,
)


def test_a_won_deal_becomes_one_customer_and_subscription_billed_and_paid_everywhere(company: Company) -> None:
    company.hub.engine.sync()
    stripe, sf = company.stripe, company.salesforce
    stripe.realism.payment_method_required = True  # as Stripe: no card, no charge (issue 19)
    monthly_pro = next(pid for pid, p in stripe.table("price").items()
                       if p.get("recurring") and p["currency"] == "usd"
                       and stripe.table("product")[p["product"]]["name"] == "Pro plan")
    price_hub_id = canonical(company, "stripe", "price", monthly_pro)
    (entry,) = [r for r in sf.records("PricebookEntry") if r.get("Hub_Id__c") == price_hub_id]
    account = sf.insert("Account", {"Name": "Newco Ltd"})
    sf.insert("Contact", {"LastName": "Payables", "Email": "ap@newco.example", "AccountId": account})
    ids = sf.seed_records({"Opportunity": [{"Name": "Newco Pro", "AccountId": account, "StageName": "Negotiation",
                                            "CloseDate": "2026-11-30",
                                            "line_items": [{"PricebookEntryId": entry["Id"], "Quantity": 2}]}]})
    sf.update("Opportunity", ids["ids"]["Opportunity"][0], {"StageName": "Closed Won"})

    company.hub.engine.sync()  # deal -> Stripe customer + subscription
    customers = [c for c in stripe.table("customer").values() if c.get("email") == "ap@newco.example"]
    assert len(customers) == 1 and customers[0]["name"] == "Newco Ltd"
    subs = [s for s in stripe.table("subscription").values() if s["customer"] == customers[0]["id"]]
    assert len(subs) == 1 and subs[0]["items"]["data"][0]["quantity"] == 2
    assert subs[0]["items"]["data"][0]["price"]["id"] == monthly_pro
    # a won deal brings no card: the subscription is active and its invoice sent to be paid, not
    # charged (Stripe would leave a charge_automatically one incomplete)
    assert subs[0]["status"] == "active" and subs[0]["collection_method"] == "send_invoice"
    invoice = stripe.table("invoice")[subs[0]["latest_invoice"]]
    assert invoice["status"] == "open" and invoice["collection_method"] == "send_invoice"
    assert invoice["due_date"] is not None
    api: Any = company.hub.connectors["stripe"].api  # type: ignore[attr-defined]
    api.call(lambda c: c.v1.invoices.pay(invoice["id"], params={"payment_method": "pm_card_visa"}))  # the customer pays
    company.hub.engine.sync()  # its first invoice and payment -> ledgers and Salesforce
    invoice = stripe.table("invoice")[subs[0]["latest_invoice"]]
    assert invoice["status"] == "paid" and invoice["total"] == 2 * 9900
    qbo, xero = qbo_invoice(company, invoice["number"]), xero_invoice(company, invoice["number"])
    assert minor(qbo["TotalAmt"], "USD") == minor(xero["Total"], "USD") == invoice["total"]
    assert minor(qbo["Balance"], "USD") == 0 and xero["Status"] == "PAID"
    billing = [r for r in sf.records("Billing_Invoice__c") if r.get("Account__c") == account]
    assert len(billing) == 1 and str(billing[0]["Status__c"]).lower() == "paid"
    company.hub.engine.sync()
    assert len([c for c in stripe.table("customer").values() if c.get("email") == "ap@newco.example"]) == 1
    assert len([s for s in stripe.table("subscription").values() if s["customer"] == customers[0]["id"]]) == 1
    assert customer_balances(company, invoice["number"]) == (0, 0)  # billed and paid: owes nothing
    hub_diff_is_clean(company)


def test_refund_void_email_change_and_rename_end_in_the_right_state_everywhere(company: Company) -> None:
    company.hub.engine.sync()
    stripe, sf = company.stripe, company.salesforce
    invoices = stripe.table("invoice")
    paid = next(i for i, v in invoices.items() if v["status"] == "paid" and v["currency"] == "usd")
    still_open = next(i for i, v in invoices.items() if v["status"] == "open")
    refund = stripe.create_refund({"payment_intent": stripe.paid_intent_of(paid), "amount": 500})
    stripe.transition(still_open, "void")
    customer_id = invoices[paid]["customer"]
    stripe.update_customer(customer_id, {"email": "new-billing@example.com"})
    with company.hub.store.transaction() as tx:  # a billed account: a prospect is in no ledger
        link = next(lk for lk in tx.links_in("salesforce", "customer")
                    if tx.get_entity(lk.canonical_id).entity().extra.get("billable"))  # type: ignore[union-attr]
    sf.clock.advance(120)  # a person edits later than the last sync (SystemModstamp moves on)
    sf.update("Account", link.external_id, {"Name": "Renamed Holdings"})

    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0
    refund_hub_id = canonical(company, "stripe", "refund", refund["id"])
    receipts = [r for r in company.qbo.table("RefundReceipt").values() if refund_hub_id in str(r.get("PrivateNote"))]
    assert len(receipts) == 1 and minor(receipts[0]["TotalAmt"], "USD") == 500
    notes = [n for n in company.xero.table("CreditNotes").values() if refund_hub_id in str(n.get("Reference"))]
    assert len(notes) == 1 and minor(notes[0]["Total"], "USD") == 500
    number = invoices[still_open]["number"]
    assert minor(qbo_invoice(company, number)["TotalAmt"], "USD") == 0  # QuickBooks voids to zero
    assert xero_invoice(company, number)["Status"] == "VOIDED"
    hub_customer = canonical(company, "stripe", "customer", customer_id)
    qbo_customer = next(c for c in company.qbo.table("Customer").values() if hub_customer in str(c.get("Notes")))
    assert qbo_customer["PrimaryEmailAddr"]["Address"] == "new-billing@example.com"
    contact = next(c for c in company.xero.table("Contacts").values() if c.get("ContactNumber") == hub_customer)
    assert contact["EmailAddress"] == "new-billing@example.com"
    renamed_hub = link.canonical_id
    stripe_customer = next(c for c in stripe.table("customer").values()
                           if c.get("metadata", {}).get("hub_id") == renamed_hub)
    assert stripe_customer["name"] == "Renamed Holdings"
    assert any(c["DisplayName"] == "Renamed Holdings" for c in company.qbo.table("Customer").values())
    assert company.hub.engine.sync().totals().written == 0
    # a refund leaves what is owed as it was, a void takes the invoice out of it
    for customer in (customer_id, invoices[still_open]["customer"]):
        balances_as_stripe(company, customer)
    hub_diff_is_clean(company)


def test_multi_currency_and_tax_totals_are_equal_to_the_minor_unit_everywhere(company: Company) -> None:
    qbo: Any = company.emus.quickbooks.emulator
    realm = qbo.realm("9130350000000001")
    for code, rate in (("JPY", "0.0067"), ("KWD", "3.25"), ("AUD", "0.66")):  # the ledger's own FX table
        qbo.put_exchange_rate(realm, {"SourceCurrencyCode": code, "TargetCurrencyCode": "USD", "Rate": rate,
                                      "AsOfDate": "2026-01-01"})
    for code in ("JPY", "KWD", "AUD"):  # currencies the Xero organisation has enabled
        company.xero.table("Currencies")[code] = {"Code": code, "Description": code}
    seeded = company.stripe.seed_objects({
        "tax_rates": [{"ref": "gst", "display_name": "GST", "percentage": "10", "inclusive": True, "country": "AU"},
                      {"ref": "vat", "display_name": "VAT", "percentage": "20", "inclusive": False, "country": "FR"}],
        "customers": [{"ref": f"c{i}", "name": f"{city} customer", "email": f"ap@{city}.example"}
                      for i, city in enumerate(("tokyo", "kuwait", "sydney", "paris"))],
        "invoices": [
            {"customer": "@c0", "currency": "jpy", "status": "paid", "items": [{"amount": 12345, "description": "Setup"}]},
            {"customer": "@c1", "currency": "kwd", "status": "open", "items": [{"amount": 12340, "description": "Advice"}]},
            {"customer": "@c2", "currency": "aud", "status": "open", "default_tax_rates": ["@gst"],
             "items": [{"amount": 11000, "description": "Licence (GST inclusive)"}]},
            {"customer": "@c3", "currency": "eur", "status": "paid", "default_tax_rates": ["@vat"],
             "items": [{"amount": 10000, "description": "Licence (VAT exclusive)"}]},
        ]})
    assert "error" not in seeded
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0
    for invoice_id in seeded["created"]["invoices"]:
        invoice = company.stripe.table("invoice")[invoice_id]
        currency = invoice["currency"].upper()
        qbo_inv, xero_inv = qbo_invoice(company, invoice["number"]), xero_invoice(company, invoice["number"])
        assert minor(qbo_inv["TotalAmt"], currency) == invoice["total"], currency
        assert minor(xero_inv["Total"], currency) == invoice["total"], currency
        assert qbo_inv["CurrencyRef"]["value"] == currency and xero_inv["CurrencyCode"] == currency
        assert qbo_inv["ExchangeRate"] not in (None, Decimal(1))  # never a silent 1:1 in a USD-home ledger
        (billing,) = [r for r in company.salesforce.records("Billing_Invoice__c")
                      if r.get("Hub_Id__c") == canonical(company, "stripe", "invoice", invoice_id)]
        assert minor(billing["Amount__c"], currency) == invoice["total"]
    assert company.stripe.table("invoice")[seeded["created"]["invoices"][3]]["total"] == 12000  # VAT added
    assert company.stripe.table("invoice")[seeded["created"]["invoices"][2]]["total"] == 11000  # GST inside
    # each customer owes its open invoice in its own currency, nothing once paid
    assert [balances_as_stripe(company, c) for c in seeded["created"]["customers"]] == [0, 12340, 11000, 0]
    hub_diff_is_clean(company)


def _strip_hub_markers(company: Company) -> None:
    """Make the ledgers look hand-made: no record carries the hub's marker."""
    from mapping.quickbooks import MARKER_FIELDS

    for entity_type, field_name in MARKER_FIELDS.items():
        from mapping.quickbooks import ENTITY_NAMES

        for record in company.qbo.table(ENTITY_NAMES[entity_type]).values():
            record.pop(field_name, None)
    for contact in company.xero.table("Contacts").values():
        contact.pop("ContactNumber", None)
    for item in company.xero.table("Items").values():
        item.pop("PurchaseDescription", None)
    for invoice in company.xero.table("Invoices").values():
        invoice.pop("Reference", None)


def test_first_contact_links_populated_ledgers_and_creates_nothing(tmp_path: Any) -> None:
    from tests.e2e.conftest import start_company

    first = start_company(tmp_path / "first", customers=200, invoices=300)
    try:
        # Another tool filled the ledgers: customers, items and invoices, no payments, no markers.
        first.hub.engine.sync(entities=["customer", "product", "invoice"])
        _strip_hub_markers(first)
        qbo_customers = list(first.qbo.table("Customer").values())
        twins = []
        qbo_emulator: Any = first.emus.quickbooks.emulator
        for original in qbo_customers[:2]:  # two customers entered twice by hand: ambiguous
            twin = qbo_emulator.save(first.qbo, "Customer", {
                "DisplayName": original["DisplayName"] + " (dup)",
                "PrimaryEmailAddr": original["PrimaryEmailAddr"]})
            twins.append(twin["Id"])
        counts = {"qbo_customers": len(first.qbo.table("Customer")), "qbo_invoices": len(first.qbo.table("Invoice")),
                  "xero_contacts": len(first.xero.table("Contacts")), "xero_invoices": len(first.xero.table("Invoices"))}
        # the billed customers (a prospect is in no ledger) and the two twins
        assert counts["qbo_customers"] == len(qbo_customers) + 2 and counts["qbo_invoices"] >= 280
        first.hub.close()

        # A brand-new hub (empty state) meets the populated systems.
        from state.crypto import generate_key
        from sync.config import load_config
        from sync.runtime import Hub

        (tmp_path / "second").mkdir()
        config = tmp_path / "second" / "hub.toml"
        # The new hub was authorised on its own (QuickBooks refresh tokens are single-use).
        first.emus.quickbooks.call(qbo_emulator.seed({"refresh_tokens": ["RT-second-hub"]}))
        config.write_text(first.emus.config_toml(f"sqlite:///{tmp_path}/second/hub.db", generate_key())
                          .replace('refresh_token = "RT-initial"', 'refresh_token = "RT-second-hub"'))
        hub = Hub.from_config(load_config(config))
        hub.store.init()
        try:
            summary = hub.engine.sync(entities=["customer", "product", "invoice"])
            assert summary.paused == {} and summary.errors == []
            assert len(first.qbo.table("Customer")) == counts["qbo_customers"]
            assert len(first.qbo.table("Invoice")) == counts["qbo_invoices"]
            assert len(first.xero.table("Contacts")) == counts["xero_contacts"]
            assert len(first.xero.table("Invoices")) == counts["xero_invoices"]
            with hub.store.transaction() as tx:
                qbo_links = {link.external_id for link in tx.links_in("quickbooks", "customer")}
                findings = tx.list_findings(kind="duplicate", system="quickbooks")
                xero_links = sum(1 for _ in tx.links_in("xero", "invoice"))
            assert len(qbo_links) == len(qbo_customers) - 2  # every customer but the two ambiguous ones
            assert not qbo_links & {q["Id"] for q in qbo_customers[:2]} and not qbo_links & set(twins)
            assert len(findings) == 2
            assert all(sorted(f.external_ids) in ([q["Id"], t] for q, t in zip(qbo_customers[:2], twins, strict=True))
                       or len(f.external_ids) == 2 for f in findings)
            assert xero_links == counts["xero_invoices"]
        finally:
            hub.close()
    finally:
        first.emus.stop()


def test_a_declined_payment_then_a_successful_retry_is_paid_once_everywhere(company: Company) -> None:
    import pytest

    from connectors.stripe.emulator import StripeAPIError

    company.hub.engine.sync()
    stripe = company.stripe
    invoice_id = next(i for i, v in stripe.table("invoice").items() if v["status"] == "open" and v["currency"] == "usd")
    with pytest.raises(StripeAPIError, match="declined"):
        stripe.pay_invoice(invoice_id, {"payment_method": "pm_card_chargeDeclined"})
    company.hub.engine.sync()
    number = stripe.table("invoice")[invoice_id]["number"]
    hub_invoice = canonical(company, "stripe", "invoice", invoice_id)
    assert minor(qbo_invoice(company, number)["Balance"], "USD") > 0  # the decline moved no money
    assert xero_invoice(company, number)["Status"] == "AUTHORISED"
    qbo_payments = [p for p in company.qbo.table("Payment").values()
                    if any(t.get("TxnId") == qbo_invoice(company, number)["Id"]
                           for line in p.get("Line", []) for t in line.get("LinkedTxn", []))]
    assert qbo_payments == []

    stripe.pay_invoice(invoice_id, {"payment_method": "pm_card_visa"})
    company.hub.engine.sync()
    assert minor(qbo_invoice(company, number)["Balance"], "USD") == 0
    assert xero_invoice(company, number)["Status"] == "PAID"
    paid_links = [p for p in company.qbo.table("Payment").values()
                  if any(t.get("TxnId") == qbo_invoice(company, number)["Id"]
                         for line in p.get("Line", []) for t in line.get("LinkedTxn", []))]
    assert len(paid_links) == 1
    (billing,) = [r for r in company.salesforce.records("Billing_Invoice__c") if r.get("Hub_Id__c") == hub_invoice]
    assert str(billing["Status__c"]).lower() == "paid"
    balances_as_stripe(company, stripe.table("invoice")[invoice_id]["customer"])
    hub_diff_is_clean(company)


def test_a_mid_cycle_upgrade_with_proration_lands_with_equal_totals(company: Company) -> None:
    company.hub.engine.sync()
    stripe = company.stripe
    prices = {(stripe.table("product")[p["product"]]["name"], p["currency"]): pid
              for pid, p in stripe.table("price").items() if p.get("recurring")}
    customer = sorted(stripe.table("customer"))[0]
    stripe.realism.payment_method_required = False  # the seeded customer pays by a card on file
    sub = stripe.create_subscription({"customer": customer,
                                      "items": [{"price": prices[("Starter plan", "usd")]}]})
    stripe.clock.advance(15 * 86400)  # half-way through the month
    item_id = sub["items"]["data"][0]["id"]
    stripe.update_subscription(sub["id"], {"items": [{"id": item_id, "price": prices[("Pro plan", "usd")]}],
                                           "proration_behavior": "always_invoice"})
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0
    proration = [inv for inv in stripe.table("invoice").values()
                 if inv["customer"] == customer and inv.get("billing_reason") == "subscription_update"]
    assert len(proration) == 1
    inv = proration[0]
    hub_id = canonical(company, "stripe", "invoice", inv["id"])
    with company.hub.store.transaction() as tx:
        stored = tx.get_entity(hub_id)
    assert stored is not None and any(line["proration"] for line in stored.data["lines"])
    assert minor(qbo_invoice(company, inv["number"])["TotalAmt"], "USD") == inv["total"]
    assert minor(xero_invoice(company, inv["number"])["Total"], "USD") == inv["total"]
    assert inv["status"] == "paid" and minor(qbo_invoice(company, inv["number"])["Balance"], "USD") == 0
    assert xero_invoice(company, inv["number"])["Status"] == "PAID"
    balances_as_stripe(company, customer)  # the proration paid: what the seeded invoices still ask
    hub_diff_is_clean(company)


def _late_match(company: Company) -> tuple[str, str, str]:
    """A CRM account and a Stripe customer of the same email, and a Stripe invoice of that
    customer, read before the customer (a webhook, or the invoice feed running first) and never
    changed again, so no later read brings it back. Returns (hub customer, Stripe customer id,
    Stripe invoice id)."""
    engine = company.hub.engine
    assert engine.sync().totals().dead == 0
    account = company.salesforce.insert("Account", {"Name": "Late Match Ltd", "BillingCountry": "US",
                                                    "Billing_Email__c": "ap@late-match.example"})
    seeded = company.stripe.seed_objects({
        "customers": [{"ref": "c", "name": "Late Match Ltd", "email": "ap@late-match.example"}],
        "invoices": [{"customer": "@c", "currency": "usd", "status": "open",
                      "items": [{"amount": 4200, "description": "Audit"}]}]})
    assert "error" not in seeded
    engine.sync(systems=["salesforce"])  # the CRM's account becomes a hub customer first
    engine.sync(systems=["stripe"], entities=["invoice"])
    (customer_id,), (invoice_id,) = seeded["created"]["customers"], seeded["created"]["invoices"]
    with company.hub.store.transaction() as tx:
        assert tx.canonical_for("stripe", "customer", customer_id) is None
    return canonical(company, "salesforce", "customer", account), customer_id, invoice_id


def _assert_invoice_follows(company: Company, hub_customer: str, invoice_id: str) -> None:
    hub_invoice = canonical(company, "stripe", "invoice", invoice_id)
    with company.hub.store.transaction() as tx:
        stored = tx.get_entity(hub_invoice)
        assert stored is not None and stored.data["customer_id"] == hub_customer
        waiting = [i for i in tx.list_outbox("pending") if i.canonical_id == hub_invoice]
        qbo_customer = tx.link_for(hub_customer, "quickbooks", "customer")
    assert waiting == []
    number = company.stripe.table("invoice")[invoice_id]["number"]
    assert qbo_customer is not None
    assert qbo_invoice(company, number)["CustomerRef"]["value"] == qbo_customer.external_id
    assert xero_invoice(company, number)["Total"] == Decimal("42.00")
    assert company.hub.engine.sync().totals().written == 0
    assert company.hub.differ.run(["customer", "invoice"]).findings == []


def test_an_invoice_read_before_its_customer_is_matched_follows_the_customer(company: Company) -> None:
    """The Stripe customer, read after its invoice, is matched by email to the hub customer the
    CRM made. The invoice must name that hub customer, or its ledger writes wait for a customer
    no ledger will ever have."""
    hub_customer, customer_id, invoice_id = _late_match(company)
    summary = company.hub.engine.sync()  # reads the Stripe customer: matched to the CRM's by email
    assert summary.totals().dead == 0, summary.errors
    assert canonical(company, "stripe", "customer", customer_id) == hub_customer
    _assert_invoice_follows(company, hub_customer, invoice_id)


def test_a_write_waiting_for_a_placeholder_follows_a_link_another_process_made(company: Company) -> None:
    """Another process linked the Stripe customer while this one stored the invoice: neither
    transaction saw the other, so the link found no invoice to re-point. The invoice's waiting
    write finds the link and re-points it."""
    hub_customer, customer_id, invoice_id = _late_match(company)
    with company.hub.store.transaction() as tx:  # the other process's link, without its re-pointing
        tx.link(hub_customer, "stripe", "customer", customer_id)
    for _ in range(2):  # the pass that finds the waiting write re-plans it; the next one writes
        assert company.hub.engine.sync().totals().dead == 0
    _assert_invoice_follows(company, hub_customer, invoice_id)
