"""The Tooling API's schema calls: ``POST tooling/sobjects/CustomObject`` and
``POST tooling/sobjects/CustomField`` (Tooling API reference, "CustomObject" and "CustomField":
a ``FullName`` plus a ``Metadata`` body of the Metadata API's type), so that ``hub setup
salesforce`` can build billhub's schema in a fresh org (``custom_schema=False``).

A created object or field is in the org's schema at once: ``describe`` lists it, SOQL selects it,
writes take it; existing records hold null in a new field, as in Salesforce. A name already taken
is ``400 DUPLICATE_DEVELOPER_NAME``.

Field-level security: the org also has the sObjects a grant is made of (``PermissionSet``,
``PermissionSetAssignment``, ``ObjectPermissions``, ``FieldPermissions``; ``permission_objects``),
read and written through the ordinary REST calls, so a client's grants can be checked row by row.
Access is not enforced: the emulated integration user sees every field (a real org shows a
Tooling-created field to no profile until a FieldPermissions row grants it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.salesforce.emulator.schema import OWNER, SYSTEM_FIELDS, Field, SObject
from connectors.salesforce.emulator.wire import SfError, json_response, not_found

# The Metadata API's field types -> the emulator's (describe's) kinds.
KINDS = {"Text": "string", "Email": "email", "Picklist": "picklist", "Currency": "currency",
         "Date": "date", "DateTime": "datetime", "Lookup": "reference", "Checkbox": "boolean",
         "Number": "double", "Percent": "percent", "Phone": "phone", "Url": "url",
         "TextArea": "textarea", "LongTextArea": "textarea"}


class ToolingMixin:
    schema: dict[str, SObject]
    by_lower: dict[str, SObject]
    tables: dict[str, dict[str, dict[str, Any]]]
    org_kind: Any  # app.OrgKind
    org_currency: str

    def _tooling(self, request: web.Request, parts: list[str], body: Any) -> web.Response:
        if request.method != "POST" or len(parts) != 2 or parts[0] != "sobjects":
            raise not_found()
        if not isinstance(body, dict) or not isinstance(body.get("Metadata"), dict) or not body.get("FullName"):
            raise SfError(400, "INVALID_INPUT", "FullName and Metadata are required", ["FullName"])
        if parts[1] == "CustomObject":
            made = self._create_object(str(body["FullName"]), body["Metadata"])
        elif parts[1] == "CustomField":
            made = self._create_field(str(body["FullName"]), body["Metadata"])
        else:
            raise not_found()
        return json_response({"id": made, "success": True, "errors": [], "warnings": [], "infos": []}, 201)

    def _create_object(self, name: str, meta: dict[str, Any]) -> str:
        if not name.endswith("__c"):
            raise SfError(400, "INVALID_INPUT", f"a custom object's name ends in __c: {name}", ["FullName"])
        if name.lower() in self.by_lower:
            raise SfError(400, "DUPLICATE_DEVELOPER_NAME",
                          f"There is already a custom object named {name.removesuffix('__c')}.", ["FullName"])
        name_meta = meta.get("nameField") or {}
        if not meta.get("label") or not meta.get("pluralLabel") or name_meta.get("type") not in ("Text", "AutoNumber"):
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                          "label, pluralLabel and nameField (type Text or AutoNumber) are required", ["Metadata"])
        fields = [*SYSTEM_FIELDS, OWNER]
        if self.org_kind.multi_currency:
            fields.append(Field("CurrencyIsoCode", "picklist", default=self.org_currency, nillable=False,
                                defaulted=True))
        fields.append(Field("Name", "string", name_field=True, length=80,
                            writable=name_meta.get("type") == "Text"))
        prefix = f"a{len([o for o in self.schema.values() if o.custom]):02d}"
        obj = SObject(name, prefix, {f.name: f for f in fields}, custom=True)
        self.schema[name] = obj
        self.by_lower[name.lower()] = obj
        self.tables[name] = {}
        return f"01I{len(self.schema):012d}"

    def _create_field(self, full_name: str, meta: dict[str, Any]) -> str:
        sobject, _, name = full_name.partition(".")
        obj = self.by_lower.get(sobject.lower())
        if obj is None or not name.endswith("__c"):
            raise SfError(400, "INVALID_INPUT", f"no such object, or not a custom field name: {full_name}",
                          ["FullName"])
        if obj.field(name) is not None:
            raise SfError(400, "DUPLICATE_DEVELOPER_NAME",
                          f"There is already a field named {name.removesuffix('__c')} on {obj.name}.",
                          ["FullName"])
        kind = KINDS.get(str(meta.get("type")))
        if kind is None or not meta.get("label"):
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                          f"label and a supported type are required (got {meta.get('type')!r})", ["Metadata"])
        reference_to = relationship = children = None
        if kind == "reference":
            target = self.by_lower.get(str(meta.get("referenceTo", "")).lower())
            if target is None or not meta.get("relationshipName"):
                raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                              "a Lookup needs referenceTo (an existing object) and relationshipName", ["Metadata"])
            reference_to, relationship = target.name, name.removesuffix("__c") + "__r"
            children = f"{meta['relationshipName']}__r"
        values = tuple(str(v.get("fullName")) for v in
                       ((meta.get("valueSet") or {}).get("valueSetDefinition") or {}).get("value") or [])
        if kind == "picklist" and not values:
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION", "a Picklist needs valueSet values", ["Metadata"])
        field = Field(name, kind, reference_to=reference_to, relationship=relationship,
                      child_relationship=children, external_id=bool(meta.get("externalId")),
                      unique=bool(meta.get("unique")), length=int(meta.get("length") or 0), values=values)
        obj.fields[name] = field
        obj.by_lower[name.lower()] = field
        return f"00N{sum(len(o.fields) for o in self.schema.values()):012d}"


def _permission(name: str, prefix: str, fields: list[Field]) -> SObject:
    return SObject(name, prefix, {f.name: f for f in [*SYSTEM_FIELDS, *fields]})


def _flag(name: str) -> Field:
    return Field(name, "boolean", default=False)


def permission_objects() -> dict[str, SObject]:
    """The access-control sObjects a permission set is built from (Object Reference:
    PermissionSet, PermissionSetAssignment, ObjectPermissions, FieldPermissions), so a client can
    grant a Tooling-created field and object. Their rows are kept; access is not enforced."""
    parent = Field("ParentId", "reference", required=True, reference_to="PermissionSet", relationship="Parent",
                   child_relationship="FieldPerms")
    objects = [
        _permission("PermissionSet", "0PS", [
            Field("Name", "string", required=True, name_field=True, length=80),
            Field("Label", "string", required=True, length=80), Field("Description", "textarea")]),
        _permission("PermissionSetAssignment", "0Pa", [
            Field("AssigneeId", "reference", required=True, reference_to="User", relationship="Assignee"),
            Field("PermissionSetId", "reference", required=True, reference_to="PermissionSet",
                  relationship="PermissionSet", child_relationship="Assignments")]),
        _permission("ObjectPermissions", "110", [
            Field("ParentId", "reference", required=True, reference_to="PermissionSet", relationship="Parent",
                  child_relationship="ObjectPerms"),
            Field("SobjectType", "string", required=True, length=80),
            *(_flag(f"Permissions{verb}") for verb in ("Read", "Create", "Edit", "Delete", "ViewAllRecords",
                                                       "ModifyAllRecords"))]),
        _permission("FieldPermissions", "01k", [
            parent, Field("SobjectType", "string", required=True, length=80),
            Field("Field", "string", required=True, length=255), _flag("PermissionsRead"),
            _flag("PermissionsEdit")]),
    ]
    return {o.name: o for o in objects}
