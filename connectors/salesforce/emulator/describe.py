"""``describe``: an sObject's metadata as the REST API reports it, from the org's schema."""

from __future__ import annotations

from typing import Any

from connectors.salesforce.emulator.schema import SObject, child_relationships


def describe_short(obj: SObject, version: str) -> dict[str, Any]:
    """The summary in ``GET sobjects`` and ``GET sobjects/T``."""
    return {"name": obj.name, "label": obj.name.removesuffix("__c").replace("_", " "),
            "keyPrefix": obj.key_prefix, "custom": obj.custom, "queryable": True,
            "createable": True, "updateable": True, "deletable": True,
            "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj.name}",
                     "describe": f"/services/data/v{version}/sobjects/{obj.name}/describe"}}


def describe(schema: dict[str, SObject], obj: SObject, version: str) -> dict[str, Any]:
    """``GET sobjects/T/describe``: fields and child relationships."""
    kinds = {"string": "string", "phone": "phone", "url": "url", "textarea": "textarea"}
    fields = [{"name": f.name, "type": kinds.get(f.type, f.type), "label": f.name,
               "custom": f.name.endswith("__c"), "externalId": f.external_id, "unique": f.unique,
               "idLookup": f.external_id or f.name == "Id",
               "nillable": not f.required and f.type != "boolean",
               "createable": f.writable, "updateable": f.writable and f.name != "Id",
               "referenceTo": [f.reference_to] if f.reference_to else [],
               "relationshipName": f.relationship,
               "precision": 18 if f.type == "currency" else 0, "scale": 2 if f.type == "currency" else 0}
              for f in obj.fields.values()]
    children = [{"childSObject": child, "field": ref.name, "relationshipName": ref.child_relationship}
                for child, ref in child_relationships(schema, obj.name).values()]
    return {**describe_short(obj, version), "fields": fields, "childRelationships": children}
