"""A stateful Salesforce REST emulator that ``simple-salesforce`` talks to unchanged.

Serve it over TLS (``connectors.salesforce.tls.server_context``): the SDK only builds
``https://`` URLs. Wire behaviour follows the REST API docs (api-facts.md §4, §9.4):

* ``/services/oauth2/token`` (refresh_token grant; optional refresh-token rotation);
* ``/services/data/vXX.X/``: sObject create / retrieve / update (``If-Unmodified-Since`` ->
  412) / delete, upsert and retrieve by external id (201 / 200 / 300), ``describe``,
  ``query`` / ``queryAll`` with ``nextRecordsUrl`` paging (2,000 rows, or ``Sforce-Query-Options:
  batchSize=n``), ``composite/sobjects`` (create, update, upsert by external id, delete; at most
  200 records; ``allOrNone``), ``sobjects/T/updated|deleted`` windows (30 / 15 days), ``limits``;
* errors as ``[{message, errorCode, fields}]``; ``INVALID_SESSION_ID`` 401 once a session
  expires on the emulator clock; ``Sforce-Limit-Info: api-usage=n/m`` on every response and 403
  ``REQUEST_LIMIT_EXCEEDED`` once the rolling 24-hour allocation is spent.

Control surface: the shared ``/__emulator/`` routes plus ``POST /__emulator/salesforce`` with any
of ``{"allocation": n, "api_used": n, "expire_sessions": true, "revoke_refresh_tokens": true,
"session_ttl_seconds": n, "page_size": n, "rotate_refresh_tokens": bool}``. ``seed`` takes lists
of field dicts per sObject (see ``SalesforceEmulator.seed``).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL, Emulator, EmulatorClock, RunningEmulator
from connectors.salesforce import soql
from connectors.salesforce.schema import DERIVED, Field, SObject, build_schema, child_relationships
from mapping import exact_json

DEFAULT_CLIENT_ID = "billhub-emulator-client"
DEFAULT_CLIENT_SECRET = "billhub-emulator-secret"
DEFAULT_REFRESH_TOKEN = "billhub-emulator-refresh"
ORG_ID = "00D5g000000EMULAT"
UPDATED_WINDOW = timedelta(days=30)
DELETED_WINDOW = timedelta(days=15)
MAX_COLLECTION = 200
_CHECK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_DELETED_AT = "__deleted_at"


class SfError(Exception):
    """A Salesforce error answer: HTTP status plus one ``{errorCode, message, fields}``."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def rest_body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]

    def collection_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def id18(id15: str) -> str:
    """The case-insensitive 18-character form of a 15-character Salesforce id."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(id15[chunk * 5:chunk * 5 + 5]) if c.isupper())
        suffix += _CHECK_CHARS[bits]
    return id15 + suffix


def sf_datetime(value: datetime) -> str:
    """Salesforce's datetime format: ``2026-11-01T12:00:00.000+0000``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=exact_json.dumps(body), status=status, content_type="application/json",
                        headers=headers)


