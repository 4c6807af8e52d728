"""The emulated org's metadata: sObjects, their fields, references and relationships.

One table drives validation, ``describe``, SOQL field resolution (case-insensitive, parent and
child relationships) and type conversion. Custom names (the hub's external-id field and the
invoice object) are parameters, because the connector reads them from config.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # id string boolean double currency percent date datetime reference picklist email
    required: bool = False
    writable: bool = True
    reference_to: str | None = None
    relationship: str | None = None  # parent relationship name (Account, Account__r)
    child_relationship: str | None = None  # the name the parent uses for the children
    external_id: bool = False
    unique: bool = False
    default: object = None


@dataclass
class SObject:
    name: str
    key_prefix: str
    fields: dict[str, Field] = field(default_factory=dict)
    custom: bool = False

    def __post_init__(self) -> None:
        self.by_lower = {name.lower(): f for name, f in self.fields.items()}

    def field(self, name: str) -> Field | None:
        return self.by_lower.get(name.lower())

    def relationship(self, name: str) -> Field | None:
        lowered = name.lower()
        for f in self.fields.values():
            if f.relationship and f.relationship.lower() == lowered:
                return f
        return None


SYSTEM_FIELDS = (
    Field("Id", "id", writable=False),
    Field("IsDeleted", "boolean", writable=False, default=False),
    Field("CreatedDate", "datetime", writable=False),
    Field("LastModifiedDate", "datetime", writable=False),
    Field("SystemModstamp", "datetime", writable=False),
    Field("CurrencyIsoCode", "picklist", default="USD"),
)

DERIVED = {"IsWon", "IsClosed", "TotalPrice"}


def _obj(name: str, prefix: str, fields: list[Field], hub_id_field: str, custom: bool = False,
         hub_marker: bool = True) -> SObject:
    all_fields = list(SYSTEM_FIELDS) + fields
    if hub_marker:
        all_fields.append(Field(hub_id_field, "string", external_id=True, unique=True))
    return SObject(name, prefix, {f.name: f for f in all_fields}, custom=custom)


def build_schema(hub_id_field: str = "Hub_Id__c",
                 invoice_object: str = "Billing_Invoice__c") -> dict[str, SObject]:
    """Every sObject the emulator knows, keyed by API name."""
    inv_children = invoice_object.removesuffix("__c") + "s__r"
    objects = [
        _obj("Account", "001", [
            Field("Name", "string", required=True), Field("Phone", "phone"),
            Field("Website", "url"), Field("Type", "picklist"), Field("Description", "textarea"),
            *(Field(f"{kind}{part}", "string") for kind in ("Billing", "Shipping")
              for part in ("Street", "City", "State", "PostalCode", "Country")),
            Field("Billing_Status__c", "picklist"), Field("Billing_Email__c", "email"),
        ], hub_id_field),
        _obj("Contact", "003", [
            Field("FirstName", "string"), Field("LastName", "string", required=True),
            Field("Email", "email"), Field("Phone", "phone"),
            Field("AccountId", "reference", reference_to="Account", relationship="Account",
                  child_relationship="Contacts"),
        ], hub_id_field),
        _obj("Product2", "01t", [
            Field("Name", "string", required=True), Field("ProductCode", "string"),
            Field("Description", "textarea"), Field("IsActive", "boolean", default=False),
            Field("Family", "picklist"),
        ], hub_id_field),
        _obj("Pricebook2", "01s", [
            Field("Name", "string", required=True), Field("IsActive", "boolean", default=False),
            Field("IsStandard", "boolean", writable=False, default=False),
        ], hub_id_field, hub_marker=False),
        _obj("PricebookEntry", "01u", [
            Field("Pricebook2Id", "reference", required=True, reference_to="Pricebook2",
                  relationship="Pricebook2", child_relationship="PricebookEntries"),
            Field("Product2Id", "reference", required=True, reference_to="Product2",
                  relationship="Product2", child_relationship="PricebookEntries"),
            Field("UnitPrice", "currency", required=True), Field("IsActive", "boolean", default=False),
            Field("UseStandardPrice", "boolean", default=False),
            Field("Billing_Interval__c", "picklist"),
        ], hub_id_field),
        _obj("Opportunity", "006", [
            Field("Name", "string", required=True), Field("StageName", "picklist", required=True),
            Field("CloseDate", "date", required=True), Field("Amount", "currency"),
            Field("Probability", "percent"), Field("Type", "picklist"),
            Field("Description", "textarea"),
            Field("IsWon", "boolean", writable=False, default=False),
            Field("IsClosed", "boolean", writable=False, default=False),
            Field("AccountId", "reference", reference_to="Account", relationship="Account",
                  child_relationship="Opportunities"),
            Field("Pricebook2Id", "reference", reference_to="Pricebook2", relationship="Pricebook2",
                  child_relationship="Opportunities"),
        ], hub_id_field),
        _obj("OpportunityLineItem", "00k", [
            Field("OpportunityId", "reference", required=True, reference_to="Opportunity",
                  relationship="Opportunity", child_relationship="OpportunityLineItems"),
            Field("PricebookEntryId", "reference", reference_to="PricebookEntry",
                  relationship="PricebookEntry", child_relationship="OpportunityLineItems"),
            Field("Product2Id", "reference", reference_to="Product2", relationship="Product2",
                  child_relationship="OpportunityLineItems"),
            Field("Quantity", "double", required=True), Field("UnitPrice", "currency"),
            Field("TotalPrice", "currency", writable=False), Field("Description", "string"),
            Field("Name", "string", writable=False),
        ], hub_id_field, hub_marker=False),
        _obj("Order", "801", [
            Field("AccountId", "reference", required=True, reference_to="Account",
                  relationship="Account", child_relationship="Orders"),
            Field("OpportunityId", "reference", reference_to="Opportunity", relationship="Opportunity",
                  child_relationship="Orders"),
            Field("Pricebook2Id", "reference", reference_to="Pricebook2", relationship="Pricebook2",
                  child_relationship="Orders"),
            Field("Status", "picklist", required=True, default="Draft"),
            Field("EffectiveDate", "date", required=True), Field("Description", "textarea"),
        ], hub_id_field),
        _obj(invoice_object, "a0B", [
            Field("Name", "string"), Field("Invoice_Number__c", "string"),
            Field("Account__c", "reference", reference_to="Account", relationship="Account__r",
                  child_relationship=inv_children),
            Field("Opportunity__c", "reference", reference_to="Opportunity",
                  relationship="Opportunity__r", child_relationship=inv_children),
            Field("Amount__c", "currency"), Field("Amount_Paid__c", "currency"),
            Field("Amount_Credited__c", "currency"),
            Field("Status__c", "picklist"), Field("Due_Date__c", "date"),
            Field("Paid_Date__c", "date"),
        ], hub_id_field, custom=True),
    ]
    return {o.name: o for o in objects}


def child_relationships(schema: dict[str, SObject], parent: str) -> dict[str, tuple[str, Field]]:
    """Lower-cased child relationship name -> (child object, its reference field)."""
    found: dict[str, tuple[str, Field]] = {}
    for obj in schema.values():
        for f in obj.fields.values():
            if f.reference_to == parent and f.child_relationship:
                found[f.child_relationship.lower()] = (obj.name, f)
    return found
