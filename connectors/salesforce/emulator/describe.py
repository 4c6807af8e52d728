"""``describe``: an sObject's metadata as the REST API reports it, from the org's schema.

The field properties follow the REST API's ``DescribeFieldResult`` (Object Reference, "Field
Types" and "System Fields"): ``Id`` and the audit fields are never nillable, ``OwnerId``,
``CreatedById`` and ``LastModifiedById`` are references to ``User`` (relationships ``Owner``,
``CreatedBy``, ``LastModifiedBy``), a compound name (``Contact.Name``) is read-only and its parts
say ``compoundFieldName``, and an org without multiple currencies describes no
``CurrencyIsoCode`` at all.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.salesforce.emulator.schema import Field, SObject, child_relationships

_KINDS = {"string": "string", "phone": "phone", "url": "url", "textarea": "textarea"}
_SOAP = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
         "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
         "datetime": "xsd:dateTime"}
_LENGTHS = {"id": 18, "reference": 18, "string": 255, "picklist": 255, "email": 80, "phone": 40,
            "url": 255, "textarea": 32000}
_LABELS = {"OwnerId": "Owner ID", "CreatedById": "Created By ID", "LastModifiedById": "Last Modified By ID",
           "CurrencyIsoCode": "Currency ISO Code", "IsDeleted": "Deleted"}


def _label(obj: SObject, f: Field) -> str:
    if f.name == "Id":
        return f"{label_of(obj)} ID"
    if f.name in _LABELS:
        return _LABELS[f.name]
    words = f.name.removesuffix("__c").replace("_", " ")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", words)


def label_of(obj: SObject) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", obj.name.removesuffix("__c").replace("_", " "))


def describe_short(obj: SObject, version: str) -> dict[str, Any]:
    """The summary in ``GET sobjects`` and ``GET sobjects/T``."""
    return {"name": obj.name, "label": label_of(obj), "keyPrefix": obj.key_prefix, "custom": obj.custom,
            "queryable": True, "retrieveable": True, "createable": obj.createable,
            "updateable": obj.updateable, "deletable": obj.deletable,
            "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj.name}",
                     "describe": f"/services/data/v{version}/sobjects/{obj.name}/describe"}}


def describe_field(obj: SObject, f: Field) -> dict[str, Any]:
    currency = f.type == "currency"
    return {"name": f.name, "type": _KINDS.get(f.type, f.type), "label": _label(obj, f),
            "soapType": _SOAP.get(f.type, "xsd:string"), "length": _LENGTHS.get(f.type, 0),
            "custom": f.name.endswith("__c"), "externalId": f.external_id, "unique": f.unique,
            "idLookup": f.external_id or f.unique or f.name == "Id", "nameField": f.name_field,
            "nillable": f.is_nillable, "defaultedOnCreate": f.defaulted or f.default is not None,
            "createable": f.writable, "updateable": f.writable and f.name != "Id",
            "calculated": False, "autoNumber": False, "filterable": f.type != "textarea",
            "sortable": f.type != "textarea", "compoundFieldName": f.compound,
            "referenceTo": [f.reference_to] if f.reference_to else [],
            "relationshipName": f.relationship, "picklistValues": [],
            "defaultValue": f.default if isinstance(f.default, bool) else None,
            "precision": 18 if currency else 0, "scale": 2 if currency else 0}


def describe(schema: dict[str, SObject], obj: SObject, version: str) -> dict[str, Any]:
    """``GET sobjects/T/describe``: fields and child relationships."""
    children = [{"childSObject": child, "field": ref.name, "relationshipName": ref.child_relationship,
                 "cascadeDelete": False}
                for child, ref in child_relationships(schema, obj.name).values()]
    return {**describe_short(obj, version), "fields": [describe_field(obj, f) for f in obj.fields.values()],
            "childRelationships": children, "recordTypeInfos": []}
