"""``hub setup salesforce``: billhub's custom object and fields, created in the org through the
Tooling API (``POST /services/data/vXX.X/tooling/sobjects/CustomObject`` and ``CustomField``,
each a ``FullName`` plus the Metadata API type's body), idempotently.

What is wanted is derived from the connector's own streams (``needed_fields``), so the command
and first contact (``orgfacts``) can never disagree: every ``__c`` name a read selects, plus the
invoice object itself. Each has one definition here (README "Salesforce setup" lists the same
types); a custom name with no definition is an error, never a guessed type.

What is present is learnt with ``describe`` (what the integration user can see). Salesforce grants
a Tooling-created field to no profile, so every run then makes sure billhub's permission set
``Billhub_Integration`` exists with Read and Edit on each custom field (``FieldPermissions``) and
full access to the invoice object's records (``ObjectPermissions``), and is assigned to the
integration user (``PermissionSetAssignment``; the user is the last part of the session's identity
URL), each grant made once. A create answered ``DUPLICATE_DEVELOPER_NAME`` is a component that
exists but was hidden; a final describe names anything still not visible, with what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.api import Salesforce

from connectors.base import DuplicateError, InvalidError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.streams import needed_fields, streams


@dataclass(frozen=True)
class Component:
    kind: str  # "CustomObject" | "CustomField"
    full_name: str  # Billing_Invoice__c | Account.Hub_Id__c
    metadata: dict[str, Any]

    @property
    def sobject(self) -> str:
        return self.full_name.partition(".")[0]

    @property
    def field(self) -> str:
        return self.full_name.partition(".")[2]


@dataclass
class SetupReport:
    wanted: list[Component]
    missing: list[Component]
    created: list[Component] = field(default_factory=list)
    hidden: list[Component] = field(default_factory=list)  # exist, but the user cannot see them
    granted: list[str] = field(default_factory=list)  # field-level security added this run

    def to_json(self) -> dict[str, Any]:
        def names(items: list[Component]) -> list[str]:
            return [c.full_name for c in items]

        return {"wanted": names(self.wanted), "missing": names(self.missing), "created": names(self.created),
                "hidden": names(self.hidden), "granted": self.granted}


def _label(name: str) -> str:
    return name.removesuffix("__c").replace("_", " ")


def _picklist(*values: str) -> dict[str, Any]:
    return {"type": "Picklist", "valueSet": {"restricted": False, "valueSetDefinition": {
        "sorted": False, "value": [{"fullName": v, "default": False, "label": v} for v in values]}}}


def _lookup(target: str, children: str) -> dict[str, Any]:
    # relationshipName is the parent's name for the children (Account.Billing_Invoices__r).
    return {"type": "Lookup", "referenceTo": target, "relationshipName": children,
            "relationshipLabel": _label(children), "deleteConstraint": "SetNull"}


# Currency(16, 2) in Setup's words: 18 digits, 2 after the point.
CURRENCY = {"type": "Currency", "precision": 18, "scale": 2}
TEXT = {"type": "Text", "length": 255}


def definitions(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Field name -> the Metadata API body (without label) for every custom field billhub uses."""
    invoice = str(settings["invoice_object"])
    children = invoice.removesuffix("__c") + "s"
    found: dict[str, dict[str, Any]] = {
        str(settings["hub_id_field"]): {**TEXT, "externalId": True, "unique": True, "caseSensitive": False},
        "Billing_Status__c": _picklist("none", "active", "past_due", "canceled"),
        "Billing_Interval__c": _picklist("day", "week", "month", "year"),
        "Invoice_Number__c": dict(TEXT),
        "Account__c": _lookup("Account", children),
        "Opportunity__c": _lookup("Opportunity", children),
        "Amount__c": dict(CURRENCY), "Amount_Paid__c": dict(CURRENCY), "Amount_Credited__c": dict(CURRENCY),
        "Status__c": _picklist("Draft", "Open", "Paid", "Void", "Uncollectible"),
        "Due_Date__c": {"type": "Date"}, "Paid_Date__c": {"type": "Date"},
    }
    if settings.get("email_field"):
        found[str(settings["email_field"])] = {"type": "Email"}
    return found


def wanted_components(settings: Mapping[str, Any]) -> list[Component]:
    """The invoice object, then every custom field the connector's streams read, in their order."""
    invoice = str(settings["invoice_object"])
    defs = definitions(settings)
    out = [Component("CustomObject", invoice, {
        "label": _label(invoice), "pluralLabel": _label(invoice) + "s",
        "nameField": {"type": "Text", "label": _label(invoice) + " Name"},
        "deploymentStatus": "Deployed", "sharingModel": "ReadWrite"})]
    unknown: list[str] = []
    for sobject, names in needed_fields(streams(settings)).items():
        for name in names:
            if not name.endswith("__c"):
                continue
            if name not in defs:
                unknown.append(f"{sobject}.{name}")
                continue
            out.append(Component("CustomField", f"{sobject}.{name}", {"label": _label(name), **defs[name]}))
    if unknown:
        raise InvalidError(f"billhub has no definition for {', '.join(unknown)}: create it by hand", system="salesforce")
    return out


