"""Reads: full fetch by query paging at 1,000, incremental through CDC, lookup by hub marker.

* Full fetch: ``SELECT * FROM X [WHERE Active IN (true, false)] ORDERBY Id STARTPOSITION n
  MAXRESULTS 1000`` until a short page; inactive names come back as ``deleted`` records. The
  pages go through ``/batch`` (``batch.QueryBatch``), several to a request: the first request
  carries the first two pages (one for a read that starts the change feed, below) and then a
  ``SELECT COUNT(*)`` of the same condition; the count sizes the next request (every page still
  missing, up to ``MAX_PAGES``), so a stream of n records costs 1 + ceil((n - 2000) / 10,000)
  requests, not ceil((n + 1) / 1000). The read ends on a short
  page, or on a full one that brings it to exactly the count (Ids only grow, so a record that
  existed when counted sits at or before that position); a read past the count (records added
  while reading) asks page and count again. A request of one query is a plain ``/query``.
* Incremental: one ``/cdc`` call per entity type. CDC only looks back 30 days and returns at most
  1,000 objects, so an older cursor falls back to a ``MetaData.LastUpdatedTime`` query, and a
  full CDC answer is followed by another call from the newest change seen. The cursor is the
  server's ``time`` from the response (server clock, not ours).
* A full read (the first, or one past CDC's reach) is checkpointed per page: every page but the
  last carries ``{"scan": {"next": position, "time": server time of the first page, "since":
  the LastUpdatedTime bound or null, "total": the count, when known}}``. Its first request
  carries one page and the count (in that order): a batch's ``time`` is stamped after all its
  items ran, so a second page would have been read earlier than the time CDC goes on from, and
  a change to one of its records in between could be lost; later requests are read after that
  time. A restart queries on
  from that position (the remembered count sizes its pages: no count asked again), and the last
  page stores the first page's time, so CDC from there brings every change made while the read
  ran (a record edited on a page already read included).
* Ties at the cursor's second: Intuit stamps ``LastUpdatedTime`` to the second and several writes
  share one, so a change in the cursor's own second after the answer was made must still come
  (``changedSince`` and the ``>=`` query are inclusive), and the records already read in that
  second must not come twice. The cursor then is ``{"cdc": time, "seen": ["Id@SyncToken", ...]}``
  for the records read whose ``LastUpdatedTime`` is in the cursor's second (a plain time when
  there are none, or more than ``MAX_SEEN``: then they are read again, which the content hash
  makes harmless), and the next read drops exactly those versions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, Page, Record, RetryableError
from connectors.quickbooks.batch import QueryBatch
from connectors.quickbooks.client import QboClient
from mapping.quickbooks import ENTITY_NAMES, MARKER_FIELDS, MARKER_PREFIX, NAME_ENTITIES, marker, parse_time
from mapping.quickbooks_payouts import FEE_KEY

CDC_LOOKBACK = timedelta(days=29)  # a day's margin inside Intuit's 30
CDC_MAX = 1000
MAX_SEEN = 1000  # versions a cursor remembers at its second; beyond, they are read again
# query pages one /batch request carries: 10,000 records (~10-20 MB of JSON) is what a reader
# holds at most while the engine takes the pages one by one
MAX_PAGES = 10
# pages the first request of a full fetch asks before the count is known: a stream of up to two
# pages (most streams, and every one of up to 2,000 records) is read in one request; the second
# is an empty answer for a smaller one, an item in a request made anyway. A read that starts the
# change feed (``_scan``) asks one: see there.
FIRST_PAGES = 2


def quote(value: str) -> str:
    """A QBO query string literal (backslash-escaped quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_record(entity_type: str, obj: Mapping[str, Any]) -> Record:
    deleted = obj.get("status") == "Deleted" or (entity_type in NAME_ENTITIES and obj.get("Active") is False)
    meta = obj.get("MetaData") or {}
    return Record(entity_type=entity_type, external_id=str(obj["Id"]), data=dict(obj),
                  updated_at=parse_time(meta.get("LastUpdatedTime")), deleted=deleted,
                  version=str(obj["SyncToken"]) if obj.get("SyncToken") is not None else None)


def _version_key(record: Record) -> str:
    return f"{record.external_id}@{record.version if record.version is not None else 'deleted'}"


def tied_cursor(time: str, records: list[Record], since: str | None = None,
                seen_before: frozenset[str] = frozenset()) -> str:
    """The cursor at server ``time`` remembering the versions read in its second (module doc),
    with those a read from ``since`` had seen when that was the same second."""
    at = parse_time(time)
    if at is None:
        return time
    second = at.replace(microsecond=0)
    before = parse_time(since) if since else None
    carried = seen_before if before is not None and before.replace(microsecond=0) == second else frozenset()
    seen = sorted(carried | {_version_key(r) for r in records
                             if r.updated_at is not None and r.updated_at.replace(microsecond=0) == second})
    if not seen or len(seen) > MAX_SEEN:
        return time
    return json.dumps({"cdc": time, "seen": seen}, separators=(",", ":"))


def untie(cursor: str) -> tuple[str, frozenset[str]]:
    """(the cursor's time, the versions already read in its second)."""
    if cursor.startswith("{"):
        try:
            body = json.loads(cursor)
            return str(body["cdc"]), frozenset(str(v) for v in body.get("seen") or [])
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
    return cursor, frozenset()


def credit_application(entity_type: str, obj: Mapping[str, Any]) -> bool:
    """A Payment of no money that applies a credit memo to an invoice (the writer makes these,
    README "Posting model"): part of the credit memo's booking, not a payment of its own."""
    return entity_type == "payment" and not obj.get("TotalAmt") and any(
        linked.get("TxnType") == "CreditMemo" for line in obj.get("Line") or [] for linked in line.get("LinkedTxn") or [])


class Reader:
    def __init__(self, client: QboClient, *, page_size: int = 1000,
                 now: Callable[[], datetime], batch: QueryBatch | None = None) -> None:
        self.client = client
        self.page_size = max(1, min(1000, page_size))
        self.now = now
        self.batch = batch

    def query(self, sql: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call(lambda qb: qb.query(sql))
        return result

    def query_many(self, queries: Sequence[str]) -> list[dict[str, Any]]:
        """Each query's answer, in order, in as few requests as ``/batch`` allows (one query, or
        no batch configured: plain ``/query``). An item that faulted retryably is asked again on
        its own under the retry policy; any other item fault raises, as that query alone would."""
        if len(queries) == 1 or self.batch is None:
            return [self.query(sql) for sql in queries]
        answers: list[dict[str, Any]] = []
        for sql, answer in zip(queries, self.batch.send(queries), strict=True):
            if isinstance(answer, RetryableError):
                answers.append(self.query(sql))
            elif isinstance(answer, ConnectorError):
                raise answer
            else:
                answers.append(answer)
        return answers

    def _plan(self, start: int, total: int | None, first: int) -> tuple[list[int], bool]:
        """(the page starts of the next request, whether it counts too): ``first`` pages from
        ``start`` and a count when the size is unknown (or was passed), else every page still
        missing."""
        if total is None or total < start:
            return [start + n * self.page_size for n in range(first)], True
        missing = -(-(total - start + 1) // self.page_size)
        return [start + n * self.page_size for n in range(min(MAX_PAGES, missing))], False

    def _pages(self, entity_type: str, where: str, start: int = 1, total: int | None = None, *,
               first: int = FIRST_PAGES) -> Iterator[tuple[list[Record], str | None, int | None, int | None]]:
        """Query pages from ``start`` (module doc): (records, server time, the next page's start
        or None, the stream's count as last known); ``first``: the pages of a request that
        counts."""
        name = ENTITY_NAMES[entity_type]
        while True:
            starts, counting = self._plan(start, total, first)
            queries = [f"SELECT * FROM {name}{where} ORDERBY Id STARTPOSITION {s} MAXRESULTS {self.page_size}"
                       for s in starts] + ([f"SELECT COUNT(*) FROM {name}{where}"] if counting else [])
            answers = self.query_many(queries)
            if counting:
                counted = (answers[-1].get("QueryResponse") or {}).get("totalCount")
                total = int(counted) if isinstance(counted, int) else None
            for n, result in enumerate(answers[:len(starts)]):
                rows = (result.get("QueryResponse") or {}).get(name) or []
                start += len(rows)
                last = len(rows) < self.page_size or (n == len(starts) - 1 and total == start - 1)
                yield ([to_record(entity_type, row) for row in rows if not credit_application(entity_type, row)],
                       result.get("time"), None if last else start, total)
                if last:
                    return

    def _all_where(self, entity_type: str, extra: str = "") -> str:
        conditions = ["Active IN (true, false)"] if entity_type in NAME_ENTITIES else []
        if extra:
            conditions.append(extra)
        return " WHERE " + " AND ".join(conditions) if conditions else ""

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        for records, _time, _next, _total in self._pages(entity_type, self._all_where(entity_type)):
            yield self._with_fees(Page(records)) if entity_type == "payout" else Page(records)

    def _with_fees(self, page: Page) -> Page:
        """A page of Transfers as payouts: only the hub's (a person's own transfers between
        accounts are no payouts), each with its fee Purchase (same marker) under ``FEE_KEY``;
        the page's fee queries asked together (30 to a ``/batch``), not one call per payout."""
        ours: list[tuple[Record, str]] = []
        for record in page.records:
            note = str(record.data.get("PrivateNote") or "")
            if MARKER_PREFIX in note:
                ours.append((record, note.split(MARKER_PREFIX, 1)[1].split()[0] if not record.deleted else ""))
        hub_ids = list(dict.fromkeys(h for _r, h in ours if h))
        answers = dict(zip(hub_ids, self.query_many([self._fee_query(h) for h in hub_ids]), strict=True))
        records = []
        for record, hub_id in ours:
            fee = self._fee_of(hub_id, answers[hub_id]) if hub_id else None
            records.append(dataclasses.replace(record, data={**record.data, FEE_KEY: fee}) if fee else record)
        return Page(records, cursor=page.cursor)

    @staticmethod
    def _fee_query(hub_id: str) -> str:
        like = quote(f"%{marker(hub_id)}%")
        return f"SELECT * FROM Purchase WHERE PrivateNote LIKE {like} ORDERBY Id MAXRESULTS 10"

    @staticmethod
    def _fee_of(hub_id: str, result: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = (result.get("QueryResponse") or {}).get("Purchase") or []
        exact = [r for r in rows if str(r.get("PrivateNote") or "").split()[-1:] == [marker(hub_id)]]
        return dict(exact[0]) if exact else None

    def fee_document(self, hub_id: str) -> dict[str, Any] | None:
        """The Purchase booking a payout's fees: the one whose ``PrivateNote`` is its marker."""
        return self._fee_of(hub_id, self.query(self._fee_query(hub_id)))

    def _scan(self, entity_type: str, since: str | None, start: int = 1, started: str | None = None,
              seen: frozenset[str] = frozenset(), total: int | None = None) -> Iterator[Page]:
        """A full read (records updated at or after ``since`` when given, less the versions
        ``seen`` at its second), from ``start``: each page but the last carries its checkpoint;
        the last the server time of the FIRST page, with the versions read in its second."""
        extra = f"MetaData.LastUpdatedTime >= {quote(since)}" if since is not None else ""
        read: list[Record] = []
        # one page to a counting request (then the count): the feed starts at that answer's
        # time, and a second page read before it would be older than the time by that page's
        # query; later requests are all read after it
        for records, server_time, next_start, counted in self._pages(
                entity_type, self._all_where(entity_type, extra), start, total, first=1):
            started = started or server_time or self.now().isoformat()
            records = [r for r in records if _version_key(r) not in seen]
            read.extend(records)
            if next_start is None:
                yield Page(records, cursor=tied_cursor(started, read, since, seen))
                return
            scan: dict[str, Any] = {"next": next_start, "time": started, "since": since}
            if counted is not None:
                scan["total"] = counted
            yield Page(records, cursor=json.dumps({"scan": scan}, separators=(",", ":")))

    @staticmethod
    def _checkpoint(cursor: str) -> tuple[int, str, str | None, int | None] | None:
        """A full read's checkpoint (next position, first page's time, its bound, the count
        when it was known), else None."""
        if not cursor.startswith("{"):
            return None
        try:
            scan = json.loads(cursor)["scan"]
            since, total = scan.get("since"), scan.get("total")
            return (int(scan["next"]), str(scan["time"]), None if since is None else str(since),
                    total if isinstance(total, int) else None)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        pages = self._changes(entity_type, cursor)
        if entity_type != "payout":
            yield from pages
            return
        for page in pages:
            yield self._with_fees(page)

    def _changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        if cursor is None:
            yield from self._scan(entity_type, None)
            return
        resume = self._checkpoint(cursor)
        if resume is not None:  # a full read was interrupted: go on from its next page
            start, started, bound, total = resume
            yield from self._scan(entity_type, bound, start, started, total=total)
            return
        cursor, seen = untie(cursor)
        since = parse_time(cursor)
        if since is None or self.now() - since > CDC_LOOKBACK:
            # Older than the change feed keeps: a LastUpdatedTime query (deletions in that gap are
            # left to the diff's broken-link check; QBO keeps no tombstones outside CDC).
            yield from self._scan(entity_type, cursor, seen=seen)
            return
        name = ENTITY_NAMES[entity_type]
        while True:
            result = self._cdc(name, cursor)
            blocks = (result.get("CDCResponse") or [{}])[0].get("QueryResponse") or []
            rows = [row for block in blocks for row in block.get(name) or []]
            records = [r for r in (to_record(entity_type, row) for row in rows if not credit_application(entity_type, row))
                       if _version_key(r) not in seen]
            if len(rows) >= CDC_MAX:
                newest = max((r.updated_at for r in records if r.updated_at), default=None)
                if newest is not None and newest.isoformat() != cursor:
                    yield Page(records)
                    cursor = newest.isoformat()
                    seen = frozenset(_version_key(r) for r in records if r.updated_at == newest)
                    continue
            yield Page(records, cursor=tied_cursor(str(result.get("time") or self.now().isoformat()), records,
                                                   cursor, seen))
            return

    def _cdc(self, name: str, since: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call(lambda qb: qb.change_data_capture(name, since))
        return result

    def lookup(self, entity_type: str, hub_id: str) -> Record | None:
        """The record whose marker field carries ``hub:<hub_id>`` (one query)."""
        result = self.query(self.lookup_query(entity_type, hub_id))
        return self.chosen(entity_type, hub_id, (result.get("QueryResponse") or {}).get(ENTITY_NAMES[entity_type]))

    def lookup_query(self, entity_type: str, hub_id: str) -> str:
        """The query finding a hub marker (LIKE: the marker may follow a person's own note)."""
        like = quote(f"%{marker(hub_id)}%")
        where = self._all_where(entity_type, f"{MARKER_FIELDS[entity_type]} LIKE {like}")
        return f"SELECT * FROM {ENTITY_NAMES[entity_type]}{where} ORDERBY Id MAXRESULTS 10"

    def chosen(self, entity_type: str, hub_id: str, rows: list[dict[str, Any]] | None) -> Record | None:
        """Of a lookup's rows, the one carrying exactly this marker, an active one first."""
        rows = rows or []
        exact = [r for r in rows if str(r.get(MARKER_FIELDS[entity_type]) or "").split()[-1:] == [marker(hub_id)]]
        live = [r for r in exact if not (entity_type in NAME_ENTITIES and r.get("Active") is False)]
        candidates = live or exact
        return to_record(entity_type, candidates[0]) if candidates else None

    def read(self, entity_type: str, external_id: str) -> Record:
        name = ENTITY_NAMES[entity_type]
        result: dict[str, Any] = self.client.call(lambda qb: qb.get_single_object(name, external_id))
        return to_record(entity_type, result[name])
