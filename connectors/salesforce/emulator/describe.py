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

_SOAP = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
         "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
         "datetime": "xsd:dateTime", "address": "urn:address", "int": "xsd:int"}
# (precision, scale) of the number kinds: money 18/2, a geocode 18/15, a percentage 3/0
_DIGITS = {"currency": (18, 2), "double": (18, 2), "percent": (3, 0)}
_GEOCODE = ("Latitude", "Longitude")
_TEXT = ("string", "textarea", "email", "phone", "url", "picklist", "id", "reference")
_LENGTHS = {"id": 18, "reference": 18, "string": 255, "picklist": 255, "email": 80, "phone": 40,
            "url": 255, "textarea": 32000}
_NUMERIC = ("currency", "double", "percent")
_LABELS = {"OwnerId": "Owner ID", "CreatedById": "Created By ID", "LastModifiedById": "Last Modified By ID",
           "CurrencyIsoCode": "Currency ISO Code", "IsDeleted": "Deleted"}


def field_length(f: Field) -> int:
    """The most characters a text field holds (0 for the kinds without a length)."""
    return f.length or _LENGTHS.get(f.type, 0)


def field_label(obj: SObject, f: Field) -> str:
    if f.name == "Id":
        return f"{label_of(obj)} ID"
    if f.name in _LABELS:
        return _LABELS[f.name]
    words = f.name.removesuffix("__c").replace("_", " ")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", words)


def label_of(obj: SObject) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", obj.name.removesuffix("__c").replace("_", " "))


def _plural(label: str) -> str:
    return label[:-1] + "ies" if label.endswith("y") else label + "s"


def describe_short(obj: SObject, version: str) -> dict[str, Any]:
    """The summary in ``GET sobjects`` and ``GET sobjects/T``: every property of the REST API's
    ``DescribeGlobalSObjectResult`` (the SOAP API guide's table of the same name), with the
    values Salesforce gives a standard or custom object (no custom settings, no subtypes here;
    the org row and users cannot be deleted, so they cannot be undeleted or merged either)."""
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    label = label_of(obj)
    return {"activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": obj.createable, "custom": obj.custom, "customSetting": False,
            "deepCloneable": False, "deletable": obj.deletable, "deprecatedAndHidden": False,
            "feedEnabled": obj.deletable, "hasSubtypes": False, "isInterface": False,
            "isSubtype": False, "keyPrefix": obj.key_prefix, "label": label,
            "labelPlural": _plural(label), "layoutable": obj.deletable, "mergeable": obj.name in ("Account", "Contact"),
            "mruEnabled": obj.deletable, "name": obj.name, "queryable": True, "replicateable": True,
            "retrieveable": True, "searchable": obj.deletable, "triggerable": obj.deletable,
            "undeletable": obj.deletable, "updateable": obj.updateable,
            "urls": {"rowTemplate": f"{base}/{{ID}}", "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                     "describe": f"{base}/describe", "sobject": base}}


def describe_field(obj: SObject, f: Field) -> dict[str, Any]:
    """One ``DescribeFieldResult``. A compound address (``BillingAddress``) is read-only and can
    be neither filtered nor sorted on; its parts name it in ``compoundFieldName``; a long text
    area (more than 255 characters) cannot be filtered or sorted either, a 255-character one can."""
    precision, scale = _DIGITS.get(f.type, (0, 0))
    if f.type == "double" and f.name.endswith(_GEOCODE):
        precision, scale = 18, 15
    length = field_length(f)
    long_text = f.type == "textarea" and length > 255
    queryable_by_value = f.type != "address" and not long_text
    return {"aggregatable": queryable_by_value and f.type != "boolean", "autoNumber": False,
            "byteLength": length * 3 if f.type in _TEXT else 0, "calculated": False,
            "calculatedFormula": None, "cascadeDelete": False, "caseSensitive": False,
            "compoundFieldName": f.compound, "controllerName": None, "createable": f.writable,
            "custom": f.name.endswith("__c"), "defaultValue": f.default if isinstance(f.default, bool) else None,
            "defaultedOnCreate": f.defaulted or f.default is not None, "dependentPicklist": False,
            "deprecatedAndHidden": False, "digits": 8 if f.type == "int" else 0, "encrypted": False,
            "externalId": f.external_id,
            "extraTypeInfo": "plaintextarea" if f.type == "textarea" else None,
            "filterable": queryable_by_value, "groupable": queryable_by_value and f.type not in _NUMERIC,
            "htmlFormatted": False, "idLookup": f.external_id or f.unique or f.name == "Id",
            "inlineHelpText": None, "label": field_label(obj, f), "length": length, "name": f.name,
            "nameField": f.name_field, "namePointing": False, "nillable": f.is_nillable,
            "permissionable": f.is_nillable and f.writable,
            "picklistValues": [{"active": True, "defaultValue": value == f.default, "label": value, "validFor": None,
                                "value": value} for value in f.values],
            "polymorphicForeignKey": False, "precision": precision,
            "queryByDistance": f.type == "address", "referenceTargetField": None,
            "referenceTo": [f.reference_to] if f.reference_to else [], "relationshipName": f.relationship,
            "relationshipOrder": None, "restrictedDelete": False, "restrictedPicklist": False,
            "scale": scale, "soapType": _SOAP.get(f.type, "xsd:string"), "sortable": queryable_by_value,
            "type": f.type, "unique": f.unique, "updateable": f.writable and f.name != "Id",
            "writeRequiresMasterRead": False}


def describe(schema: dict[str, SObject], obj: SObject, version: str) -> dict[str, Any]:
    """``GET sobjects/T/describe``: fields and child relationships."""
    children: list[dict[str, Any]] = [
        {"cascadeDelete": False, "childSObject": child, "deprecatedAndHidden": False, "field": ref.name,
         "junctionIdListNames": [], "junctionReferenceTo": [], "relationshipName": ref.child_relationship,
         "restrictedDelete": False}
        for child, ref in child_relationships(schema, obj.name).values()]
    return {**describe_short(obj, version), "fields": [describe_field(obj, f) for f in obj.fields.values()],
            "childRelationships": children, "recordTypeInfos": [], "compactLayoutable": obj.deletable,
            "searchLayoutable": obj.deletable, "listviewable": None, "lookupLayoutable": None,
            "namedLayoutInfos": [], "networkScopeFieldName": None, "actionOverrides": [],
            "defaultImplementation": None, "implementedBy": None, "implementsInterfaces": None,
            "sobjectDescribeOption": "FULL", "supportedScopes": [
                {"label": "All " + _plural(label_of(obj)).lower(), "name": "everything"}],
            "urlDetail": None, "urlEdit": None, "urlNew": None}