def _visible(client: SalesforceClient, sobjects: list[str]) -> dict[str, set[str] | None]:
    """sObject -> lower-cased field names the user sees (None: no such object, or hidden)."""
    seen: dict[str, set[str] | None] = {}
    for sobject in sobjects:
        def describe(sf: Salesforce, s: str = sobject) -> Any:
            return sf.restful(f"sobjects/{s}/describe")

        try:
            answer = client.call(describe)
        except InvalidError as exc:
            if exc.status == 404:
                seen[sobject] = None
                continue
            raise
        seen[sobject] = {str(f.get("name", "")).lower() for f in answer.get("fields") or [] if isinstance(f, dict)}
    return seen


def find_missing(client: SalesforceClient, wanted: list[Component]) -> list[Component]:
    seen = _visible(client, list(dict.fromkeys(c.sobject for c in wanted)))
    missing = []
    for c in wanted:
        fields = seen.get(c.sobject)
        if fields is None or (c.kind == "CustomField" and c.field.lower() not in fields):
            missing.append(c)
    return missing


def setup_org(client: SalesforceClient, settings: Mapping[str, Any], *, check: bool) -> SetupReport:
    """With ``check``: only what is missing. Otherwise create each missing component (the object
    before its fields), then describe again: what is still not visible is ``hidden``."""
    wanted = wanted_components(settings)
    report = SetupReport(wanted, find_missing(client, wanted))
    if check:
        return report
    for c in report.missing:
        def create(sf: Salesforce, c: Component = c) -> Any:
            return sf.toolingexecute(f"sobjects/{c.kind}", method="POST",
                                     data={"FullName": c.full_name, "Metadata": c.metadata})

        try:
            client.call(create)
        except DuplicateError:
            continue  # it exists; the second describe says whether this user can see it
        except InvalidError as exc:
            if "DUPLICATE_DEVELOPER_NAME" not in exc.message:
                raise
            continue
        report.created.append(c)
    report.granted = grant_access(client, wanted)
    report.hidden = find_missing(client, wanted)
    return report


PERMISSION_SET = "Billhub_Integration"


def _soql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _query(client: SalesforceClient, soql: str) -> list[dict[str, Any]]:
    def run(sf: Salesforce) -> Any:
        return sf.query_all(soql)

    return [r for r in client.call(run).get("records") or [] if isinstance(r, dict)]


def _create(client: SalesforceClient, sobject: str, body: dict[str, Any]) -> str:
    def run(sf: Salesforce) -> Any:
        return getattr(sf, sobject).create(body)

    return str(client.call(run)["id"])


def grant_access(client: SalesforceClient, wanted: list[Component]) -> list[str]:
    """Field-level security for what setup creates: Salesforce gives a field made through the
    Tooling API to no profile, so billhub's own permission set (``Billhub_Integration``) gets
    Read and Edit on each custom field and full access to the custom object's records, and is
    assigned to the integration user (the session's identity URL names it). Each grant is made
    once; what was granted this run is returned (``PermissionSet``, ``ObjectPermissions
    Billing_Invoice__c``, ``FieldPermissions Account.Hub_Id__c``, ``PermissionSetAssignment``)."""
    granted: list[str] = []
    found = _query(client, f"SELECT Id FROM PermissionSet WHERE Name = {_soql_text(PERMISSION_SET)}")
    if found:
        ps = str(found[0]["Id"])
    else:
        ps = _create(client, "PermissionSet", {"Name": PERMISSION_SET, "Label": "billhub integration",
                                               "Description": "created by hub setup salesforce"})
        granted.append("PermissionSet")
    has_object = {str(r["SobjectType"]) for r in _query(
        client, f"SELECT SobjectType FROM ObjectPermissions WHERE ParentId = {_soql_text(ps)}")}
    has_field = {str(r["Field"]) for r in _query(
        client, f"SELECT Field FROM FieldPermissions WHERE ParentId = {_soql_text(ps)}")}
    for c in wanted:
        if c.kind == "CustomObject" and c.full_name not in has_object:
            _create(client, "ObjectPermissions", {
                "ParentId": ps, "SobjectType": c.full_name, "PermissionsRead": True, "PermissionsCreate": True,
                "PermissionsEdit": True, "PermissionsDelete": True})
            granted.append(f"ObjectPermissions {c.full_name}")
        elif c.kind == "CustomField" and c.full_name not in has_field:
            _create(client, "FieldPermissions", {"ParentId": ps, "SobjectType": c.sobject, "Field": c.full_name,
                                                 "PermissionsRead": True, "PermissionsEdit": True})
            granted.append(f"FieldPermissions {c.full_name}")
    user = str(client.tokens.extra("identity") or "").rstrip("/").rpartition("/")[2]
    if not user:
        raise InvalidError(f"granted permission set {PERMISSION_SET}, but the session does not say who the "
                           "integration user is: assign the permission set to it in Setup > Permission Sets",
                           system=client.name)
    if not _query(client, "SELECT Id FROM PermissionSetAssignment WHERE PermissionSetId = "
                          f"{_soql_text(ps)} AND AssigneeId = {_soql_text(user)}"):
        _create(client, "PermissionSetAssignment", {"PermissionSetId": ps, "AssigneeId": user})
        granted.append("PermissionSetAssignment")
    return granted


FLS_ADVICE = ("Salesforce grants a field created through the API to no profile: in Setup > Permission Sets, "
              "give a permission set Read and Edit on each field listed (and on the object's records), "
              "assign it to the integration user, then run `hub setup salesforce --check`")
