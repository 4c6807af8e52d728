"""The emulated org's metadata: sObjects, their fields, references and relationships.

One table drives validation, ``describe``, SOQL field resolution (case-insensitive, parent and
child relationships) and type conversion. Custom names (the hub's external-id field and the
invoice object) are parameters, because the connector reads them from config; so are the two
things a real org may lack: multiple currencies and billhub's custom schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # id string boolean int double currency percent date datetime reference picklist email address
    required: bool = False
    writable: bool = True
    reference_to: str | None = None
    relationship: str | None = None  # parent relationship name (Account, Account__r)
    child_relationship: str | None = None  # the name the parent uses for the children
    external_id: bool = False
    unique: bool = False
    default: object = None
    nillable: bool | None = None  # None: not required and not a checkbox
    compound: str | None = None  # the compound field this one is part of (FirstName -> Name)
    name_field: bool = False  # the record's name (describe's nameField)
    defaulted: bool = False  # Salesforce fills it on create when it is not given
    length: int = 0  # describe's length for text kinds (0: the kind's usual one)
    values: tuple[str, ...] = ()  # a picklist's values (describe's picklistValues; not restricted)

    @property
    def is_nillable(self) -> bool:
        if self.nillable is not None:
            return self.nillable
        return not self.required and self.type != "boolean"


@dataclass
class SObject:
    name: str
    key_prefix: str
    fields: dict[str, Field] = field(default_factory=dict)
    custom: bool = False
    createable: bool = True
    updateable: bool = True
    deletable: bool = True

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


def _audit(name: str, relationship: str) -> Field:
    """CreatedById / LastModifiedById: the user who did it, set by Salesforce."""
    return Field(name, "reference", writable=False, reference_to="User", relationship=relationship,
                 nillable=False, defaulted=True)


# Every sObject has these (Object Reference, "System Fields"); none is nillable.
SYSTEM_FIELDS = (
    Field("Id", "id", writable=False, nillable=False, defaulted=True),
    Field("IsDeleted", "boolean", writable=False, default=False, defaulted=True),
    Field("CreatedDate", "datetime", writable=False, nillable=False, defaulted=True),
    _audit("CreatedById", "CreatedBy"),
    Field("LastModifiedDate", "datetime", writable=False, nillable=False, defaulted=True),
    _audit("LastModifiedById", "LastModifiedBy"),
    Field("SystemModstamp", "datetime", writable=False, nillable=False, defaulted=True),
)
AUDIT_FIELDS = ("CreatedById", "LastModifiedById")

# The record's owner on objects that have one (not on Product2, price books, their entries or
# opportunity products, whose access follows the org's defaults or the parent).
OWNER = Field("OwnerId", "reference", reference_to="User", relationship="Owner", nillable=False,
              defaulted=True)

# The custom fields and object billhub's own setup adds to an org (README "Salesforce setup");
# a fresh org has none of them.
BILLHUB_ACCOUNT_FIELDS = ("Billing_Status__c", "Billing_Email__c")
BILLHUB_PRICE_FIELDS = ("Billing_Interval__c",)

DERIVED = {"IsWon", "IsClosed", "TotalPrice"}


def _obj(name: str, prefix: str, fields: list[Field], hub_id_field: str | None, *,
         currency: str | None, custom: bool = False, owner: bool = False) -> SObject:
    all_fields = list(SYSTEM_FIELDS)
    if owner:
        all_fields.append(OWNER)
    if currency is not None:
        # Only a multi-currency org has the field at all (Salesforce Help, "Considerations for
        # Enabling Multiple Currencies"); its default is the corporate currency.
        all_fields.append(Field("CurrencyIsoCode", "picklist", default=currency, nillable=False,
                                defaulted=True))
    all_fields += fields
    if hub_id_field is not None:
        all_fields.append(Field(hub_id_field, "string", external_id=True, unique=True))
    return SObject(name, prefix, {f.name: f for f in all_fields}, custom=custom)


def _name(required: bool = True, writable: bool = True, length: int = 255) -> Field:
    return Field("Name", "string", required=required, writable=writable, name_field=True,
                 nillable=False if not writable else None, length=length)


# A standard address's parts and their lengths (Object Reference, "Address Compound Fields";
# Account's BillingCity is 40, BillingState 80, BillingPostalCode 20, BillingCountry 80 and its
# street a 255-character text area), plus the geocode parts.
ADDRESS_PARTS = (("Street", "textarea", 255), ("City", "string", 40), ("State", "string", 80),
                 ("PostalCode", "string", 20), ("Country", "string", 80), ("Latitude", "double", 0),
                 ("Longitude", "double", 0), ("GeocodeAccuracy", "picklist", 40))
# The compound value's keys, in the REST API's JSON (without state and country picklists, which
# add countryCode and stateCode), and the part each comes from.
ADDRESS_KEYS = {"city": "City", "country": "Country", "geocodeAccuracy": "GeocodeAccuracy",
                "latitude": "Latitude", "longitude": "Longitude", "postalCode": "PostalCode",
                "state": "State", "street": "Street"}


def address(prefix: str) -> list[Field]:
    """``BillingStreet`` ... ``BillingGeocodeAccuracy`` and the read-only compound
    ``BillingAddress`` (type ``address``) Salesforce builds from them (API 30.0 and later)."""
    compound = f"{prefix}Address"
    return [*(Field(f"{prefix}{part}", kind, compound=compound, length=length)
              for part, kind, length in ADDRESS_PARTS),
            Field(compound, "address", writable=False)]


def _viewed() -> list[Field]:
    """When the running user last viewed or referenced the record, and its last activity: set by
    Salesforce (the UI, tasks and events), never by the API, so null on API-made records."""
    return [Field("LastActivityDate", "date", writable=False), Field("LastViewedDate", "datetime", writable=False),
            Field("LastReferencedDate", "datetime", writable=False)]


# Standard picklists of a new org (Object Reference and Setup's defaults), and billhub's own
# (README "Salesforce setup"). Salesforce does not restrict these: other values are accepted.
STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
          "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
              "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
              "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
              "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
              "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
              "Utilities", "Other")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
BILLHUB_PICKLISTS = {"Billing_Status__c": ("none", "active", "past_due", "canceled"),
                     "Billing_Interval__c": ("day", "week", "month", "year"),
                     "Status__c": ("Draft", "Open", "Paid", "Void", "Uncollectible")}


def _person(first_last_required: bool = True) -> list[Field]:
    """FirstName / LastName and the read-only compound Name Salesforce builds from them."""
    return [Field("FirstName", "string", compound="Name", length=40),
            Field("LastName", "string", required=first_last_required, compound="Name", length=80),
            _name(required=False, writable=False, length=121)]


def _standard_objects() -> list[SObject]:
    """The org itself and its users: read-only here (the emulator models no licences or
    profiles, so it creates no users); one of each exists."""
    organization = SObject("Organization", "00D", {f.name: f for f in [
        *SYSTEM_FIELDS, _name(), Field("DefaultCurrencyIsoCode", "picklist", writable=False),
        Field("IsSandbox", "boolean", writable=False, default=False),
        Field("OrganizationType", "picklist", writable=False),
        Field("LanguageLocaleKey", "picklist"), Field("DefaultLocaleSidKey", "picklist"),
        Field("TimeZoneSidKey", "picklist")]}, createable=False, updateable=False, deletable=False)
    user = SObject("User", "005", {f.name: f for f in [
        *SYSTEM_FIELDS, Field("Username", "string", required=True, unique=True), *_person(),
        Field("Email", "email", required=True), Field("Alias", "string", required=True),
        Field("IsActive", "boolean", default=True)]}, createable=False, deletable=False)
    return [organization, user]


def build_schema(hub_id_field: str = "Hub_Id__c", invoice_object: str = "Billing_Invoice__c", *,
                 multi_currency: bool = True, currency: str = "USD",
                 custom_schema: bool = True) -> dict[str, SObject]:
    """Every sObject the emulator knows, keyed by API name.

    ``multi_currency`` False is a single-currency org (Salesforce's default): no object has
    ``CurrencyIsoCode`` and every amount is in ``currency``, the org's
    ``Organization.DefaultCurrencyIsoCode``. ``custom_schema`` False is a fresh org without
    billhub's setup: no hub marker, no ``Billing_*__c`` fields and no invoice object.
    """
    money = currency if multi_currency else None
    hub = hub_id_field if custom_schema else None
    ours = custom_schema  # billhub's own custom fields

    def custom(*names: str, kind: str = "picklist") -> list[Field]:
        return [Field(n, "email" if n.endswith("Email__c") else kind, values=BILLHUB_PICKLISTS.get(n, ()))
                for n in names] if ours else []

    inv_children = invoice_object.removesuffix("__c") + "s__r"
    objects = _standard_objects() + [
        _obj("Account", "001", [
            Field("MasterRecordId", "reference", writable=False, reference_to="Account",
                  relationship="MasterRecord"),
            _name(), Field("Type", "picklist", values=("Prospect", "Customer - Direct", "Customer - Channel",
                                                       "Channel Partner / Reseller", "Installation Partner",
                                                       "Technology Partner", "Other")),
            Field("ParentId", "reference", reference_to="Account", relationship="Parent",
                  child_relationship="ChildAccounts"),
            *address("Billing"), *address("Shipping"),
            Field("Phone", "phone"), Field("Fax", "phone"), Field("AccountNumber", "string", length=40),
            Field("Website", "url"), Field("Industry", "picklist", values=INDUSTRIES),
            Field("AnnualRevenue", "currency"), Field("NumberOfEmployees", "int"),
            Field("Description", "textarea"), Field("AccountSource", "picklist", values=LEAD_SOURCES),
            *_viewed(), *custom(*BILLHUB_ACCOUNT_FIELDS),
        ], hub, currency=money, owner=True),
        _obj("Contact", "003", [
            Field("AccountId", "reference", reference_to="Account", relationship="Account",
                  child_relationship="Contacts"),
            Field("Salutation", "picklist", values=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof."), compound="Name"),
            *_person(), *address("Mailing"), Field("Phone", "phone"), Field("MobilePhone", "phone"),
            Field("Email", "email"), Field("Title", "string", length=128), Field("Department", "string", length=80),
            Field("LeadSource", "picklist", values=LEAD_SOURCES), Field("Description", "textarea"),
            *_viewed(),
        ], hub, currency=money, owner=True),
        _obj("Product2", "01t", [
            _name(), Field("ProductCode", "string"),
            Field("Description", "textarea", length=4000), Field("IsActive", "boolean", default=False),
            Field("Family", "picklist"), *_viewed()[1:],
        ], hub, currency=money),
        _obj("Pricebook2", "01s", [
            _name(), Field("IsActive", "boolean", default=False),
            Field("IsStandard", "boolean", writable=False, default=False),
        ], None, currency=money),
        _obj("PricebookEntry", "01u", [
            _name(required=False, writable=False),  # the product's, read-only
            Field("Pricebook2Id", "reference", required=True, reference_to="Pricebook2",
                  relationship="Pricebook2", child_relationship="PricebookEntries"),
            Field("Product2Id", "reference", required=True, reference_to="Product2",
                  relationship="Product2", child_relationship="PricebookEntries"),
            Field("UnitPrice", "currency", required=True), Field("IsActive", "boolean", default=False),
            Field("UseStandardPrice", "boolean", default=False),
            *custom(*BILLHUB_PRICE_FIELDS),
        ], hub, currency=money),
        _obj("Opportunity", "006", [
            _name(length=120), Field("StageName", "picklist", required=True, values=STAGES),
            Field("CloseDate", "date", required=True), Field("Amount", "currency"),
            Field("Probability", "percent"),
            Field("Type", "picklist", values=("Existing Customer - Upgrade", "Existing Customer - Replacement",
                                              "Existing Customer - Downgrade", "New Customer")),
            Field("Description", "textarea"), Field("NextStep", "string", length=255),
            Field("LeadSource", "picklist", values=LEAD_SOURCES), *_viewed(),
            Field("IsWon", "boolean", writable=False, default=False),
            Field("IsClosed", "boolean", writable=False, default=False),
            Field("AccountId", "reference", reference_to="Account", relationship="Account",
                  child_relationship="Opportunities"),
            Field("Pricebook2Id", "reference", reference_to="Pricebook2", relationship="Pricebook2",
                  child_relationship="Opportunities"),
        ], hub, currency=money, owner=True),
        _obj("OpportunityLineItem", "00k", [
            Field("OpportunityId", "reference", required=True, reference_to="Opportunity",
                  relationship="Opportunity", child_relationship="OpportunityLineItems"),
            Field("PricebookEntryId", "reference", reference_to="PricebookEntry",
                  relationship="PricebookEntry", child_relationship="OpportunityLineItems"),
            Field("Product2Id", "reference", reference_to="Product2", relationship="Product2",
                  child_relationship="OpportunityLineItems"),
            Field("Quantity", "double", required=True), Field("UnitPrice", "currency"),
            Field("TotalPrice", "currency", writable=False), Field("Description", "string"),
            _name(required=False, writable=False),
        ], None, currency=money),
        _obj("Order", "801", [
            Field("AccountId", "reference", required=True, reference_to="Account",
                  relationship="Account", child_relationship="Orders"),
            Field("OpportunityId", "reference", reference_to="Opportunity", relationship="Opportunity",
                  child_relationship="Orders"),
            Field("Pricebook2Id", "reference", reference_to="Pricebook2", relationship="Pricebook2",
                  child_relationship="Orders"),
            Field("Status", "picklist", required=True, default="Draft", values=("Draft", "Activated")),
            Field("EffectiveDate", "date", required=True), Field("Description", "textarea"),
        ], hub, currency=money, owner=True),
    ]
    if ours:
        objects.append(_obj(invoice_object, "a0B", [
            Field("Name", "string", name_field=True, length=80), Field("Invoice_Number__c", "string"),
            Field("Account__c", "reference", reference_to="Account", relationship="Account__r",
                  child_relationship=inv_children),
            Field("Opportunity__c", "reference", reference_to="Opportunity",
                  relationship="Opportunity__r", child_relationship=inv_children),
            Field("Amount__c", "currency"), Field("Amount_Paid__c", "currency"),
            Field("Amount_Credited__c", "currency"),
            Field("Status__c", "picklist"), Field("Due_Date__c", "date"),
            Field("Paid_Date__c", "date"),
        ], hub, currency=money, custom=True, owner=True))
    return {o.name: o for o in objects}


def child_relationships(schema: dict[str, SObject], parent: str) -> dict[str, tuple[str, Field]]:
    """Lower-cased child relationship name -> (child object, its reference field)."""
    found: dict[str, tuple[str, Field]] = {}
    for obj in schema.values():
        for f in obj.fields.values():
            if f.reference_to == parent and f.child_relationship:
                found[f.child_relationship.lower()] = (obj.name, f)
    return found
