"""The emulator's Tooling API schema calls (``tooling/sobjects/CustomObject`` / ``CustomField``)
through simple-salesforce's ``toolingexecute``: what is created is described and queryable at
once, a taken name is ``DUPLICATE_DEVELOPER_NAME``, a malformed definition is refused."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.connectors.salesforce.conftest import SfEnv


def _field(sdk: Any, full_name: str, metadata: dict[str, Any]) -> Any:
    return sdk.toolingexecute("sobjects/CustomField", method="POST",
                              data={"FullName": full_name, "Metadata": metadata})


def _code(exc: SalesforceMalformedRequest) -> str:
    content: Any = exc.content  # the REST error list, [{"errorCode", "message", "fields"}]
    return str(content[0]["errorCode"])


def test_a_created_object_and_field_are_described_and_queryable(sf: SfEnv, sdk: Any) -> None:
    sf.emulator.configure_org(custom_schema=False)
    made = sdk.toolingexecute("sobjects/CustomObject", method="POST", data={
        "FullName": "Ledger_Note__c", "Metadata": {"label": "Ledger Note", "pluralLabel": "Ledger Notes",
                                                   "nameField": {"type": "Text", "label": "Note"},
                                                   "deploymentStatus": "Deployed", "sharingModel": "ReadWrite"}})
    assert made["success"] and made["id"].startswith("01I")
    answer = _field(sdk, "Ledger_Note__c.Account__c", {"label": "Account", "type": "Lookup", "referenceTo": "Account",
                                                       "relationshipName": "Ledger_Notes"})
    assert answer["success"] and answer["id"].startswith("00N")
    _field(sdk, "Account.Ref__c", {"label": "Ref", "type": "Text", "length": 40, "externalId": True, "unique": True})
    ref = next(f for f in sdk.Account.describe()["fields"] if f["name"] == "Ref__c")
    assert ref["externalId"] and ref["unique"] and ref["length"] == 40 and ref["custom"]
    account = sdk.Account.create({"Name": "Acme", "Ref__c": "A-1"})["id"]
    sdk.Ledger_Note__c.create({"Name": "first", "Account__c": account})
    rows = sdk.query("SELECT Ref__c, (SELECT Name FROM Ledger_Notes__r) FROM Account")["records"]
    assert rows[0]["Ref__c"] == "A-1" and rows[0]["Ledger_Notes__r"]["records"][0]["Name"] == "first"


def test_a_taken_name_or_a_bad_definition_is_refused(sf: SfEnv, sdk: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as taken:  # the default org has billhub's schema
        _field(sdk, "Account.Hub_Id__c", {"label": "Hub Id", "type": "Text", "length": 255})
    assert _code(taken.value) == "DUPLICATE_DEVELOPER_NAME"
    with pytest.raises(SalesforceMalformedRequest) as no_values:
        _field(sdk, "Account.Tier__c", {"label": "Tier", "type": "Picklist"})
    assert _code(no_values.value) == "FIELD_INTEGRITY_EXCEPTION"
    with pytest.raises(SalesforceMalformedRequest) as nowhere:
        _field(sdk, "Nowhere__c.Tier__c", {"label": "Tier", "type": "Text"})
    assert _code(nowhere.value) == "INVALID_INPUT"
    assert sf.emulator.schema["Account"].field("Tier__c") is None
