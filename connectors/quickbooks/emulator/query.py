"""The read side: ``/query`` (the query language in ``qbql``) and ``/cdc`` (changes and
deletions since a time, 30-day look-back, <= 1,000 objects)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connectors.quickbooks.emulator.qbql import Query, QueryError, matches, parse, sort_key
from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.wire import BY_NAME, NAME_LISTS, PACIFIC, UNMODELLED, Fault, qbo_time

CDC_DAYS = 30
CDC_MAX_OBJECTS = 1000


def run_query(realm: Realm, text: str) -> dict[str, Any]:
    """A ``QueryResponse`` for one statement. Raises ``Fault`` (4000) for what does not parse."""
    try:
        query = parse(text)
    except QueryError as exc:
        raise Fault(4000, "Error parsing query", str(exc)) from None
    entity = BY_NAME.get(query.entity.lower())
    if entity is None and query.entity.lower() in UNMODELLED:
        # an entity of QuickBooks this company has none of: Intuit's answer for an empty company
        return {"QueryResponse": {"totalCount": 0} if query.count else {}}
    if entity is None:
        raise Fault(4000, "Error parsing query", f"QueryParserError: Invalid entity {query.entity!r}")
    rows = _candidates(realm, entity, query)
    if entity in NAME_LISTS and not query.mentions("Active") and not query.mentions("Id"):
        rows = [r for r in rows if r.get("Active", True)]
    rows = [r for r in rows if all(matches(r, c) for c in query.where)]
    if query.count:
        return {"QueryResponse": {"totalCount": len(rows)}}
    order = query.order_by or "Id"
    rows.sort(key=lambda r: sort_key(r, order), reverse=query.descending)
    page = rows[query.start - 1: query.start - 1 + query.max_results]
    response: dict[str, Any] = {"startPosition": query.start, "maxResults": len(page)}
    if page:
        response[entity] = page
    return {"QueryResponse": response}


def _candidates(realm: Realm, entity: str, query: Query) -> list[dict[str, Any]]:
    """The rows a query can match: for a ``LIKE '%text%'`` condition, those whose text holds
    it (from the realm's text column); otherwise all. Every condition is still checked."""
    table = realm.table(entity)
    for cond in query.where:
        pattern = str(cond.value)
        if cond.op == "LIKE" and len(pattern) > 2 and pattern[0] == pattern[-1] == "%" \
                and "%" not in pattern[1:-1]:
            needle = pattern[1:-1].lower()
            return [table[oid] for oid, text in realm.text_column(entity, cond.path).items() if needle in text]
    return list(table.values())


def cdc(realm: Realm, changed_since: str, entities: str, now: datetime) -> dict[str, Any]:
    """The ``CDCResponse`` for ``?changedSince=…&entities=A,B``. Raises ``Fault`` (2010)."""
    try:
        since = datetime.fromisoformat(changed_since.replace("Z", "+00:00"))
    except ValueError:
        raise Fault(2010, "Invalid Date", f"changedSince {changed_since!r} is not a timestamp") from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=PACIFIC)
    if since < now - timedelta(days=CDC_DAYS):
        raise Fault(2010, "Invalid changedSince",
                    "changedSince must be within the last 30 days; use a query on "
                    "MetaData.LastUpdatedTime instead")
    asked = [n.strip().lower() for n in entities.split(",") if n.strip()]
    unknown = [n for n in asked if n not in BY_NAME and n not in UNMODELLED]
    if not asked or unknown:
        raise Fault(2010, "Invalid entities", f"unknown entity in {entities!r}: {', '.join(unknown)}")
    # an entity of QuickBooks the emulator does not model has no changes: an empty block of its own
    names = [BY_NAME.get(n) or UNMODELLED[n] for n in asked]
    changes: list[tuple[datetime, str, dict[str, Any]]] = []
    for entity in names:
        for obj in realm.tables.get(entity, {}).values():
            changed = datetime.fromisoformat(obj["MetaData"]["LastUpdatedTime"])
            if changed >= since:
                changes.append((changed, entity, obj))
        for dead_entity, dead_id, when in realm.tombstones:
            if dead_entity == entity and when >= since:
                changes.append((when, entity, {"Id": dead_id, "status": "Deleted", "domain": "QBO",
                                               "MetaData": {"LastUpdatedTime": qbo_time(when)}}))
    changes.sort(key=lambda c: c[0])
    changes = changes[:CDC_MAX_OBJECTS]
    responses = []
    for entity in names:
        objs = [o for _w, e, o in changes if e == entity]
        block: dict[str, Any] = {"startPosition": 1, "maxResults": len(objs), "totalCount": len(objs)}
        if objs:
            block[entity] = objs
        responses.append(block)
    return {"CDCResponse": [{"QueryResponse": responses}], "time": qbo_time(now)}
