"""The emulated org's records: tables per sObject, ids, value conversion and validation, the
fields Salesforce derives itself (roll-ups, formulas), deletes with their cascades and the
15-day recycle bin, and direct seeding for tests and the demo.

The base of the emulator's API parts; it knows nothing about HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.emulation import EmulatorClock
from connectors.salesforce.emulator.describe import field_label, field_length
from connectors.salesforce.emulator.schema import ADDRESS_KEYS, AUDIT_FIELDS, DERIVED, Field, SObject
from connectors.salesforce.emulator.wire import (
    ORG_ID,
    USER_ID,
    SfError,
    id18,
    not_found,
    parse_datetime,
)

DELETED_WINDOW = timedelta(days=15)
TEXT_KINDS = ("string", "textarea", "email", "phone", "url", "picklist")  # held to describe's length
DELETED_AT = "__deleted_at"  # when a record went to the recycle bin (not a Salesforce field)

# A record before a change inside an all-or-none collection call: (sobject, id, copy or None).
JournalEntry = tuple[str, str, dict[str, Any] | None]


class OrgStore:
    """Records by sObject, with Salesforce's validation, derivations and deletes over them."""

    clock: EmulatorClock
    state_lock: threading.RLock
    schema: dict[str, SObject]
    by_lower: dict[str, SObject]
    org_currency: str  # the corporate currency (a single-currency org's only one)

    def reset_org(self) -> None:
        """Empty tables, plus what every org has: its ``Organization`` row, its one user (whom
        every session acts as: owner, creator and last modifier of what the API writes) and the
        standard price book."""
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self.type_of: dict[str, str] = {}
        # (sobject, field, case-folded value) -> ids of records ever stored with it, for the
        # unique and external-id fields: upserts and uniqueness checks without reading the
        # whole table. Only added to; lookups check each candidate's current value.
        self.keyed: dict[tuple[str, str, str], set[str]] = {}
        self.counter = 0
        self._journal: list[JournalEntry] | None = None
        self.user_id = USER_ID
        self._insert("User", {"Id": USER_ID, "Username": "integration@billhub.emulator",
                              "FirstName": "Integration", "LastName": "User",
                              "Email": "integration@billhub.emulator", "Alias": "integ"}, system=True)
        self._insert("Organization", {"Id": ORG_ID, "Name": "billhub emulated org",
                                      "DefaultCurrencyIsoCode": self.org_currency,
                                      "OrganizationType": "Developer Edition",
                                      "LanguageLocaleKey": "en_US", "DefaultLocaleSidKey": "en_US",
                                      "TimeZoneSidKey": "GMT"}, system=True)
        std = self._insert("Pricebook2", {"Name": "Standard Price Book", "IsActive": True})
        self.tables["Pricebook2"][std]["IsStandard"] = True
        self.standard_pricebook_id = std

    def new_id(self, sobject: str) -> str:
        self.counter += 1
        prefix = self.schema[sobject].key_prefix
        return id18(f"{prefix}5g{self.counter:010d}")

    def records(self, sobject: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Direct inspection for tests: copies of the stored records."""
        with self.state_lock:
            return [dict(r) for r in self.tables[sobject].values()
                    if include_deleted or not r["IsDeleted"]]

    def obj(self, name: str) -> SObject:
        found = self.by_lower.get(name.lower())
        if found is None:
            raise not_found()
        return found

    def check_operation(self, obj: SObject, verb: str) -> None:
        """Refuse an API write the object does not take (``Organization``, ``User`` here)."""
        allowed = {"inserted": obj.createable, "updated": obj.updateable, "deleted": obj.deletable}[verb]
        if not allowed:
            raise SfError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be {verb}: {obj.name}")

    # ------------------------------------------------------------------ value conversion

    def _convert(self, obj: SObject, f: Field, value: Any) -> Any:
        if value is None:
            return None
        bad = SfError(400, "JSON_PARSER_ERROR",
                      f"Cannot deserialize instance of {f.type} from value {value!r} for field {f.name}",
                      [f.name])
        if f.type == "boolean":
            if not isinstance(value, bool):
                raise bad
            return value
        if f.type == "int":
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit():
                raise bad
            return int(value)
        if f.type in ("double", "currency", "percent"):
            if isinstance(value, bool):
                raise bad
            if isinstance(value, float):
                value = str(value)
            try:
                return Decimal(value) if isinstance(value, (int, str)) else Decimal(value)
            except (InvalidOperation, TypeError):
                raise bad from None
        if not isinstance(value, str):
            raise bad
        if f.type == "date":
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                raise bad from None
        if f.type == "datetime":
            try:
                return parse_datetime(value)
            except ValueError:
                raise bad from None
        if f.type == "reference" and value:
            canon = self._canon_id(value)
            target = self.type_of.get(canon)
            if target is None or target != f.reference_to or self.tables[target][canon]["IsDeleted"]:
                raise SfError(400, "INVALID_CROSS_REFERENCE_KEY",
                              f"invalid cross reference id: {value}", [f.name])
            return canon
        limit = field_length(f)
        if f.type in TEXT_KINDS and len(value) > limit:
            raise SfError(400, "STRING_TOO_LONG", f"{field_label(obj, f)}: data value too large: {value} "
                          f"(max length={limit})", [f.name])
        return value

    def _canon_id(self, value: str) -> str:
        if value in self.type_of:
            return value
        if len(value) == 15:
            full = id18(value)
            if full in self.type_of:
                return full
        lowered = value.lower()
        if len(value) == 18:
            for known in self.type_of:  # 18-char ids are case-insensitive
                if known.lower() == lowered:
                    return known
        return value

    def _values(self, obj: SObject, body: dict[str, Any], *, creating: bool,
                system: bool = False) -> dict[str, Any]:
        values: dict[str, Any] = {}
        unwritable: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None:
                raise SfError(400, "INVALID_FIELD",
                              f"No such column '{key}' on sobject of type {obj.name}", [key])
            if not f.writable and not system:
                if f.name == "Id" and not creating:
                    continue
                unwritable.append(f.name)
                continue
            values[f.name] = self._convert(obj, f, raw)
        if unwritable:
            raise SfError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                          f"Unable to create/update fields: {', '.join(unwritable)}. Please check the "
                          "security settings of this field and verify that it is read/write for your "
                          "profile or permission set.", unwritable)
        return values

    # ------------------------------------------------------------------ mutations

    def _remember(self, sobject: str, record_id: str) -> None:
        if self._journal is not None:
            before = self.tables[sobject].get(record_id)
            self._journal.append((sobject, record_id, dict(before) if before is not None else None))

    def _note_keys(self, sobject: str, record: dict[str, Any]) -> None:
        for f in self.schema[sobject].fields.values():
            if (f.unique or f.external_id) and record.get(f.name) not in (None, ""):
                key = (sobject, f.name, str(record[f.name]).casefold())
                self.keyed.setdefault(key, set()).add(record["Id"])

    def _with_value(self, sobject: str, field_name: str, value: Any) -> list[tuple[str, dict[str, Any]]]:
        """Live records whose ``field_name`` equals ``value`` regardless of case, oldest first."""
        wanted, table = str(value).casefold(), self.tables[sobject]
        f = self.schema[sobject].field(field_name)
        candidates: Iterable[tuple[str, dict[str, Any] | None]]
        if f is not None and (f.unique or f.external_id):
            candidates = ((rid, table.get(rid)) for rid in sorted(self.keyed.get((sobject, f.name, wanted), ())))
        else:
            candidates = iter(table.items())
        return [(rid, r) for rid, r in candidates
                if r is not None and not r["IsDeleted"] and str(r.get(field_name) or "").casefold() == wanted]

    def _check_unique(self, obj: SObject, values: dict[str, Any], record_id: str | None) -> None:
        for f in obj.fields.values():
            if f.unique and values.get(f.name) is not None:
                for other_id, _other in self._with_value(obj.name, f.name, values[f.name]):
                    if other_id != record_id:
                        raise SfError(400, "DUPLICATE_VALUE",
                                      f"duplicate value found: {f.name} duplicates value on record "
                                      f"with id: {other_id}", [f.name])

    def _insert(self, sobject: str, body: dict[str, Any], *, system: bool = False,
                check_unique: bool = True) -> str:
        obj = self.schema[sobject]
        values = self._values(obj, body, creating=True, system=system)
        for f in obj.fields.values():
            if f.name not in values and f.default is not None:
                values[f.name] = f.default
        if "OwnerId" in obj.fields and not values.get("OwnerId"):
            values["OwnerId"] = self.user_id
        if sobject == "PricebookEntry" and not values.get("Pricebook2Id"):
            values["Pricebook2Id"] = getattr(self, "standard_pricebook_id", None)
        missing = [f.name for f in obj.fields.values()
                   if f.required and values.get(f.name) in (None, "") and f.name not in DERIVED]
        if missing:
            raise SfError(400, "REQUIRED_FIELD_MISSING",
                          f"Required fields are missing: [{', '.join(missing)}]", missing)
        if check_unique:
            self._check_unique(obj, values, None)
        now = self.clock.now()
        record_id = values.get("Id") or self.new_id(sobject)
        record: dict[str, Any] = {f.name: None for f in obj.fields.values()}
        record.update({"IsDeleted": False, "CreatedDate": now, "LastModifiedDate": now,
                       "SystemModstamp": now, **dict.fromkeys(AUDIT_FIELDS, self.user_id)})
        record.update(values)
        record["Id"] = record_id
        self._remember(sobject, record_id)
        self.tables[sobject][record_id] = record
        self.type_of[record_id] = sobject
        self._note_keys(sobject, record)
        self._derive(sobject, record)
        return str(record_id)

    def _update(self, sobject: str, record_id: str, body: dict[str, Any], *, system: bool = False) -> None:
        obj = self.schema[sobject]
        record = self._live(sobject, record_id)
        values = self._values(obj, body, creating=False, system=system)
        self._check_unique(obj, {**record, **values}, record["Id"])
        self._remember(sobject, record["Id"])
        stamp = {} if system and "SystemModstamp" in values else {
            "LastModifiedDate": self.clock.now(), "SystemModstamp": self.clock.now(),
            "LastModifiedById": self.user_id}
        self.tables[sobject][record["Id"]] = {**record, **values, **stamp}
        self._note_keys(sobject, self.tables[sobject][record["Id"]])
        self._derive(sobject, self.tables[sobject][record["Id"]])

    def _delete(self, sobject: str, record_id: str) -> None:
        record = self._live(sobject, record_id)
        now = self.clock.now()
        self._remember(sobject, record["Id"])
        self.tables[sobject][record["Id"]] = {**record, "IsDeleted": True, "SystemModstamp": now,
                                              "LastModifiedDate": now, DELETED_AT: now}
        cascade = {"Account": [("Contact", "AccountId"), ("Opportunity", "AccountId")],
                   "Opportunity": [("OpportunityLineItem", "OpportunityId")]}
        for child, ref in cascade.get(sobject, []):
            for child_id, child_rec in list(self.tables[child].items()):
                if child_rec.get(ref) == record["Id"] and not child_rec["IsDeleted"]:
                    self._delete(child, child_id)
        if sobject == "OpportunityLineItem":
            self._rollup(record.get("OpportunityId"))

    def _live(self, sobject: str, record_id: str) -> dict[str, Any]:
        canon = self._canon_id(record_id)
        record = self.tables[sobject].get(canon)
        if record is None:
            raise not_found()
        if record["IsDeleted"]:
            raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def _derive(self, sobject: str, record: dict[str, Any]) -> None:
        """Formula, compound and roll-up fields Salesforce computes itself."""
        for f in self.schema[sobject].fields.values():
            if f.type == "address":  # null while every part is
                prefix = f.name.removesuffix("Address")
                parts = {key: record.get(prefix + part) for key, part in ADDRESS_KEYS.items()}
                record[f.name] = parts if any(v not in (None, "") for v in parts.values()) else None
        if sobject in ("Contact", "User"):
            record["Name"] = " ".join(str(p) for p in (record.get("FirstName"), record.get("LastName")) if p)
        elif sobject == "PricebookEntry":
            product = self.tables["Product2"].get(record.get("Product2Id") or "")
            record["Name"] = product["Name"] if product is not None else None
        elif sobject == "Opportunity":
            stage = str(record.get("StageName") or "")
            record["IsWon"] = stage == "Closed Won"
            record["IsClosed"] = stage.startswith("Closed")
        elif sobject == "OpportunityLineItem":
            entry_id = record.get("PricebookEntryId")
            entry = self.tables["PricebookEntry"].get(entry_id) if entry_id else None
            if entry is not None:
                record["Product2Id"] = entry["Product2Id"]
                if record.get("UnitPrice") is None:
                    record["UnitPrice"] = entry["UnitPrice"]
            product = self.tables["Product2"].get(record.get("Product2Id") or "")
            if product is not None:
                record["Name"] = product["Name"]
            if record.get("Quantity") is not None and record.get("UnitPrice") is not None:
                record["TotalPrice"] = record["Quantity"] * record["UnitPrice"]
            self._rollup(record.get("OpportunityId"))

    def _rollup(self, opportunity_id: str | None) -> None:
        opp = self.tables["Opportunity"].get(opportunity_id or "")
        if opp is None:
            return
        lines = [r for r in self.tables["OpportunityLineItem"].values()
                 if r.get("OpportunityId") == opp["Id"] and not r["IsDeleted"]]
        self._remember("Opportunity", opp["Id"])
        total = sum((r.get("TotalPrice") or Decimal(0) for r in lines), Decimal(0))
        opp["Amount"] = total if lines else opp.get("Amount")
        opp["SystemModstamp"] = opp["LastModifiedDate"] = self.clock.now()

    def _upsert(self, sobject: str, field_name: str, value: str, body: dict[str, Any]) -> tuple[str, bool]:
        """Update the one record whose external id is ``value``, or create it; (id, created)."""
        obj = self.schema[sobject]
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not "
                          f"accessible: {field_name}")
        matches = self._match_external(sobject, f.name, value)
        if len(matches) > 1:
            raise SfError(300, "MULTIPLE_CHOICES", f"{f.name}: more than one record found for "
                          f"external id field: {matches}", [f.name])
        clean = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
        if matches:
            self._update(sobject, matches[0], clean)
            return matches[0], False
        return self._insert(sobject, {**clean, f.name: value}), True

    def _match_external(self, sobject: str, field_name: str, value: str) -> list[str]:
        return [rid for rid, _r in self._with_value(sobject, field_name, value)]

    def _purge(self) -> None:
        """Empty the recycle bin of records deleted more than ``DELETED_WINDOW`` ago."""
        horizon = self.clock.now() - DELETED_WINDOW
        for table in self.tables.values():
            for rid in [rid for rid, r in table.items() if r["IsDeleted"] and r[DELETED_AT] < horizon]:
                del table[rid]
                self.type_of.pop(rid, None)

    # ------------------------------------------------------------------ seeding

    SEED_ORDER = ("Account", "Contact", "Product2", "Pricebook2", "PricebookEntry", "Opportunity",
                  "OpportunityLineItem", "Order")

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create records directly (no API usage, no auth).

        ``{"Account": [{"ref": "acme", "Name": "Acme", "Hub_Id__c": "…"}], "Contact": [{"LastName":
        "Doe", "Email": "…", "AccountId": "@acme"}], "Product2": […], "PricebookEntry": [{"Product2Id":
        "@widget", "UnitPrice": "49.00"}], "Opportunity": [{"ref": "deal", "AccountId": "@acme",
        "StageName": "Negotiation", "CloseDate": "2026-11-30", "line_items": [{"PricebookEntryId":
        "@widget_usd", "Quantity": 2}]}], "Billing_Invoice__c": […]}``. ``"@name"`` refers to an earlier
        record's ``ref``; amounts are best given as strings. System fields (``SystemModstamp``,
        ``CreatedDate``) may be set. Returns ``{"ids": {type: [ids]}, "refs": {name: id}}``.
        """
        return self.seed_records(body)

    def seed_records(self, body: dict[str, Any]) -> dict[str, Any]:
        refs: dict[str, str] = {}
        ids: dict[str, list[str]] = {}
        order = list(self.SEED_ORDER) + [k for k in body if k not in self.SEED_ORDER]

        def resolve(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("@"):
                return refs[value[1:]]
            if isinstance(value, float):
                return str(value)
            return value

        with self.state_lock:
            for name in order:
                if name not in body:
                    continue
                obj = self.obj(name)
                for spec in body[name]:
                    fields = {k: resolve(v) for k, v in spec.items() if k not in ("ref", "line_items")}
                    stamps = {k: fields.pop(k) for k in ("SystemModstamp", "CreatedDate",
                                                         "LastModifiedDate", "IsWon", "IsClosed")
                              if k in fields}
                    record_id = self._insert(obj.name, fields, check_unique=False)
                    if stamps:
                        self._update(obj.name, record_id, stamps, system=True)
                    ids.setdefault(obj.name, []).append(record_id)
                    if spec.get("ref"):
                        refs[str(spec["ref"])] = record_id
                    for line in spec.get("line_items", []):
                        line_fields = {k: resolve(v) for k, v in line.items() if k != "ref"}
                        line_id = self._insert("OpportunityLineItem",
                                               {**line_fields, "OpportunityId": record_id})
                        ids.setdefault("OpportunityLineItem", []).append(line_id)
        return {"ids": ids, "refs": refs}

    def insert(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create one record directly (tests); system fields may be set."""
        return str(self.seed_records({sobject: [fields]})["ids"][sobject][0])

    def update(self, sobject: str, record_id: str, fields: dict[str, Any], *, system: bool = False) -> None:
        """Change a record directly, as a person in the Salesforce UI would (stamps times)."""
        with self.state_lock:
            self._update(sobject, record_id, fields, system=system)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.state_lock:
            self._delete(sobject, record_id)
