"""The ``sobjects`` resources: create / retrieve / update (``If-Unmodified-Since`` -> 412) /
delete by id, retrieve and upsert by external id (201 / 200 / 300), ``describe``, and the
``updated`` / ``deleted`` replication windows (30 / 15 days)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web

from connectors.salesforce.emulator.describe import describe, describe_short
from connectors.salesforce.emulator.org import DELETED_AT, DELETED_WINDOW, OrgStore
from connectors.salesforce.emulator.schema import SObject
from connectors.salesforce.emulator.wire import (
    SfError,
    json_response,
    not_found,
    parse_datetime,
    render,
    sf_datetime,
)

UPDATED_WINDOW = timedelta(days=30)


def _object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    return body


class SObjectsMixin(OrgStore):
    """``/services/data/vXX.X/sobjects/...``."""

    def _sobjects(self, request: web.Request, version: str, parts: list[str], body: Any) -> web.Response:
        method = request.method
        if not parts:
            return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                describe_short(o, version) for o in self.schema.values()]})
        obj = self.obj(parts[0])
        if len(parts) == 1:
            if method == "POST":
                self.check_operation(obj, "inserted")
                record_id = self._insert(obj.name, _object_body(body))
                return json_response({"id": record_id, "success": True, "errors": []}, 201)
            if method == "GET":
                recent = sorted(self.tables[obj.name].values(), key=lambda r: r["LastModifiedDate"])[-10:]
                return json_response({"objectDescribe": describe_short(obj, version), "recentItems": [
                    render(version, obj, r, ["Id", "Name"] if obj.field("Name") else ["Id"])
                    for r in recent]})
        elif len(parts) == 2:
            sub = parts[1]
            if sub == "describe" and method == "GET":
                return json_response(describe(self.schema, obj, version))
            if sub in ("updated", "deleted") and method == "GET":
                return self._window(request, obj, sub)
            return self._by_id(request, version, obj, sub, body)
        elif len(parts) == 3:
            return self._by_external(request, version, obj, parts[1], parts[2], body)
        raise not_found()

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
            return json_response(render(version, obj, record, names))
        if method == "PATCH":
            self.check_operation(obj, "updated")
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
            self._update(obj.name, record_id, _object_body(body))
            return web.Response(status=204)
        if method == "DELETE":
            self.check_operation(obj, "deleted")
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
                raise not_found()
            if len(found) > 1:
                raise SfError(300, "MULTIPLE_CHOICES", "more than one record", [f"{obj.name}/{i}" for i in found])
            return json_response(render(version, obj, self.tables[obj.name][found[0]]))
        if request.method == "PATCH":
            fields = _object_body(body)
            found = self._match_external(obj.name, f.name, value)
            if len(found) > 1:
                raise SfError(300, "MULTIPLE_CHOICES", "more than one record", [f"{obj.name}/{i}" for i in found])
            record_id, created = self._upsert(obj.name, f.name, value, fields)
            return json_response({"id": record_id, "success": True, "errors": [], "created": created},
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
            return json_response({"ids": ids, "latestDateCovered": sf_datetime(end)})
        gone = [r for r in self.tables[obj.name].values() if r["IsDeleted"] and start <= r[DELETED_AT] < end]
        earliest = min((r[DELETED_AT] for r in self.tables[obj.name].values() if r["IsDeleted"]),
                       default=now - DELETED_WINDOW)
        return json_response({"deletedRecords": [{"id": r["Id"], "deletedDate": sf_datetime(r[DELETED_AT])}
                                                 for r in gone],
                              "earliestDateAvailable": sf_datetime(max(earliest, now - DELETED_WINDOW)),
                              "latestDateCovered": sf_datetime(end)})
