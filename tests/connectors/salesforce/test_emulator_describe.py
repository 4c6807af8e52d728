"""Describe, compound addresses, field kinds and lengths, SOQL literals and ``limits`` as
Salesforce answers them (issue 19, found with the tap-salesforce peer), through the unmodified
simple-salesforce SDK over HTTP.

References: the SOAP/REST API guides' ``DescribeGlobalSObjectResult`` (every property of a global
describe entry), the Object Reference's "Address Compound Fields" (``BillingAddress`` read-only,
its parts naming it, the JSON keys of its value; not usable in WHERE or ORDER BY) and standard
fields, SOQL's "Date Formats and Date Literals in WHERE", and the REST API's "List Org Limits"
(each limit an object of integer ``Max`` and ``Remaining``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.connectors.salesforce.conftest import SfEnv

# DescribeGlobalSObjectResult's properties (the REST answer adds urls).
GLOBAL_PROPERTIES = {"activateable", "createable", "custom", "customSetting", "deepCloneable", "deletable",
                     "deprecatedAndHidden", "feedEnabled", "hasSubtypes", "isInterface", "isSubtype",
                     "keyPrefix", "label", "labelPlural", "layoutable", "mergeable", "mruEnabled", "name",
                     "queryable", "replicateable", "retrieveable", "searchable", "triggerable", "undeletable",
                     "updateable", "urls"}
ADDRESS_KEYS = {"city", "country", "geocodeAccuracy", "latitude", "longitude", "postalCode", "state", "street"}


def _code(error: SalesforceMalformedRequest) -> tuple[str, str]:
    content: object = error.content
    assert isinstance(content, list)
    return str(content[0]["errorCode"]), str(content[0]["message"])


def test_the_global_describe_has_every_property_salesforce_documents(sf: SfEnv, sdk: Any) -> None:
    described = sdk.describe()
    assert (described["encoding"], described["maxBatchSize"]) == ("UTF-8", 200)
    by_name = {o["name"]: o for o in described["sobjects"]}
    for entry in by_name.values():
        assert GLOBAL_PROPERTIES <= set(entry), (entry["name"], GLOBAL_PROPERTIES - set(entry))
        assert entry["customSetting"] is False and entry["queryable"] and entry["replicateable"]
        assert entry["urls"]["rowTemplate"] == entry["urls"]["sobject"] + "/{ID}"
    assert (by_name["Opportunity"]["labelPlural"], by_name["Billing_Invoice__c"]["custom"]) == ("Opportunities", True)
    assert by_name["Organization"]["deletable"] is False and by_name["Organization"]["undeletable"] is False
    account = sdk.Account.describe()
    assert GLOBAL_PROPERTIES <= set(account) and account["childRelationships"][0]["junctionIdListNames"] == []


def test_accounts_and_contacts_describe_their_compound_addresses_and_realistic_lengths(sf: SfEnv, sdk: Any) -> None:
    account = {f["name"]: f for f in sdk.Account.describe()["fields"]}
    for prefix in ("Billing", "Shipping"):
        compound = account[f"{prefix}Address"]
        assert (compound["type"], compound["soapType"], compound["compoundFieldName"]) == ("address", "urn:address", None)
        assert not (compound["createable"] or compound["updateable"] or compound["filterable"] or compound["sortable"])
        for part in ("Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude", "GeocodeAccuracy"):
            assert account[prefix + part]["compoundFieldName"] == f"{prefix}Address", prefix + part
    street, city = account["BillingStreet"], account["BillingCity"]
    assert (street["type"], street["length"], street["filterable"], street["extraTypeInfo"]) == \
        ("textarea", 255, True, "plaintextarea")
    assert (city["type"], city["length"], account["BillingPostalCode"]["length"]) == ("string", 40, 20)
    assert (account["BillingLatitude"]["type"], account["BillingLatitude"]["scale"]) == ("double", 15)
    assert account["Description"]["length"] == 32000 and account["Description"]["filterable"] is False
    assert account["Name"]["length"] == 255
    contact = {f["name"]: f for f in sdk.Contact.describe()["fields"]}
    assert contact["MailingAddress"]["type"] == "address" and contact["MailingCity"]["compoundFieldName"] == "MailingAddress"
    assert (contact["FirstName"]["length"], contact["LastName"]["length"], contact["Name"]["length"]) == (40, 80, 121)
    amount = {f["name"]: f for f in sdk.Opportunity.describe()["fields"]}["Amount"]
    assert (amount["type"], amount["precision"], amount["scale"], amount["groupable"]) == ("currency", 18, 2, False)


def test_a_compound_address_is_built_from_its_parts_null_while_they_are(sf: SfEnv, sdk: Any) -> None:
    bare = sdk.Account.create({"Name": "Bare"})["id"]
    placed = sdk.Account.create({"Name": "Placed", "BillingStreet": "1 Market St", "BillingCity": "San Francisco",
                                 "BillingPostalCode": "94105", "BillingLatitude": "37.7936"})["id"]
    rows = {r["Id"]: r for r in sdk.query("SELECT Id, BillingAddress, ShippingAddress FROM Account")["records"]}
    assert rows[bare]["BillingAddress"] is None and rows[placed]["ShippingAddress"] is None
    address = rows[placed]["BillingAddress"]
    assert set(address) == ADDRESS_KEYS
    assert (address["street"], address["city"], address["postalCode"], address["state"], address["latitude"]) == \
        ("1 Market St", "San Francisco", "94105", None, Decimal("37.7936"))
    sdk.Account.update(placed, {"BillingCity": "Oakland"})
    assert sdk.Account.get(placed)["BillingAddress"]["city"] == "Oakland"  # retrieve renders it too
    contact = sdk.Contact.create({"LastName": "Doe", "MailingCountry": "FR"})["id"]
    assert sdk.Contact.get(contact)["MailingAddress"]["country"] == "FR"
    with pytest.raises(SalesforceMalformedRequest) as written:
        sdk.Account.update(placed, {"BillingAddress": {"city": "Paris"}})
    assert _code(written.value)[0] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_a_compound_address_cannot_be_filtered_or_sorted(sf: SfEnv, sdk: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as filtered:
        sdk.query("SELECT Id FROM Account WHERE BillingAddress = null")
    with pytest.raises(SalesforceMalformedRequest) as sorted_on:
        sdk.query("SELECT Id FROM Account ORDER BY BillingAddress")
    assert _code(filtered.value)[0] == _code(sorted_on.value)[0] == "INVALID_FIELD"
    assert "can not be filtered" in _code(filtered.value)[1] and "can not be sorted" in _code(sorted_on.value)[1]
    assert sdk.query("SELECT Id FROM Account WHERE BillingCity = 'Lyon' ORDER BY BillingCity")["totalSize"] == 0


def test_limits_answer_every_limit_as_integer_max_and_remaining(sf: SfEnv, sdk: Any) -> None:
    sf.emulator.seed_records({"Account": [{"Name": f"A{i}"} for i in range(600)]})
    limits = sdk.limits()
    assert {"DailyApiRequests", "DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DataStorageMB", "FileStorageMB",
            "SingleEmail", "MassEmail", "DailyAsyncApexExecutions"} <= set(limits)
    for name, limit in limits.items():
        assert set(limit) == {"Max", "Remaining"} and all(type(v) is int for v in limit.values()), name
        assert 0 <= limit["Remaining"] <= limit["Max"], name
    used = sdk.api_usage["api-usage"].used
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - used}
    # 600 accounts and the org's own three rows at 2 KB each: 2 MB of the Developer Edition's 5
    assert limits["DataStorageMB"] == {"Max": 5, "Remaining": 3}


def test_standard_fields_of_a_new_org_with_their_kinds_and_picklists(sf: SfEnv, sdk: Any) -> None:
    account = {f["name"]: f for f in sdk.Account.describe()["fields"]}
    employees = account["NumberOfEmployees"]
    assert (employees["type"], employees["soapType"], employees["digits"]) == ("int", "xsd:int", 8)
    assert (account["AnnualRevenue"]["type"], account["Fax"]["type"], account["AccountNumber"]["length"]) == \
        ("currency", "phone", 40)
    assert (account["ParentId"]["referenceTo"], account["ParentId"]["relationshipName"]) == (["Account"], "Parent")
    assert account["LastViewedDate"]["createable"] is False and account["MasterRecordId"]["updateable"] is False
    assert {"label": "Technology", "value": "Technology", "active": True, "defaultValue": False,
            "validFor": None} in account["Industry"]["picklistValues"]
    stages = [v["value"] for v in {f["name"]: f for f in sdk.Opportunity.describe()["fields"]}["StageName"]["picklistValues"]]
    assert stages[0] == "Prospecting" and stages[-2:] == ["Closed Won", "Closed Lost"]
    status = {f["name"]: f for f in sdk.Order.describe()["fields"]}["Status"]["picklistValues"]
    assert [(v["value"], v["defaultValue"]) for v in status] == [("Draft", True), ("Activated", False)]
    billing = account["Billing_Status__c"]["picklistValues"]  # billhub's own, as README's setup lists them
    assert [v["value"] for v in billing] == ["none", "active", "past_due", "canceled"]
    contact = {f["name"]: f for f in sdk.Contact.describe()["fields"]}
    assert {"Title", "MobilePhone", "Department", "LeadSource", "Salutation"} <= set(contact)

    parent = sdk.Account.create({"Name": "Parent", "NumberOfEmployees": 250})["id"]
    child = sdk.Account.create({"Name": "Child", "ParentId": parent, "NumberOfEmployees": "12",
                                "Industry": "Not a standard value"})["id"]  # picklists are not restricted
    rows = sdk.query("SELECT Name, NumberOfEmployees, Parent.Name, LastViewedDate FROM Account "
                     "WHERE NumberOfEmployees > 100")["records"]
    assert [(r["Name"], r["NumberOfEmployees"], r["Parent"], r["LastViewedDate"]) for r in rows] == \
        [("Parent", 250, None, None)]
    (row,) = sdk.query(f"SELECT Parent.Name, Industry FROM Account WHERE Id = '{child}'")["records"]
    assert (row["Parent"]["Name"], row["Industry"]) == ("Parent", "Not a standard value")
    with pytest.raises(SalesforceMalformedRequest) as not_whole:
        sdk.Account.create({"Name": "Half", "NumberOfEmployees": 1.5})
    assert _code(not_whole.value)[0] == "JSON_PARSER_ERROR"


def test_a_value_longer_than_its_field_is_refused_with_string_too_long(sf: SfEnv, sdk: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as city:
        sdk.Account.create({"Name": "Far away", "BillingCity": "C" * 41})
    code, message = _code(city.value)
    assert code == "STRING_TOO_LONG" and message.endswith("(max length=40)") and "C" * 41 in message
    assert city.value.content[0]["fields"] == ["BillingCity"]  # type: ignore[index]
    with pytest.raises(SalesforceMalformedRequest) as last_name:
        sdk.Contact.create({"LastName": "L" * 81})
    assert _code(last_name.value)[0] == "STRING_TOO_LONG"
    assert sdk.Account.create({"Name": "N" * 255, "BillingCity": "C" * 40})["success"] is True
    assert sf.emulator.records("Account")[0]["Name"] == "N" * 255


def test_soql_literals_must_fit_the_fields_kind_as_salesforce_says(sf: SfEnv, sdk: Any) -> None:
    """SOQL's "Date Formats and Date Literals in WHERE": a dateTime value filters only dateTime
    fields and a date only date fields; strings are quoted, numbers and booleans are not."""
    sdk.Opportunity.create({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-11-30", "Amount": "10"})
    refused = {
        "SELECT Id FROM Opportunity WHERE CloseDate > 2026-11-01T00:00:00Z": "type date",
        "SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-11-01": "type dateTime",
        "SELECT Id FROM Opportunity WHERE CloseDate = '2026-11-30'": "type date",
        "SELECT Id FROM Opportunity WHERE Name = 5": "type string and should be enclosed in quotes",
        "SELECT Id FROM Opportunity WHERE Amount > '5'": "type currency and should not be enclosed in quotes",
        "SELECT Id FROM Opportunity WHERE IsWon = 'false'": "type boolean",
        "SELECT Id FROM Opportunity WHERE StageName IN ('Prospecting', 3)": "type string",
    }
    for soql, says in refused.items():
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sdk.query(soql)
        code, message = _code(caught.value)
        assert code == "INVALID_FIELD" and says in message, (soql, message)
    fitting = ("SELECT Id FROM Opportunity WHERE CloseDate >= 2026-11-01 AND CloseDate <= NEXT_N_DAYS:90 "
               "AND SystemModstamp >= 2026-11-01T12:00:00.000000Z AND SystemModstamp < TOMORROW "
               "AND Amount > 5 AND IsWon = false AND Name != null AND StageName IN ('Prospecting')")
    assert sdk.query(fitting)["totalSize"] == 1  # the tap's six-digit fraction is taken, as Salesforce does
