"""Reads: full fetches at pageSize 1000 and incremental reads by ``If-Modified-Since``.

Xero has no change feed; ``If-Modified-Since`` against ``UpdatedDateUTC`` (with
``includeArchived``) is the documented way to poll. The cursor is the newest ``UpdatedDateUTC``
seen, and each read starts ``overlap`` seconds before it so a record updated in the same
instant as the previous read is not missed (duplicates are fine: reads are at-least-once).
Pages come oldest change first, so every page stores the cursor as of its newest change: a
first read stopped midway goes on from there, never from page 1.
Archived contacts, deleted invoices and credit notes (Xero's DELETED is for drafts) and deleted
payments come back as deleted records. A VOIDED document is a live record with status void: the
document is still in the books (its number reserved), and the diff compares void with void.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import InvalidError, Page, Record
from connectors.xero import wire
from connectors.xero.client import XeroClient
from mapping.xero import REFUND_PREFIX
from mapping.xero_dates import parse_date
from mapping.xero_payouts import FEE_CONTACT, PAYOUT_PREFIX


@dataclass(frozen=True)
class Stream:
    """How one canonical type is read from Xero."""

    entity_type: str
    operation: str  # AccountingApi method
    collection: str  # key of the list in the response
    id_field: str
    paged: bool
    where: str | None = None
    keep: Callable[[Mapping[str, Any]], bool] = lambda _data: True
    deleted: Callable[[Mapping[str, Any]], bool] = lambda _data: False


def _deleted_document(data: Mapping[str, Any]) -> bool:
    """DELETED only: a VOIDED document stays in the books and is read as a void, not a deletion."""
    return data.get("Status") == "DELETED"


def _is_customer(data: Mapping[str, Any]) -> bool:
    """Every contact but the payee of the hub's Stripe fee spends ("Stripe", made by Xero when the
    first fee SPEND names it): a contact no sales document names (Xero sets ``IsCustomer`` only
    from one) and the hub never marked is no customer, and reading it as one made it an orphan
    customer in every diff after the first payout."""
    return not (data.get("Name") == FEE_CONTACT and not data.get("IsCustomer") and not data.get("ContactNumber"))


def _is_refund(data: Mapping[str, Any]) -> bool:
    return str(data.get("Reference") or "").startswith(REFUND_PREFIX)


STREAMS: dict[str, Stream] = {
    "customer": Stream("customer", "get_contacts", "Contacts", "ContactID", True, keep=_is_customer,
                       deleted=lambda d: d.get("ContactStatus") in ("ARCHIVED", "GDPRREQUEST")),
    "product": Stream("product", "get_items", "Items", "ItemID", False),
    "invoice": Stream("invoice", "get_invoices", "Invoices", "InvoiceID", True, where='Type=="ACCREC"',
                      deleted=_deleted_document),
    "payment": Stream("payment", "get_payments", "Payments", "PaymentID", True,
                      where='PaymentType=="ACCRECPAYMENT"', deleted=lambda d: d.get("Status") == "DELETED"),
    "credit_note": Stream("credit_note", "get_credit_notes", "CreditNotes", "CreditNoteID", True,
                          where='Type=="ACCRECCREDIT"', keep=lambda d: not _is_refund(d),
                          deleted=_deleted_document),
    "refund": Stream("refund", "get_credit_notes", "CreditNotes", "CreditNoteID", True,
                     where='Type=="ACCRECCREDIT"', keep=_is_refund,
                     deleted=_deleted_document),
    # A payout is a hub BankTransfer (a person's own transfers are no payouts); its fee
    # BankTransaction is attached by the connector. BankTransfers are not paged.
    "payout": Stream("payout", "get_bank_transfers", "BankTransfers", "BankTransferID", False,
                     keep=lambda d: str(d.get("Reference") or "").startswith(PAYOUT_PREFIX)),
}


def stream_for(entity_type: str) -> Stream:
    try:
        return STREAMS[entity_type]
    except KeyError:
        raise InvalidError(f"Xero does not hold {entity_type} records; expected one of "
                           f"{', '.join(STREAMS)}", system="xero") from None


def to_record(stream: Stream, data: Mapping[str, Any]) -> Record:
    updated = parse_date(data.get("UpdatedDateUTC"))
    return Record(stream.entity_type, str(data[stream.id_field]), dict(data), updated_at=updated,
                  deleted=stream.deleted(data), version=updated.isoformat() if updated else None)


class Reader:
    def __init__(self, client: XeroClient, *, page_size: int = 1000, overlap_seconds: int = 300) -> None:
        self.client = client
        self.page_size = min(1000, max(1, page_size))
        self.overlap = timedelta(seconds=overlap_seconds)

    def _pages(self, stream: Stream, *, since: datetime | None, include_archived: bool
               ) -> Iterator[tuple[list[Record], datetime | None]]:
        """Yield (records, server time) per page, oldest change first."""
        kwargs: dict[str, Any] = {"order": "UpdatedDateUTC ASC"}
        if stream.where:
            kwargs["where"] = stream.where
        if since is not None:
            kwargs["if_modified_since"] = since
        if stream.entity_type == "customer":
            kwargs["include_archived"] = include_archived
        page = 1
        while True:
            if stream.paged:
                kwargs.update(page=page, page_size=self.page_size)
            body = self.client.call(stream.operation, **kwargs)
            if not isinstance(body, Mapping) or not isinstance(body.get(stream.collection, []), list):
                raise InvalidError(f"Xero sent an unexpected {stream.collection} response",
                                   system=self.client.name)
            items = body.get(stream.collection) or []
            server_time = parse_date(body.get("DateTimeUTC")) if body.get("DateTimeUTC") else None
            records = []
            for data in items:
                if not isinstance(data, Mapping) or not data.get(stream.id_field):
                    raise InvalidError(f"Xero sent a {stream.collection} item without {stream.id_field}",
                                       system=self.client.name)
                if stream.keep(data):
                    records.append(to_record(stream, data))
            yield records, server_time
            if not stream.paged or not _more_pages(body.get("pagination"), page, len(items), self.page_size):
                return
            page += 1

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        stream = stream_for(entity_type)
        for records, _time in self._pages(stream, since=None, include_archived=False):
            yield Page([r for r in records if not r.deleted] if entity_type == "customer" else records)

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        """Cursor: ``<newest UpdatedDateUTC>|<hashes of (id, version) seen in the overlap>``.

        The read starts ``overlap`` before the newest change seen (catching records whose
        timestamp lands late), and drops the records already returned with the same version,
        so the overlap costs nothing but one wider query.
        """
        stream = stream_for(entity_type)
        previous, seen = _parse_cursor(cursor)
        since = previous - self.overlap if previous else None
        newest = previous
        window: dict[str, datetime] = {}
        pending: list[Record] | None = None
        checkpoint: str | None = None  # the cursor once ``pending`` is stored
        settled: datetime | None = None  # server time of the read, less the overlap
        for records, server_time in self._pages(stream, since=since, include_archived=True):
            fresh = [r for r in records if _version_hash(r) not in seen]
            if pending is not None:
                # Pages come oldest change first, so every page but the last is a checkpoint: a
                # restart asks from its newest change on (a long first read included), and what
                # changes meanwhile sorts after it.
                yield Page(pending, cursor=checkpoint)
            for record in records:
                if record.updated_at is None:
                    continue
                window[_version_hash(record)] = record.updated_at
                if newest is None or record.updated_at > newest:
                    newest = record.updated_at
            if server_time is not None:
                settled = server_time - self.overlap
            pending = fresh
            checkpoint = self._cursor(newest, window, seen, previous) if newest is not None else cursor
        # Changes older than the server's time less the overlap have all landed: move past them
        # even when nothing newer came, or every quiet pass would re-read the last burst.
        if settled is not None and (newest is None or settled > newest):
            newest = settled
        next_cursor = self._cursor(newest, window, seen, previous) if newest is not None else cursor
        yield Page(pending or [], cursor=next_cursor)

    def _cursor(self, newest: datetime, window: Mapping[str, datetime], seen: set[str],
                previous: datetime | None) -> str:
        """The cursor at ``newest``, remembering the versions read within the overlap of it."""
        floor = newest - self.overlap
        keep = {h for h, at in window.items() if at >= floor}
        keep |= {h for h in seen if previous is not None and previous >= floor}
        return _format_cursor(newest, keep)

MAX_SEEN = 5000


def _more_pages(pagination: Any, page: int, count: int, asked: int) -> bool:
    """Whether another page follows. Xero's ``pagination`` block decides (``pageCount``): a
    server may cap pages below the size asked for, so a short page is not the last one. Without
    the block (older responses), an empty page or one shorter than asked ends the read."""
    if isinstance(pagination, Mapping) and isinstance(pagination.get("pageCount"), int):
        return page < int(pagination["pageCount"]) and count > 0
    return count >= asked


def _version_hash(record: Record) -> str:
    return hashlib.sha256(f"{record.external_id}@{record.version}".encode()).hexdigest()[:10]


def _format_cursor(newest: datetime, seen: set[str]) -> str:
    return newest.isoformat() + "|" + ",".join(sorted(seen)[:MAX_SEEN])


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, set[str]]:
    if not cursor:
        return None, set()
    stamp, _, hashes = cursor.partition("|")
    try:
        when = wire.parse_http_date(stamp)
    except ValueError:
        return None, set()  # an unreadable cursor: read everything again (at-least-once)
    return when, {h for h in hashes.split(",") if h}
