"""Orgs as they come (issue 19): a single-currency org, a fresh org without billhub's custom
schema, and a describe as real as Salesforce's — through simple-salesforce, over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.base import ConnectorError, InvalidError, Outbound
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.errors import SalesforceSetupError
from mapping.model import Customer, Deal, Invoice, Money, Price, Product
from tests.connectors.salesforce.conftest import Built, SfEnv, drain
from tests.connectors.salesforce.test_reads import FakeRefs

INVOICE = "Billing_Invoice__c"
USED = ("Account", "Contact", "Product2", "PricebookEntry", "Opportunity", "OpportunityLineItem", INVOICE)


def _errors(exc: SalesforceMalformedRequest) -> list[dict[str, Any]]:
    """The decoded error list (the SDK annotates ``content`` as bytes but passes the JSON)."""
    content: object = exc.content
    assert isinstance(content, list)
    return content


def _describes(sf: SfEnv) -> list[str]:
    return [r["path"].split("/")[-2] for r in sf.emulator.received if r["path"].endswith("/describe")]


def _mentions_currency(sf: SfEnv) -> list[dict[str, Any]]:
    """Requests whose SOQL or body names the field (not ``DefaultCurrencyIsoCode``)."""
    return [r for r in sf.emulator.received
            if re.search(r"\bCurrencyIsoCode\b", f"{r['soql'] or ''} {r['body']}", re.IGNORECASE)]


# --------------------------------------------------------------------------- describe realism


def test_describe_has_the_system_fields_and_compound_name_salesforce_documents(sf: SfEnv, sdk: Any) -> None:
    account = {f["name"]: f for f in sdk.Account.describe()["fields"]}
    assert account["Id"]["nillable"] is False and account["Id"]["createable"] is False
    assert account["Id"]["type"] == "id" and account["Id"]["idLookup"] is True
    owner = account["OwnerId"]
    assert (owner["type"], owner["referenceTo"], owner["relationshipName"]) == ("reference", ["User"], "Owner")
    assert owner["nillable"] is False and owner["createable"] and owner["updateable"] and owner["defaultedOnCreate"]
    for name, relationship in (("CreatedById", "CreatedBy"), ("LastModifiedById", "LastModifiedBy")):
        audit = account[name]
        assert (audit["referenceTo"], audit["relationshipName"]) == (["User"], relationship)
        assert not audit["nillable"] and not audit["createable"] and not audit["updateable"]
    assert account["Name"]["nameField"] is True and account["Name"]["nillable"] is False

    contact = {f["name"]: f for f in sdk.Contact.describe()["fields"]}
    name = contact["Name"]
    assert (name["type"], name["createable"], name["updateable"], name["nameField"]) == ("string", False, False, True)
    assert contact["FirstName"]["compoundFieldName"] == "Name" == contact["LastName"]["compoundFieldName"]
    assert "OwnerId" not in {f["name"] for f in sdk.Product2.describe()["fields"]}  # no owner on products

    # What describe promises, SOQL and the writes keep.
    account_id = sdk.Account.create({"Name": "Acme"})["id"]
    sdk.Contact.create({"FirstName": "Ada", "LastName": "Lovelace", "AccountId": account_id})
    (row,) = sdk.query("SELECT Name, Owner.Name, CreatedBy.Username FROM Contact")["records"]
    assert (row["Name"], row["Owner"]["Name"], row["CreatedBy"]["Username"]) == (
        "Ada Lovelace", "Integration User", "integration@billhub.emulator")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sdk.Contact.create({"LastName": "Byron", "Name": "Lord Byron"})
    assert _errors(caught.value)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    org = sdk.query("SELECT Id, DefaultCurrencyIsoCode FROM Organization")["records"]
    assert [r["DefaultCurrencyIsoCode"] for r in org] == ["USD"] and org[0]["Id"].startswith("00D")


# --------------------------------------------------------------------------- a single-currency org


@pytest.fixture
def eur_org(sf: SfEnv) -> Iterator[SfEnv]:
    sf.emulator.configure_org(multi_currency=False, currency="EUR")
    yield sf  # the next test's reset brings back the default org


def test_a_single_currency_org_has_no_currency_iso_code_anywhere(eur_org: SfEnv, sdk: Any) -> None:
    for sobject in USED:
        assert "CurrencyIsoCode" not in {f["name"] for f in getattr(sdk, sobject).describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as read:
        sdk.query("SELECT Id, CurrencyIsoCode FROM Account")
    (error,) = _errors(read.value)
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'CurrencyIsoCode' on entity 'Account'" in error["message"]
    assert "ERROR at Row:1:Column:12" in error["message"]  # Salesforce points at the name
    with pytest.raises(SalesforceMalformedRequest) as write:
        sdk.Account.create({"Name": "Acme", "CurrencyIsoCode": "EUR"})
    assert _errors(write.value)[0]["errorCode"] == "INVALID_FIELD"
    assert sdk.query("SELECT DefaultCurrencyIsoCode FROM Organization")["records"][0][
        "DefaultCurrencyIsoCode"] == "EUR"


def _seed_eur(sf: SfEnv) -> dict[str, str]:
    refs: dict[str, str] = sf.emulator.seed_records({
        "Account": [{"ref": "acme", "Name": "Acme GmbH", "BillingCountry": "DE"}],
        "Contact": [{"LastName": "Doe", "Email": "ap@acme.test", "AccountId": "@acme"}],
        "Product2": [{"ref": "seat", "Name": "Seat", "IsActive": True}],
        "PricebookEntry": [{"ref": "seat_eur", "Product2Id": "@seat", "UnitPrice": "19.99",
                            "IsActive": True, "Billing_Interval__c": "month"}],
        "Opportunity": [{"ref": "deal", "Name": "Acme seats", "AccountId": "@acme",
                         "StageName": "Closed Won", "CloseDate": "2026-11-30",
                         "line_items": [{"PricebookEntryId": "@seat_eur", "Quantity": 3}]}],
        INVOICE: [{"ref": "inv", "Name": "INV-1", "Invoice_Number__c": "INV-1", "Account__c": "@acme",
                   "Amount__c": "59.97", "Amount_Paid__c": "0", "Status__c": "Open"}],
    })["refs"]
    return refs


def test_a_single_currency_eur_org_is_read_and_written_in_eur_without_currency_iso_code(
        eur_org: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf = eur_org
    seeded = _seed_eur(sf)
    conn = make_connector().connector
    refs = FakeRefs()

    read = {entity: [conn.to_canonical(r, refs) for r in drain(conn.fetch_changes(entity, None))[0]]
            for entity in ("customer", "product", "price", "deal", "invoice")}

    (customer,) = read["customer"]
    assert isinstance(customer, Customer) and customer.currency == "EUR" and customer.email == "ap@acme.test"
    (price,) = read["price"]
    assert isinstance(price, Price) and price.unit_amount == Money(1999, "EUR")
    (deal,) = read["deal"]
    assert isinstance(deal, Deal) and deal.won and deal.amount == Money(5997, "EUR")
    assert deal.lines[0].unit_amount == Money(1999, "EUR")
    (invoice,) = read["invoice"]
    assert isinstance(invoice, Invoice) and invoice.total == Money(5997, "EUR") == invoice.amount_due
    assert len(read["product"]) == 1
    # First contact: one describe per object used, the org's currency read once, then cached.
    assert sorted(_describes(sf)) == sorted(USED)
    org_reads = [r for r in sf.emulator.received if r["soql"] and "FROM Organization" in r["soql"]]
    assert len(org_reads) == 1

    refs.links.update({("customer", "cust-1"): seeded["acme"], ("product", "prod-1"): seeded["seat"],
                       ("deal", "deal-1"): seeded["deal"]})
    eur = [Customer(id="cust-2", name="Beta SARL", currency="EUR"),
           Product(id="prod-2", name="Support", sku="SUP"),
           Price(id="price-2", product_id="prod-1", unit_amount=Money(4900, "EUR"), recurring_interval="year"),
           Deal(id="deal-2", customer_id="cust-1", name="Upsell", stage="Prospecting", currency="EUR",
                amount=Money(9800, "EUR"), closed_at=date(2026, 12, 1)),
           Invoice(id="inv-2", customer_id="cust-1", number="INV-2", status="open", currency="EUR",
                   total=Money(12345, "EUR"), subtotal=Money(12345, "EUR"), amount_due=Money(12345, "EUR"),
                   amount_paid=Money(0, "EUR"), deal_id="deal-1", due_date=date(2026, 12, 1))]
    for entity in eur:
        payload = conn.from_canonical(entity, refs)
        (result,) = conn.upsert(entity.type, [Outbound(entity.type, entity.id, payload, idempotency_key=entity.id)])
        assert result.ok and result.created, result.error

    (written,) = [r for r in sf.emulator.records(INVOICE) if r["Hub_Id__c"] == "inv-2"]
    assert (written["Amount__c"], written["Opportunity__c"]) == (Decimal("123.45"), seeded["deal"])
    (entry,) = [r for r in sf.emulator.records("PricebookEntry") if r["Hub_Id__c"] == "price-2"]
    assert entry["UnitPrice"] == Decimal("49.00")
    assert {r["Name"] for r in sf.emulator.records("Account")} == {"Acme GmbH", "Beta SARL"}
    assert [r for r in sf.emulator.stats.requests if r["status"] >= 400] == []
    assert _mentions_currency(sf) == []  # no SOQL and no body named CurrencyIsoCode
    assert sorted(_describes(sf)) == sorted(USED)  # still the first contact's only


def test_a_usd_invoice_is_refused_by_a_eur_org_with_a_clear_message_and_nothing_is_sent(
        eur_org: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf = eur_org
    seeded = _seed_eur(sf)
    conn = make_connector().connector
    refs = FakeRefs()
    refs.links[("customer", "cust-1")] = seeded["acme"]
    usd = Invoice(id="inv-usd", customer_id="cust-1", number="INV-9", status="open", currency="USD",
                  total=Money(5000, "USD"), subtotal=Money(5000, "USD"), amount_due=Money(5000, "USD"),
                  amount_paid=Money(0, "USD"))

    with pytest.raises(InvalidError) as caught:
        conn.from_canonical(usd, refs)
    message = str(caught.value)
    assert "INV-9" in message and "USD" in message and "single currency (EUR)" in message

    # A payload that names another currency, however it was built, is refused per record; one in
    # the org's own currency is sent without the field.
    writes_before = len([r for r in sf.emulator.received if r["method"] != "GET"])
    refused, sent = conn.upsert("invoice", [
        Outbound("invoice", "inv-usd", {"Name": "INV-9", "Account__c": seeded["acme"], "Amount__c": Decimal("50"),
                                        "CurrencyIsoCode": "USD"}, idempotency_key="k-usd"),
        Outbound("invoice", "inv-eur", {"Name": "INV-10", "Account__c": seeded["acme"], "Amount__c": Decimal("50"),
                                        "CurrencyIsoCode": "eur"}, idempotency_key="k-eur")])
    assert isinstance(refused.error, InvalidError) and "cannot hold USD" in str(refused.error)
    assert sent.ok and sent.created
    assert len([r for r in sf.emulator.received if r["method"] != "GET"]) == writes_before + 1
    assert {r["Hub_Id__c"] for r in sf.emulator.records(INVOICE)} == {None, "inv-eur"}
    assert _mentions_currency(sf) == []


def test_a_configured_currency_the_org_disagrees_with_stops_first_contact(
        eur_org: SfEnv, make_connector: Callable[..., Built]) -> None:
    _seed_eur(eur_org)
    conn = make_connector(default_currency="USD").connector

    with pytest.raises(SalesforceSetupError) as caught:
        drain(conn.fetch_all("customer"))
    assert "default_currency = 'USD'" in str(caught.value) and "EUR" in str(caught.value)
    assert not [r for r in eur_org.emulator.received if r["soql"] and "FROM Account" in r["soql"]]

    agreeing = make_connector(name="sf2", default_currency="eur").connector
    records, _ = drain(agreeing.fetch_all("customer"))
    assert [agreeing.to_canonical(r, FakeRefs()).currency for r in records] == ["EUR"]  # type: ignore[attr-defined]


def test_a_multi_currency_org_reads_and_writes_currency_iso_code_and_skips_the_org_query(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf.emulator.seed_records({"Account": [{"Name": "Yen KK", "CurrencyIsoCode": "JPY"}]})
    conn = make_connector().connector
    (record,), _ = drain(conn.fetch_all("customer"))
    assert conn.to_canonical(record, FakeRefs()).currency == "JPY"  # type: ignore[attr-defined]
    drain(conn.fetch_all("invoice"))
    assert sorted(_describes(sf)) == sorted(USED)
    assert all("CurrencyIsoCode" in r["soql"] for r in sf.emulator.received if r["soql"])
    assert not [r for r in sf.emulator.received if r["soql"] and "Organization" in r["soql"]]


# --------------------------------------------------------------------------- a fresh org


def test_an_org_without_billhubs_schema_fails_the_first_read_naming_everything_missing(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf.emulator.configure_org(custom_schema=False)
    sf.emulator.seed_records({"Account": [{"Name": "Acme"}]})
    conn: SalesforceConnector = make_connector(email_field="Billing_Email__c").connector

    with pytest.raises(SalesforceSetupError) as caught:
        drain(conn.fetch_changes("customer", None))

    message = str(caught.value)
    assert isinstance(caught.value, ConnectorError)  # the CLI prints it as one line, no traceback
    for missing in ("Account.Hub_Id__c", "Account.Billing_Status__c", "Account.Billing_Email__c",
                    "Product2.Hub_Id__c", "PricebookEntry.Hub_Id__c", "PricebookEntry.Billing_Interval__c",
                    "Opportunity.Hub_Id__c", "the custom object Billing_Invoice__c with its fields"):
        assert missing in message, missing
    for field in ("Invoice_Number__c", "Amount__c", "Amount_Paid__c", "Amount_Credited__c", "Status__c",
                  "Due_Date__c", "Paid_Date__c", "Account__c", "Opportunity__c"):
        assert field in message, field
    assert '"Salesforce setup"' in message and "`hub setup salesforce`" in message
    assert "Nothing was read or written" in message and "INVALID_FIELD" not in message
    assert sorted(_describes(sf)) == sorted(USED)  # every object described once
    assert not [r for r in sf.emulator.received if r["soql"]]  # no query was sent
    with pytest.raises(SalesforceSetupError):  # a write stops the same way, before sending
        conn.upsert("customer", [Outbound("customer", "c-1", {"Name": "Hub"}, idempotency_key="k")])
    assert not [r for r in sf.emulator.received if r["method"] != "GET"]
