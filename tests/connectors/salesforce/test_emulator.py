"""Wire fidelity of the emulator, driven through the unmodified simple-salesforce SDK."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from tests.connectors.salesforce.conftest import START, SfEnv


def _content(error: SalesforceError) -> list[Any]:
    """The decoded JSON body. simple-salesforce annotates ``content`` as bytes, but its
    ``exception_handler`` passes ``response.json()``: here a list of URLs or of error objects."""
    content: object = error.content
    assert isinstance(content, list)
    return content


def test_upsert_by_external_id_answers_201_then_200_and_300_for_several_matches(sf: SfEnv, sdk: Any) -> None:
    created = sdk.Account.upsert("Hub_Id__c/hub-1", {"Name": "Acme"}, raw_response=True)
    updated = sdk.Account.upsert("Hub_Id__c/hub-1", {"Name": "Acme Ltd"}, raw_response=True)
    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["id"] == updated.json()["id"] and created.json()["created"] is True
    sf.emulator.insert("Account", {"Name": "Twin", "Hub_Id__c": "hub-1"})
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sdk.Account.upsert("Hub_Id__c/hub-1", {"Name": "?"})
    assert len(_content(caught.value)) == 2 and all("/sobjects/Account/" in u for u in _content(caught.value))


def test_unique_external_ids_match_regardless_of_case_and_are_freed_by_a_delete(sf: SfEnv, sdk: Any) -> None:
    first = sdk.Account.create({"Name": "Acme", "Hub_Id__c": "HUB-7"})["id"]
    assert sdk.Account.upsert("Hub_Id__c/hub-7", {"Name": "Acme Ltd"}, raw_response=True).status_code == 200
    other = sdk.Account.create({"Name": "Beta", "Hub_Id__c": "hub-8"})["id"]
    for attempt in (lambda: sdk.Account.create({"Name": "Twin", "Hub_Id__c": "Hub-7"}),
                    lambda: sdk.Account.update(other, {"Hub_Id__c": "hub-7"})):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            attempt()
        assert _content(caught.value)[0]["errorCode"] == "DUPLICATE_VALUE" and first in str(caught.value)
    sdk.Account.update(first, {"Hub_Id__c": "hub-9"})  # renamed: its old value is free
    assert sdk.Account.update(other, {"Hub_Id__c": "hub-7"}) == 204
    sdk.Account.delete(other)  # deleted: its value is free too
    again = sdk.Account.upsert("Hub_Id__c/HUB-7", {"Name": "New"}, raw_response=True)
    assert again.status_code == 201 and again.json()["id"] not in (first, other)


def test_if_unmodified_since_answers_412_when_the_record_changed(sf: SfEnv, sdk: Any) -> None:
    record_id = sdk.Account.create({"Name": "Acme"})["id"]
    sf.emulator.clock.advance(3600)
    sf.emulator.update("Account", record_id, {"Name": "Changed by a person"})
    stale = (START + timedelta(minutes=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    with pytest.raises(SalesforceGeneralError) as caught:
        sdk.Account.update(record_id, {"Name": "Hub"}, headers={"If-Unmodified-Since": stale})
    assert caught.value.status == 412
    fresh = (sf.emulator.clock.now() + timedelta(minutes=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert sdk.Account.update(record_id, {"Name": "Hub"}, headers={"If-Unmodified-Since": fresh}) == 204


def test_soql_subset_filters_sorts_counts_and_follows_parents(sf: SfEnv, sdk: Any) -> None:
    out = sf.emulator.seed_records({
        "Account": [{"ref": "a", "Name": "Acme"}, {"ref": "b", "Name": "Beta"}],
        "Opportunity": [
            {"Name": "Big", "AccountId": "@a", "StageName": "Closed Won", "CloseDate": "2026-10-30",
             "Amount": "1000.50"},
            {"Name": "Small", "AccountId": "@b", "StageName": "Prospecting", "CloseDate": "2026-11-20",
             "Amount": "10"},
            {"Name": "Mid", "AccountId": "@a", "StageName": "Negotiation", "CloseDate": "2026-11-05",
             "Amount": "99.99"}],
    })
    rows = sdk.query("SELECT Name, Amount, Account.Name FROM Opportunity WHERE (Amount > 50 AND "
                     "Account.Name LIKE 'ac%') OR StageName IN ('Prospecting') ORDER BY Amount DESC")["records"]
    assert [(r["Name"], r["Amount"], r["Account"]["Name"]) for r in rows] == [
        ("Big", Decimal("1000.50"), "Acme"), ("Mid", Decimal("99.99"), "Acme"), ("Small", 10, "Beta")]
    assert sdk.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true")["totalSize"] == 1
    assert sdk.query("SELECT Id FROM Opportunity WHERE CloseDate < 2026-11-01")["totalSize"] == 1
    assert sdk.query("SELECT Id FROM Account WHERE CreatedDate = TODAY")["totalSize"] == 2
    assert sdk.query("SELECT Id FROM Account WHERE SystemModstamp > 2026-11-01T12:00:00Z")["totalSize"] == 0
    assert sdk.query("SELECT Id FROM Account WHERE Name NOT IN ('acme') LIMIT 5")["records"][0]["Id"] == \
        out["refs"]["b"]
    child = sdk.query("SELECT Name, (SELECT Name FROM Opportunities ORDER BY Name) FROM Account "
                      "WHERE Name = 'Acme'")["records"][0]
    assert [o["Name"] for o in child["Opportunities"]["records"]] == ["Big", "Mid"]


def test_query_errors_are_salesforce_error_lists(sf: SfEnv, sdk: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sdk.query("SELECT Nope__c FROM Account")
    with pytest.raises(SalesforceMalformedRequest) as bad_type:
        sdk.query("SELECT Id FROM Nothing__c")
    with pytest.raises(SalesforceMalformedRequest) as bad_syntax:
        sdk.query("SELECT Id FROM Account WHERE")
    codes = [_content(e.value)[0]["errorCode"] for e in (bad_field, bad_type, bad_syntax)]
    assert codes == ["INVALID_FIELD", "INVALID_TYPE", "MALFORMED_QUERY"]
    with pytest.raises(SalesforceResourceNotFound):
        sdk.Account.get("001000000000000AAA")


def test_query_all_pages_at_2000_and_shows_deleted_rows(sf: SfEnv, sdk: Any) -> None:
    ids = sf.emulator.seed_records({"Account": [{"Name": f"A{i}"} for i in range(2500)]})["ids"]["Account"]
    sf.emulator.delete("Account", ids[0])
    first = sdk.query("SELECT Id FROM Account")
    assert (first["totalSize"], len(first["records"]), first["done"]) == (2499, 2000, False)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert len(sdk.query_all("SELECT Id FROM Account")["records"]) == 2499
    deleted = sdk.query_all("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in deleted["records"]] == [ids[0]]


def test_collections_all_or_none_rolls_back_every_record(sf: SfEnv, sdk: Any) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": "Good"}, {"attributes": {"type": "Account"}}]
    answer = sdk.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert [a["errors"][0]["statusCode"] for a in answer] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                                              "REQUIRED_FIELD_MISSING"]
    assert sf.emulator.records("Account") == []
    partial = sdk.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [a["success"] for a in partial] == [True, False]
    too_many = [{"attributes": {"type": "Account"}, "Name": str(i)} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest):
        sdk.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": too_many})


def test_get_updated_and_get_deleted_windows(sf: SfEnv, sdk: Any) -> None:
    keep = sdk.Account.create({"Name": "Keep"})["id"]
    gone = sdk.Account.create({"Name": "Gone"})["id"]
    sf.emulator.clock.advance(120)
    sdk.Account.delete(gone)
    sf.emulator.clock.advance(120)
    now = sf.emulator.clock.now()
    assert sdk.Account.updated(now - timedelta(days=1), now)["ids"] == [keep]
    deleted = sdk.Account.deleted(now - timedelta(days=1), now)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sdk.Account.deleted(now - timedelta(days=16), now)
    assert _content(caught.value)[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_describe_lists_custom_fields_and_every_answer_carries_api_usage(sf: SfEnv, sdk: Any) -> None:
    described = sdk.Billing_Invoice__c.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert described["custom"] and fields["Hub_Id__c"]["externalId"] and fields["Hub_Id__c"]["unique"]
    assert fields["Account__c"]["referenceTo"] == ["Account"]
    assert {"Amount__c", "CurrencyIsoCode", "Status__c", "Due_Date__c", "Paid_Date__c"} <= set(fields)
    sdk.query("SELECT Id FROM Account")
    assert sdk.api_usage["api-usage"].used == 2 and sdk.api_usage["api-usage"].total == 15000


def test_sessions_expire_on_the_emulator_clock(sf: SfEnv, sdk: Any) -> None:
    sdk.query("SELECT Id FROM Account")
    sf.emulator.clock.advance(7201)
    with pytest.raises(SalesforceExpiredSession) as caught:
        sdk.query("SELECT Id FROM Account")
    assert _content(caught.value)[0]["errorCode"] == "INVALID_SESSION_ID"


def test_closing_an_opportunity_won_is_a_plain_update(sf: SfEnv, sdk: Any) -> None:
    out = sf.emulator.seed_records({"Account": [{"ref": "a", "Name": "Acme"}], "Opportunity": [
        {"ref": "o", "Name": "Deal", "AccountId": "@a", "StageName": "Negotiation", "CloseDate": "2026-11-30"}]})
    sdk.Opportunity.update(out["refs"]["o"], {"StageName": "Closed Won"})
    opp = sdk.Opportunity.get(out["refs"]["o"])
    assert (opp["IsWon"], opp["IsClosed"]) == (True, True)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sdk.Opportunity.update(out["refs"]["o"], {"IsWon": False})
    assert _content(caught.value)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
