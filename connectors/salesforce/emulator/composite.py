"""sObject Collections (``composite/sobjects``): create, update, upsert by external id and delete
up to 200 records in one call, each with its own result, or all rolled back under
``allOrNone``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.salesforce.emulator.org import OrgStore
from connectors.salesforce.emulator.schema import Field, SObject
from connectors.salesforce.emulator.wire import SfError, json_response, not_found

MAX_COLLECTION = 200


class CompositeMixin(OrgStore):
    """``/services/data/vXX.X/composite/sobjects[/T/ExternalIdField]``."""

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
            raise not_found()
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
                self._roll_back()
                rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                          "message": "Record rolled back because not all records were valid and the "
                                     "request was using AllOrNone header", "fields": []}
                results = [r if not r["success"] else {"id": None, "success": False, "errors": [rolled]}
                           for r in results]
        finally:
            self._journal = None
        return json_response(results)

    def _roll_back(self) -> None:
        """Restore every record the journal saw, newest change first."""
        for sobject, record_id, before in reversed(self._journal or []):
            if before is None:
                self.tables[sobject].pop(record_id, None)
                self.type_of.pop(record_id, None)
            else:
                self.tables[sobject][record_id] = before

    def _collection_item(self, method: str, item: Any, upsert: tuple[SObject, Field] | None) -> dict[str, Any]:
        if method == "DELETE":
            sobject = self.type_of.get(self._canon_id(str(item)))
            if sobject is None:
                raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self.check_operation(self.schema[sobject], "deleted")
            self._delete(sobject, str(item))
            return {"id": self._canon_id(str(item)), "success": True, "errors": []}
        if not isinstance(item, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
        type_name = (item.get("attributes") or {}).get("type")
        if not type_name:
            raise SfError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        obj = self.obj(type_name)
        self.check_operation(obj, "inserted" if method == "POST" else "updated")
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