class SalesforceEmulator(Emulator):
    system = "salesforce"

    def __init__(self, clock: EmulatorClock | None = None, *, hub_id_field: str = "Hub_Id__c",
                 invoice_object: str = "Billing_Invoice__c", allocation: int = 15000,
                 session_ttl_seconds: int = 7200, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET,
                 refresh_token: str = DEFAULT_REFRESH_TOKEN) -> None:
        self.hub_id_field = hub_id_field
        self.invoice_object = invoice_object
        self.schema = build_schema(hub_id_field, invoice_object)
        self.by_lower = {name.lower(): obj for name, obj in self.schema.items()}
        self.default_allocation = allocation
        self.default_ttl = session_ttl_seconds
        self.clients = {client_id: client_secret}
        self.initial_refresh_token = refresh_token
        self.state_lock = threading.RLock()
        super().__init__(clock)
        self.app.middlewares.append(self._salesforce_middleware)
        self.app.on_response_prepare.append(self._limit_header)

    # ------------------------------------------------------------------ state

    def reset_state(self) -> None:
        with self.state_lock:
            self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
            self.type_of: dict[str, str] = {}
            # (sobject, field, case-folded value) -> ids of records ever stored with it, for the
            # unique and external-id fields: upserts and uniqueness checks without reading the
            # whole table. Only added to; lookups check each candidate's current value.
            self.keyed: dict[tuple[str, str, str], set[str]] = {}
            self.counter = 0
            self.sessions: dict[str, datetime] = {}
            self.refresh_tokens: set[str] = {self.initial_refresh_token}
            self.rotate_refresh_tokens = False
            self.allocation = self.default_allocation
            self.usage: deque[datetime] = deque()
            self.session_ttl = timedelta(seconds=self.default_ttl)
            self.page_size = 2000
            self.locators: dict[str, list[dict[str, Any]]] = {}
            self.token_requests = 0
            self._journal: list[tuple[str, str, dict[str, Any] | None]] | None = None
            std = self._insert("Pricebook2", {"Name": "Standard Price Book", "IsActive": True})
            self.tables["Pricebook2"][std]["IsStandard"] = True
            self.standard_pricebook_id = std

    def new_id(self, sobject: str) -> str:
        self.counter += 1
        prefix = self.schema[sobject].key_prefix
        return id18(f"{prefix}5g{self.counter:010d}")

    def issue_session(self) -> str:
        """A fresh access token valid for ``session_ttl`` on the emulator clock."""
        with self.state_lock:
            token = f"{ORG_ID}!{secrets.token_urlsafe(32)}"
            self.sessions[token] = self.clock.now() + self.session_ttl
            return token

    def api_used(self) -> int:
        horizon = self.clock.now() - timedelta(hours=24)
        while self.usage and self.usage[0] <= horizon:
            self.usage.popleft()
        return len(self.usage)

    def set_api_used(self, used: int) -> None:
        with self.state_lock:
            self.usage = deque([self.clock.now()] * used)

    def records(self, sobject: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Direct inspection for tests: copies of the stored records."""
        with self.state_lock:
            return [dict(r) for r in self.tables[sobject].values()
                    if include_deleted or not r["IsDeleted"]]

    def obj(self, name: str) -> SObject:
        found = self.by_lower.get(name.lower())
        if found is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return found

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
                       "SystemModstamp": now})
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
            "LastModifiedDate": self.clock.now(), "SystemModstamp": self.clock.now()}
        self.tables[sobject][record["Id"]] = {**record, **values, **stamp}
        self._note_keys(sobject, self.tables[sobject][record["Id"]])
        self._derive(sobject, self.tables[sobject][record["Id"]])

    def _delete(self, sobject: str, record_id: str) -> None:
        record = self._live(sobject, record_id)
        now = self.clock.now()
        self._remember(sobject, record["Id"])
        self.tables[sobject][record["Id"]] = {**record, "IsDeleted": True, "SystemModstamp": now,
                                              "LastModifiedDate": now, _DELETED_AT: now}
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
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if record["IsDeleted"]:
            raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def _derive(self, sobject: str, record: dict[str, Any]) -> None:
        """Formula and roll-up fields Salesforce computes itself."""
        if sobject == "Opportunity":
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
        horizon = self.clock.now() - DELETED_WINDOW
        for table in self.tables.values():
            for rid in [rid for rid, r in table.items() if r["IsDeleted"] and r[_DELETED_AT] < horizon]:
                del table[rid]
                self.type_of.pop(rid, None)

    # ------------------------------------------------------------------ rendering

    def _url(self, version: str, sobject: str, record_id: str) -> str:
        return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"

    def _wire_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return sf_datetime(value)
        if isinstance(value, date):
            return value.isoformat()
        return value

    def _render(self, version: str, sobject: str, record: dict[str, Any],
                fields: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject,
                                              "url": self._url(version, sobject, record["Id"])}}
        for name in fields or [n for n in self.schema[sobject].fields]:
            out[name] = self._wire_value(record.get(name))
        return out

    # ------------------------------------------------------------------ SOQL

    def _resolve(self, obj: SObject, path: list[str]) -> tuple[list[tuple[SObject, Field]], Field]:
        hops: list[tuple[SObject, Field]] = []
        current = obj
        for seg in path[:-1]:
            rel = current.relationship(seg)
            if rel is None or rel.reference_to is None:
                raise soql.SoqlError(f"Didn't understand relationship '{seg}' in field path. If you "
                                     "are attempting to use a custom relationship, be sure to append "
                                     "the '__r' after the custom relationship name.", "INVALID_FIELD")
            hops.append((current, rel))
            current = self.schema[rel.reference_to]
        last = current.field(path[-1])
        if last is None:
            raise soql.SoqlError(f"No such column '{path[-1]}' on entity '{current.name}'. If you are "
                                 "attempting to use a custom field, be sure to append the '__c' after "
                                 "the custom field name.", "INVALID_FIELD")
        return hops, last

    def _get_path(self, obj: SObject, record: dict[str, Any], path: list[str]) -> Any:
        hops, last = self._resolve(obj, path)
        current: dict[str, Any] | None = record
        for _owner, rel in hops:
            ref = current.get(rel.name) if current else None
            current = self.tables[rel.reference_to or ""].get(ref) if ref else None
            if current is None:
                return None
        return current.get(last.name) if current else None

    def _select(self, query: soql.Query, obj: SObject, rows: list[dict[str, Any]],
                version: str) -> list[dict[str, Any]]:
        children = child_relationships(self.schema, obj.name)
        rendered = []
        for row in rows:
            out: dict[str, Any] = {"attributes": {"type": obj.name,
                                                  "url": self._url(version, obj.name, row["Id"])}}
            for item in query.select_order:
                if isinstance(item, soql.Query):
                    child_name, ref = children[item.sobject.lower()]
                    child_obj = self.schema[child_name]
                    kids = [r for r in self.tables[child_name].values()
                            if r.get(ref.name) == row["Id"] and not r["IsDeleted"]]
                    kids = self._filter(item, child_obj, kids)
                    key = next(f.child_relationship for f in child_obj.fields.values()
                               if f.child_relationship and f.child_relationship.lower() == item.sobject.lower())
                    out[key] = None if not kids else {
                        "totalSize": len(kids), "done": True,
                        "records": self._select(item, child_obj, kids, version)}
                    continue
                self._place(out, obj, row, item, version)
            rendered.append(out)
        return rendered

    def _place(self, out: dict[str, Any], obj: SObject, row: dict[str, Any], path: list[str],
               version: str) -> None:
        hops, last = self._resolve(obj, path)
        target = out
        current: dict[str, Any] | None = row
        for _owner, rel in hops:
            ref = current.get(rel.name) if current else None
            current = self.tables[rel.reference_to or ""].get(ref) if ref else None
            key = rel.relationship or ""
            if current is None:
                target[key] = None
                return
            if not isinstance(target.get(key), dict):
                target[key] = {"attributes": {"type": rel.reference_to,
                                              "url": self._url(version, rel.reference_to or "",
                                                               current["Id"])}}
            target = target[key]
        target[last.name] = self._wire_value(current.get(last.name) if current else None)

    def _getter(self, obj: SObject, record: dict[str, Any]) -> Callable[[list[str]], Any]:
        return lambda path: self._get_path(obj, record, path)

    def _filter(self, query: soql.Query, obj: SObject, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for path in query.fields:
            self._resolve(obj, path)
        rows = [r for r in rows if soql.matches(query.where, self._getter(obj, r))]
        rows = soql.sort_rows(rows, query.order, lambda r, p: self._get_path(obj, r, p))
        rows = rows[query.offset:]
        return rows[:query.limit] if query.limit is not None else rows

    def run_query(self, text: str, include_deleted: bool, version: str) -> tuple[int, list[dict[str, Any]]]:
        try:
            query = soql.parse(text, self.clock.now())
        except soql.SoqlError as exc:
            raise SfError(400, exc.code, f"\n{text}\n^\nERROR at Row:1:Column:1\n{exc}") from None
        obj = self.by_lower.get(query.sobject.lower())
        if obj is None:
            raise SfError(400, "INVALID_TYPE", f"sObject type '{query.sobject}' is not supported. If "
                          "you are attempting to use a custom object, be sure to append the '__c' after "
                          "the entity name.")
        children = child_relationships(self.schema, obj.name)
        try:
            for sub in query.subqueries:
                if sub.sobject.lower() not in children:
                    raise soql.SoqlError(f"Didn't understand relationship '{sub.sobject}' in FROM part "
                                         "of query call.", "INVALID_TYPE")
            self._purge()
            rows = [r for r in self.tables[obj.name].values() if include_deleted or not r["IsDeleted"]]
            rows = self._filter(query, obj, rows)
            if query.count:
                return len(rows), []
            return len(rows), self._select(query, obj, rows, version)
        except soql.SoqlError as exc:
            raise SfError(400, exc.code, str(exc)) from None

    def _page(self, version: str, rows: list[dict[str, Any]], total: int, start: int,
              locator: str | None, batch: int) -> dict[str, Any]:
        chunk = rows[start:start + batch]
        done = start + batch >= len(rows)
        body: dict[str, Any] = {"totalSize": total, "done": done, "records": chunk}
        if not done:
            if locator is None:
                locator = f"01g5g{len(self.locators) + 1:010d}"
                self.locators[locator] = rows
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{start + batch}"
        return body

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

    # ------------------------------------------------------------------ HTTP plumbing

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
        return _json([{"message": message, "errorCode": code, "fields": []}], status)

    def rate_limit_response(self, retry_after: float) -> web.StreamResponse:
        return _json([{"message": "Too many requests; slow down", "errorCode": "REQUEST_LIMIT_EXCEEDED",
                       "fields": []}], 429, headers={"Retry-After": str(int(retry_after))})

    def stat_key(self, request: web.Request) -> str:
        """Fold ids and external-id values out of paths: ``GET sobjects/Account/{id}``."""
        path = request.path
        if not path.startswith("/services/data/"):
            return f"{request.method} {path}"
        parts = [p for p in path.split("/")[4:] if p]
        if len(parts) >= 2 and parts[0] in ("query", "queryAll"):
            parts[1] = "{locator}"
        if parts[:1] == ["sobjects"] and len(parts) == 3 and parts[2] not in ("describe", "updated", "deleted"):
            parts[2] = "{id}"
        if parts[:1] == ["sobjects"] and len(parts) == 4:
            parts[3] = "{value}"
        return f"{request.method} {'/'.join(parts)}"

    @web.middleware
    async def _salesforce_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/services/data/v"):
            return await handler(request)  # type: ignore[no-any-return]
        with self.state_lock:
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip()
            expiry = self.sessions.get(token)
            if expiry is None or expiry <= self.clock.now():
                return _json([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                             401)
            if self.api_used() >= self.allocation:
                return _json([{"message": "TotalRequests Limit exceeded.",
                               "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
            self.usage.append(self.clock.now())
        return await handler(request)  # type: ignore[no-any-return]

    async def _limit_header(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/services/data/"):
            with self.state_lock:
                response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used()}/{self.allocation}"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/services/oauth2/token", self._token)
        router.add_post(CONTROL + "salesforce", self._control)
        router.add_route("*", "/services/data/v{version}/{rest:.*}", self._dispatch)

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        with self.state_lock:
            if "allocation" in body:
                self.allocation = int(body["allocation"])
            if "api_used" in body:
                self.set_api_used(int(body["api_used"]))
            if body.get("expire_sessions"):
                self.sessions.clear()
            if body.get("revoke_refresh_tokens"):
                self.refresh_tokens.clear()
            if "session_ttl_seconds" in body:
                self.session_ttl = timedelta(seconds=float(body["session_ttl_seconds"]))
            if "page_size" in body:
                self.page_size = int(body["page_size"])
            if "rotate_refresh_tokens" in body:
                self.rotate_refresh_tokens = bool(body["rotate_refresh_tokens"])
            return web.json_response({"allocation": self.allocation, "api_used": self.api_used(),
                                      "sessions": len(self.sessions), "page_size": self.page_size})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self.state_lock:
            self.token_requests += 1
            grant = form.get("grant_type")
            if grant != "refresh_token":
                return web.json_response({"error": "unsupported_grant_type",
                                          "error_description": "grant type not supported"}, status=400)
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
            if self.clients.get(client_id) != secret:
                return web.json_response({"error": "invalid_client",
                                          "error_description": "invalid client credentials"}, status=400)
            refresh = str(form.get("refresh_token", ""))
            if refresh not in self.refresh_tokens:
                return web.json_response({"error": "invalid_grant",
                                          "error_description": "expired access/refresh token"}, status=400)
            token = self.issue_session()
            body = {"access_token": token, "signature": secrets.token_urlsafe(16),
                    "scope": "api refresh_token", "instance_url": f"https://{request.host}",
                    "id": f"https://{request.host}/id/{ORG_ID}/0055g000000EMULAT",
                    "token_type": "Bearer", "issued_at": str(int(self.clock.now().timestamp() * 1000))}
            if self.rotate_refresh_tokens:
                self.refresh_tokens.discard(refresh)
                new_refresh = secrets.token_urlsafe(24)
                self.refresh_tokens.add(new_refresh)
                body["refresh_token"] = new_refresh
            return web.json_response(body)

    async def _body(self, request: web.Request) -> Any:
        if not request.can_read_body:
            return {}
        text = await request.text()
        if not text.strip():
            return {}
        try:
            return exact_json.loads(text)
        except ValueError:
            raise SfError(400, "JSON_PARSER_ERROR", "Unexpected character in request body") from None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        parts = [p for p in request.match_info["rest"].split("/") if p]
        try:
            body = await self._body(request) if request.method in ("POST", "PATCH", "PUT") else {}
            with self.state_lock:
                return self._route(request, version, parts, body)
        except SfError as exc:
            if exc.status == 300:
                return _json([self._url(version, *u.split("/", 1)) for u in exc.fields], 300)
            return _json(exc.rest_body(), exc.status)

    def _route(self, request: web.Request, version: str, parts: list[str], body: Any) -> web.StreamResponse:
        method = request.method
        head = parts[0] if parts else ""
        if head in ("query", "queryAll"):
            return self._query(request, version, parts, head == "queryAll")
        if head == "limits" and method == "GET":
            used = self.api_used()
            return _json({"DailyApiRequests": {"Max": self.allocation, "Remaining": self.allocation - used}})
        if parts[:2] == ["composite", "sobjects"]:
            return self._collection(request, version, parts[2:], body)
        if head == "sobjects":
            return self._sobjects(request, version, parts[1:], body)
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    # ------------------------------------------------------------------ handlers

    def _query(self, request: web.Request, version: str, parts: list[str], include_deleted: bool) -> web.Response:
        batch = self.page_size
        options = request.headers.get("Sforce-Query-Options", "")
        if "batchSize=" in options:
            try:
                batch = max(200, min(2000, int(options.split("batchSize=")[1].split(",")[0])))
            except ValueError:
                pass
        if len(parts) > 1:
            locator, _, start = parts[1].rpartition("-")
            rows = self.locators.get(locator)
            if rows is None or not start.isdigit():
                raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return _json(self._page(version, rows, len(rows), int(start), locator, batch))
        text = request.query.get("q")
        if not text:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        total, rows = self.run_query(text, include_deleted, version)
        return _json(self._page(version, rows, total, 0, None, batch))

    def _sobjects(self, request: web.Request, version: str, parts: list[str], body: Any) -> web.Response:
        method = request.method
        if not parts:
            return _json({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                self._describe_short(o, version) for o in self.schema.values()]})
        obj = self.obj(parts[0])
        if len(parts) == 1:
            if method == "POST":
                if not isinstance(body, dict):
                    raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
                record_id = self._insert(obj.name, body)
                return _json({"id": record_id, "success": True, "errors": []}, 201)
            if method == "GET":
                recent = sorted(self.tables[obj.name].values(), key=lambda r: r["LastModifiedDate"])[-10:]
                return _json({"objectDescribe": self._describe_short(obj, version), "recentItems": [
                    self._render(version, obj.name, r, ["Id", "Name"] if obj.field("Name") else ["Id"])
                    for r in recent]})
        elif len(parts) == 2:
            sub = parts[1]
            if sub == "describe" and method == "GET":
                return _json(self._describe(obj, version))
            if sub in ("updated", "deleted") and method == "GET":
                return self._window(request, obj, sub)
            return self._by_id(request, version, obj, sub, body)
        elif len(parts) == 3:
            return self._by_external(request, version, obj, parts[1], parts[2], body)
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    def _by_id(self, request: web.Request, version: str, obj: SObject, record_id: str, body: Any) -> web.Response:
        method = request.method
        if method == "GET":
            record = self._live(obj.name, record_id)
            fields = request.query.get("fields")
            names = None
            if fields:
                names = []
                for name in fields.split(","):
                    f = obj.field(name.strip())
                    if f is None:
                        raise SfError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type "
                                      f"{obj.name}")
                    names.append(f.name)
            return _json(self._render(version, obj.name, record, names))
        if method == "PATCH":
            record = self._live(obj.name, record_id)
            since = request.headers.get("If-Unmodified-Since")
            if since:
                try:
                    limit = parsedate_to_datetime(since)
                except (TypeError, ValueError):
                    raise SfError(400, "MALFORMED_REQUEST", "invalid If-Unmodified-Since header") from None
                if record["LastModifiedDate"].replace(microsecond=0) > limit:
                    raise SfError(412, "PRECONDITION_FAILED",
                                  "The requested resource has been modified since the If-Unmodified-Since "
                                  f"date: {since}")
            if not isinstance(body, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            self._update(obj.name, record_id, body)
            return web.Response(status=204)
        if method == "DELETE":
            self._delete(obj.name, record_id)
            return web.Response(status=204)
        raise SfError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")

    def _by_external(self, request: web.Request, version: str, obj: SObject, field_name: str, value: str,
                     body: Any) -> web.Response:
        f = obj.field(field_name)
        if f is None or not f.external_id:
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not "
                          f"accessible: {field_name}")
        if request.method == "GET":
            found = self._match_external(obj.name, f.name, value)
            if not found:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            if len(found) > 1:
                raise SfError(300, "MULTIPLE_CHOICES", "more than one record", [f"{obj.name}/{i}" for i in found])
            return _json(self._render(version, obj.name, self.tables[obj.name][found[0]]))
        if request.method == "PATCH":
            if not isinstance(body, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            found = self._match_external(obj.name, f.name, value)
            if len(found) > 1:
                raise SfError(300, "MULTIPLE_CHOICES", "more than one record", [f"{obj.name}/{i}" for i in found])
            record_id, created = self._upsert(obj.name, f.name, value, body)
            return _json({"id": record_id, "success": True, "errors": [], "created": created},
                         201 if created else 200)
        raise SfError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed")

    def _window(self, request: web.Request, obj: SObject, kind: str) -> web.Response:
        try:
            start = parse_datetime(request.query["start"]).replace(second=0, microsecond=0)
            end = parse_datetime(request.query["end"]).replace(second=0, microsecond=0)
        except (KeyError, ValueError):
            raise SfError(400, "MALFORMED_QUERY", "start and end must be ISO 8601 date-times") from None
        now = self.clock.now()
        window = UPDATED_WINDOW if kind == "updated" else DELETED_WINDOW
        if start < now - window:
            raise SfError(400, "INVALID_REPLICATION_DATE",
                          f"startDate cannot be more than {window.days} days ago")
        if end <= start:
            raise SfError(400, "INVALID_REPLICATION_DATE", "endDate must be after startDate")
        end = min(end, now.replace(second=0, microsecond=0))
        self._purge()
        if kind == "updated":
            ids = [r["Id"] for r in self.tables[obj.name].values()
                   if not r["IsDeleted"] and start <= r["SystemModstamp"] < end]
            return _json({"ids": ids, "latestDateCovered": sf_datetime(end)})
        gone = [r for r in self.tables[obj.name].values() if r["IsDeleted"] and start <= r[_DELETED_AT] < end]
        earliest = min((r[_DELETED_AT] for r in self.tables[obj.name].values() if r["IsDeleted"]),
                       default=now - DELETED_WINDOW)
        return _json({"deletedRecords": [{"id": r["Id"], "deletedDate": sf_datetime(r[_DELETED_AT])}
                                         for r in gone],
                      "earliestDateAvailable": sf_datetime(max(earliest, now - DELETED_WINDOW)),
                      "latestDateCovered": sf_datetime(end)})

    def _collection(self, request: web.Request, version: str, parts: list[str], body: Any) -> web.Response:
        method = request.method
        if method == "DELETE":
            ids = [i for i in request.query.get("ids", "").split(",") if i]
            all_or_none = request.query.get("allOrNone", "false").lower() == "true"
            items: list[Any] = ids
        else:
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise SfError(400, "JSON_PARSER_ERROR", "Expected {\"allOrNone\": bool, \"records\": [...]}")
            items = body["records"]
            all_or_none = bool(body.get("allOrNone", False))
        if len(items) > MAX_COLLECTION:
            raise SfError(400, "EXCEEDED_ID_LIMIT", f"Maximum number of records is {MAX_COLLECTION}")
        upsert_field = None
        if method == "PATCH" and len(parts) == 2:
            upsert_obj = self.obj(parts[0])
            f = upsert_obj.field(parts[1])
            if f is None or not f.external_id:
                raise SfError(400, "INVALID_FIELD", f"Field name provided, {parts[1]} is not an External "
                              f"ID or indexed field for {upsert_obj.name}")
            upsert_field = (upsert_obj, f)
        elif parts:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        self._journal = [] if all_or_none else None
        results: list[dict[str, Any]] = []
        failed = False
        try:
            for item in items:
                try:
                    results.append(self._collection_item(method, item, upsert_field))
                except SfError as exc:
                    failed = True
                    results.append({"id": None, "success": False, "errors": [exc.collection_error()]})
            if all_or_none and failed:
                for sobject, record_id, before in reversed(self._journal or []):
                    if before is None:
                        self.tables[sobject].pop(record_id, None)
                        self.type_of.pop(record_id, None)
                    else:
                        self.tables[sobject][record_id] = before
                rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                          "message": "Record rolled back because not all records were valid and the "
                                     "request was using AllOrNone header", "fields": []}
                results = [r if not r["success"] else {"id": None, "success": False, "errors": [rolled]}
                           for r in results]
        finally:
            self._journal = None
        return _json(results)

    def _collection_item(self, method: str, item: Any, upsert: tuple[SObject, Field] | None) -> dict[str, Any]:
        if method == "DELETE":
            sobject = self.type_of.get(self._canon_id(str(item)))
            if sobject is None:
                raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self._delete(sobject, str(item))
            return {"id": self._canon_id(str(item)), "success": True, "errors": []}
        if not isinstance(item, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
        type_name = (item.get("attributes") or {}).get("type")
        if not type_name:
            raise SfError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        obj = self.obj(type_name)
        fields = {k: v for k, v in item.items() if k != "attributes"}
        if upsert is not None:
            upsert_obj, f = upsert
            if obj.name != upsert_obj.name:
                raise SfError(400, "INVALID_TYPE", f"record type {obj.name} does not match {upsert_obj.name}")
            value = fields.get(f.name)
            if value in (None, ""):
                raise SfError(400, "MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            matches = self._match_external(obj.name, f.name, str(value))
            if len(matches) > 1:
                raise SfError(300, "DUPLICATE_EXTERNAL_ID", f"{f.name}: more than one record found for "
                              f"external id field: [{', '.join(matches)}]", [f.name])
            record_id, created = self._upsert(obj.name, f.name, str(value), fields)
            return {"id": record_id, "success": True, "errors": [], "created": created}
        if method == "POST":
            if fields.get("Id"):
                raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            return {"id": self._insert(obj.name, fields), "success": True, "errors": []}
        if method == "PATCH":
            record_id = fields.pop("Id", None)
            if not record_id:
                raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            self._update(obj.name, str(record_id), fields)
            return {"id": self._canon_id(str(record_id)), "success": True, "errors": []}
        raise SfError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")

    # ------------------------------------------------------------------ describe

    def _describe_short(self, obj: SObject, version: str) -> dict[str, Any]:
        return {"name": obj.name, "label": obj.name.removesuffix("__c").replace("_", " "),
                "keyPrefix": obj.key_prefix, "custom": obj.custom, "queryable": True,
                "createable": True, "updateable": True, "deletable": True,
                "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj.name}",
                         "describe": f"/services/data/v{version}/sobjects/{obj.name}/describe"}}

    def _describe(self, obj: SObject, version: str) -> dict[str, Any]:
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
                    for child, ref in child_relationships(self.schema, obj.name).values()]
        return {**self._describe_short(obj, version), "fields": fields, "childRelationships": children}


def abort_connections(running: RunningEmulator) -> None:
    """Abort the server side of every open connection before ``running.stop()``.

    Clients such as urllib3 close TLS sockets without a close_notify; asyncio then waits up to
    30 s for one before closing the server transport, so stopping the loop earlier leaves those
    transports unclosed (a ResourceWarning, fatal under ``-W error``). Call this first.
    """

    async def _abort() -> None:
        runner = running._runner
        server = runner.server if runner is not None else None
        for handler in list(server.connections if server is not None else []):
            if handler.transport is not None:
                handler.transport.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    running.call(_abort())
