"""``query`` / ``queryAll`` and ``queryMore``: SOQL over the org's records (parent paths, child
sub-queries), rendered as the REST API does, paged through ``nextRecordsUrl`` locators
(2,000 rows, or ``Sforce-Query-Options: batchSize=n``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.salesforce.emulator.org import OrgStore
from connectors.salesforce.emulator.schema import Field, SObject, child_relationships
from connectors.salesforce.emulator.soql import BoolOp, Cond, DateRange, Query, SoqlError, matches, sort_rows
from connectors.salesforce.emulator.soql import parse as parse_soql
from connectors.salesforce.emulator.wire import SfError, json_response, record_url, wire_value


def _conditions(where: Any) -> Iterator[Cond]:
    if isinstance(where, Cond):
        yield where
    elif isinstance(where, BoolOp):
        for item in where.items:
            yield from _conditions(item)


# The literal each kind of field is compared with ("Date Formats and Date Literals in WHERE": a
# dateTime value filters only dateTime fields, a date only date fields; strings are quoted,
# numbers and booleans are not). A date literal (TODAY, LAST_N_DAYS:n) fits both date kinds.
_LITERALS: dict[str, tuple[tuple[type, ...], str, str]] = {
    "date": ((date, DateRange), "date", "should not be enclosed in quotes"),
    "datetime": ((datetime, DateRange), "dateTime", "should not be enclosed in quotes"),
    "boolean": ((bool,), "boolean", "should not be enclosed in quotes"),
    "int": ((Decimal,), "int", "should not be enclosed in quotes"),
    "double": ((Decimal,), "double", "should not be enclosed in quotes"),
    "currency": ((Decimal,), "currency", "should not be enclosed in quotes"),
    "percent": ((Decimal,), "percent", "should not be enclosed in quotes"),
}
_QUOTED = ((str,), "string", "should be enclosed in quotes")


def _check_literal(f: Field, cond: Cond) -> None:
    """Refuse a literal of another kind than the field's, as Salesforce does (INVALID_FIELD)."""
    kinds, name, quoting = _LITERALS.get(f.type, _QUOTED)
    values = cond.value if cond.op in ("in", "notin") else [cond.value]
    for value in values:
        # a datetime is a date to Python, not to SOQL
        if value is None or (datetime in kinds if isinstance(value, datetime) else isinstance(value, kinds)):
            continue
        raise SoqlError(f"value of filter criterion for field '{f.name}' must be of type {name} and {quoting}",
                        "INVALID_FIELD", cond.path[-1])


class QueryMixin(OrgStore):
    """SOQL evaluation and the query endpoints."""

    def reset_query(self) -> None:
        self.page_size = 2000
        self.locators: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ field paths

    def _resolve(self, obj: SObject, path: list[str]) -> tuple[list[tuple[SObject, Field]], Field]:
        hops: list[tuple[SObject, Field]] = []
        current = obj
        for seg in path[:-1]:
            rel = current.relationship(seg)
            if rel is None or rel.reference_to is None:
                raise SoqlError(f"Didn't understand relationship '{seg}' in field path. If you "
                                "are attempting to use a custom relationship, be sure to append "
                                "the '__r' after the custom relationship name. Please reference "
                                "your WSDL or the describe call for the appropriate names.",
                                "INVALID_FIELD", ".".join(path))
            hops.append((current, rel))
            current = self.schema[rel.reference_to]
        last = current.field(path[-1])
        if last is None:
            raise SoqlError(f"No such column '{path[-1]}' on entity '{current.name}'. If you are "
                            "attempting to use a custom field, be sure to append the '__c' after "
                            "the custom field name. Please reference your WSDL or the describe "
                            "call for the appropriate names.", "INVALID_FIELD", ".".join(path))
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

    def _getter(self, obj: SObject, record: dict[str, Any]) -> Callable[[list[str]], Any]:
        return lambda path: self._get_path(obj, record, path)

    # ------------------------------------------------------------------ evaluation and rendering

    def _select(self, query: Query, obj: SObject, rows: list[dict[str, Any]],
                version: str) -> list[dict[str, Any]]:
        children = child_relationships(self.schema, obj.name)
        rendered = []
        for row in rows:
            out: dict[str, Any] = {"attributes": {"type": obj.name,
                                                  "url": record_url(version, obj.name, row["Id"])}}
            for item in query.select_order:
                if isinstance(item, Query):
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
                                              "url": record_url(version, rel.reference_to or "",
                                                                current["Id"])}}
            target = target[key]
        target[last.name] = wire_value(current.get(last.name) if current else None)

    def _filter(self, query: Query, obj: SObject, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for path in query.fields:
            self._resolve(obj, path)
        # A compound address is only selected: Salesforce refuses it in WHERE and ORDER BY.
        for verb, path in [("filtered", c.path) for c in _conditions(query.where)] + \
                [("sorted", p) for p, _desc, _nulls in query.order]:
            if self._resolve(obj, path)[1].type == "address":
                raise SoqlError(f"field '{path[-1]}' can not be {verb} in a query call", "INVALID_FIELD",
                                ".".join(path))
        for cond in _conditions(query.where):
            _check_literal(self._resolve(obj, cond.path)[1], cond)
        rows = [r for r in rows if matches(query.where, self._getter(obj, r))]
        rows = sort_rows(rows, query.order, lambda r, p: self._get_path(obj, r, p))
        rows = rows[query.offset:]
        return rows[:query.limit] if query.limit is not None else rows

    def run_query(self, text: str, include_deleted: bool, version: str) -> tuple[int, list[dict[str, Any]]]:
        try:
            query = parse_soql(text, self.clock.now())
        except SoqlError as exc:
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
                    raise SoqlError(f"Didn't understand relationship '{sub.sobject}' in FROM part "
                                    "of query call.", "INVALID_TYPE")
            self._purge()
            rows = [r for r in self.tables[obj.name].values() if include_deleted or not r["IsDeleted"]]
            rows = self._filter(query, obj, rows)
            if query.count:
                return len(rows), []
            return len(rows), self._select(query, obj, rows, version)
        except SoqlError as exc:
            raise SfError(400, exc.code, exc.located(text)) from None

    # ------------------------------------------------------------------ paging and the endpoint

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
            return json_response(self._page(version, rows, len(rows), int(start), locator, batch))
        text = request.query.get("q")
        if not text:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        total, rows = self.run_query(text, include_deleted, version)
        return json_response(self._page(version, rows, total, 0, None, batch))
