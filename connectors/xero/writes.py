"""Idempotent batch writes: up to 50 items per request with ``summarizeErrors=False`` so each
item succeeds or fails on its own (Xero answers 200 with per-item ``ValidationErrors``).

Rules (DESIGN.md invariants 1, 2, 5):
* every request carries an ``Idempotency-Key`` derived from the items' own keys, so a retry of
  the same batch (RetryPolicy after a 5xx/timeout) is replayed by Xero, not applied twice;
* an item whose earlier outcome is unknown (``attempt > 1``) is first looked up by its hub marker
  (one ``where`` query per batch) and updated instead of created;
* every record carries the hub marker (see mapping/xero.py);
* a duplicate contact name links to the one active contact with that name (if it carries no
  other hub's marker) and is a ``DuplicateError`` with the candidates when that is ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from connectors.base import (
    AuthError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    Outbound,
    QuotaExhausted,
    Record,
    WriteResult,
)
from connectors.xero.allocations import deallocate_before_void
from connectors.xero.client import XeroClient
from connectors.xero.payouts import PayoutWrites
from connectors.xero.requests import batch_key, clean, item_error, quote
from connectors.xero.streams import Stream, stream_for, to_record
from mapping.keys import normalise_key
from mapping.xero import marker_field, marker_value
from mapping.xero_fx import settle_rate

# entity type -> (create op, update-or-create op)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "customer": ("create_contacts", "update_or_create_contacts", "contacts"),
    "product": ("create_items", "update_or_create_items", "items"),
    "invoice": ("create_invoices", "update_or_create_invoices", "invoices"),
    "payment": ("create_payments", "create_payments", "payments"),
    "credit_note": ("create_credit_notes", "update_or_create_credit_notes", "credit_notes"),
    "refund": ("create_credit_notes", "update_or_create_credit_notes", "credit_notes"),
}
DUPLICATE_NAME = "is already assigned to another contact"
SETTLED_DOCUMENT = "cannot be edited as it has a payment or credit note allocated to it"
NUMBER_TAKEN = "# must be unique"
NUMBER_FIELDS = {"invoice": "InvoiceNumber", "credit_note": "CreditNoteNumber", "refund": "CreditNoteNumber"}
RENUMBER_LIMIT = 9  # "-R1" … "-R9": a document re-created more often than that needs a person


def _invoice_lines(invoice: Mapping[str, Any]) -> list[tuple[str, Decimal, Decimal]]:
    """What an invoice bills, comparable between a payload and Xero's answer."""
    return [(str(line.get("Description") or ""), Decimal(str(line.get("Quantity") or 0)),
             Decimal(str(line.get("UnitAmount") or 0))) for line in invoice.get("LineItems") or []]

ALREADY_VOIDED = "has been voided"  # Xero's refusal to void a VOIDED document again


class Writer:
    def __init__(self, client: XeroClient, *, batch_size: int = 50, payment_account: str = "090") -> None:
        self.client = client
        self.batch_size = min(50, max(1, batch_size))
        self.payment_account = payment_account
        self._base_currency: str | None = None
        self._item_codes: dict[str, str] = {}  # ItemID -> Code: lines name items by Code
        self.payouts = PayoutWrites(client, self.find_marked)

    def base_currency(self) -> str:
        """The organisation's base currency, read once from ``GET Organisation``: every rate
        is quoted against it, so it is the ledger's to say, never a setting to get wrong."""
        if self._base_currency is None:
            body = self.client.call("get_organisations")
            orgs = body.get("Organisations") if isinstance(body, Mapping) else None
            base = orgs[0].get("BaseCurrency") if isinstance(orgs, list) and orgs and isinstance(orgs[0], Mapping) \
                else None
            if not isinstance(base, str) or len(base) != 3:
                raise ConnectorError("Xero's Organisation names no base currency", system=self.client.name)
            self._base_currency = base.upper()
        return self._base_currency

    # -- lookups ---------------------------------------------------------------------------

    def find_marked(self, entity_type: str, hub_ids: Sequence[str]) -> dict[str, Record]:
        """Live records carrying these hub markers, by hub id (one request per 25 ids)."""
        stream = stream_for(entity_type)
        field = marker_field(entity_type)
        found: dict[str, Record] = {}
        wanted = {marker_value(entity_type, h): h for h in hub_ids}
        values = list(wanted)
        for start in range(0, len(values), 25):
            chunk = values[start:start + 25]
            where = " OR ".join(f'{field}=="{quote(v)}"' for v in chunk)
            kwargs: dict[str, Any] = {"where": where}
            if entity_type == "customer":
                kwargs["include_archived"] = False
            body = self.client.call(stream.operation, **kwargs)
            for data in (body.get(stream.collection) or []) if isinstance(body, Mapping) else []:
                record = to_record(stream, data)
                hub = wanted.get(str(data.get(field) or ""))
                if hub and not record.deleted and stream.keep(data):
                    found.setdefault(hub, record)
        return found

    # -- upsert ----------------------------------------------------------------------------

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        if entity_type == "payout":
            return [self.payouts.write(item) for item in batch]
        stream = stream_for(entity_type)
        results: list[WriteResult] = []
        for start in range(0, len(batch), self.batch_size):
            results.extend(self._chunk(entity_type, stream, list(batch[start:start + self.batch_size])))
        return results

    def _chunk(self, entity_type: str, stream: Stream, items: list[Outbound]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        unknown = [i for i in items if i.external_id is None and i.attempt > 1]
        existing: dict[str, Record] = {}
        try:
            if any("_fx" in i.payload for i in items):
                self.base_currency()  # learnt before the rates are settled in ``_payload``
            self._learn_item_codes(items)
            if unknown:
                existing = self.find_marked(entity_type, [i.hub_id for i in unknown])
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            return [WriteResult(i.idempotency_key, error=exc) for i in items]
        resolved = [replace(i, external_id=existing[i.hub_id].external_id)
                    if i.external_id is None and i.hub_id in existing else i for i in items]
        if entity_type == "payment":
            # Xero payments cannot be edited: a linked payment is already written, and one to
            # correct (a repair's ``replace``) is deleted and created again
            for n, item in enumerate(resolved):
                if item.operation == "replace":
                    results[n] = self._replace_payment(stream, item)
                elif item.external_id is not None and item.operation == "upsert":
                    record = existing.get(item.hub_id)
                    results[n] = WriteResult(item.idempotency_key, item.external_id, False, record)
        creates = [(n, i) for n, i in enumerate(resolved) if n not in results and i.external_id is None]
        updates = [(n, i) for n, i in enumerate(resolved) if n not in results and i.external_id is not None]
        if entity_type == "credit_note":  # Xero will not void an allocated note: its allocations go first
            for n, item in updates:
                refused = deallocate_before_void(self.client, item) if item.operation == "void" else None
                if refused is not None:
                    results[n] = refused
            updates = [(n, i) for n, i in updates if n not in results]
        create_op, update_op, _ = OPERATIONS[entity_type]
        for group, operation, created in ((creates, create_op, True), (updates, update_op, False)):
            if group:
                for (n, _item), result in zip(group, self._send(entity_type, stream, operation,
                                                                 [i for _n, i in group], created), strict=True):
                    results[n] = result
        final = [results[n] for n in range(len(items))]
        if entity_type in ("credit_note", "refund"):
            # A settled credit note cannot be edited in Xero: it is already written (the diff still
            # compares its amounts with the hub's).
            final = [WriteResult(r.idempotency_key, i.external_id, False, existing.get(i.hub_id))
                     if not r.ok and i.external_id and i.operation != "void" and SETTLED_DOCUMENT in str(r.error)
                     else r for i, r in zip(resolved, final, strict=True)]
        if entity_type == "invoice":
            final = [self._settled_invoice(i, r) if not r.ok and i.external_id and SETTLED_DOCUMENT in str(r.error)
                     else r for i, r in zip(resolved, final, strict=True)]
        if entity_type in NUMBER_FIELDS:
            final = [self._renumber(entity_type, stream, item, result)
                     for item, result in zip(resolved, final, strict=True)]
        if entity_type == "customer":
            final = [self._resolve_duplicate(item, result) for item, result in zip(resolved, final, strict=True)]
        if entity_type == "refund":
            final = self._pay_out(resolved, final)
        if entity_type == "credit_note":
            final = [self._allocate(entity_type, item, result) for item, result in zip(resolved, final, strict=True)]
        return final

    def _pay_out(self, items: list[Outbound], results: list[WriteResult]) -> list[WriteResult]:
        """Pay out the refunds' credit notes that are not settled yet: one ``PUT Payments`` for
        the whole chunk and one marker query per 25 to read them back settled (not three calls
        per refund). A refund gives back money a payment brought in: it is paid out, never
        allocated against the invoice (whose payment may not have reached Xero yet; an allocation
        would then make that payment exceed what is due). Only an AUTHORISED (unsettled) credit
        note is paid, so a retry after an unknown outcome never pays twice."""
        due = [n for n, (item, result) in enumerate(zip(items, results, strict=True))
               if result.ok and result.record is not None and item.payload.get("_allocate_to")
               and result.record.data.get("Status") == "AUTHORISED"]
        if not due:
            return results
        final = list(results)
        payments = []
        for n in due:
            data = results[n].record.data  # type: ignore[union-attr]  # checked in ``due``
            payments.append({"CreditNote": {"CreditNoteID": results[n].external_id},
                             "Account": {"Code": self.payment_account},
                             "Amount": data.get("RemainingCredit", data.get("Total")),
                             "Reference": marker_value("refund", items[n].hub_id)})
        try:
            answer = self.client.call("create_payments", payments={"Payments": payments}, summarize_errors=False,
                                      idempotency_key=batch_key("refund-pay", [items[n] for n in due]))
            paid = answer.get("Payments") if isinstance(answer, Mapping) else None
            answers = paid if isinstance(paid, list) and len(paid) == len(due) else [None] * len(due)
            errors = {n: error for n, data in zip(due, answers, strict=True)
                      if (error := item_error(self.client.name, data)) is not None}
            fresh = self.find_marked("refund", [items[n].hub_id for n in due])  # settled, by marker
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            for n in due:
                final[n] = WriteResult(results[n].idempotency_key, results[n].external_id, results[n].created,
                                       results[n].record, error=exc)
            return final
        for n in due:
            result = results[n]
            record = fresh.get(items[n].hub_id)
            if record is None or record.external_id != result.external_id:
                record = result.record
            final[n] = WriteResult(result.idempotency_key, result.external_id, result.created, record,
                                   error=errors.get(n))
        return final

    def _renumber(self, entity_type: str, stream: Stream, item: Outbound, result: WriteResult) -> WriteResult:
        """A document number Xero says is taken (``Invoice # must be unique.``).

        Xero keeps the number of a VOIDED document reserved. When the hub re-creates a document
        someone voided (``hub resync`` of a broken link), the source's number is therefore taken
        for good: the re-created document gets ``<number>-R<n>``, the first suffix not taken,
        unless an earlier attempt of this very write already made it. On an update the document
        keeps the number it has in Xero. A number held by a live document that is not ours is a
        real clash and stays an error (held, with a finding).
        """
        number_field = NUMBER_FIELDS[entity_type]
        number = item.payload.get(number_field)
        if result.ok or not number or item.operation != "upsert" or NUMBER_TAKEN not in str(result.error):
            return result
        create_op, update_op, _ = OPERATIONS[entity_type]
        if item.external_id is not None:
            keep = replace(item, payload={k: v for k, v in item.payload.items() if k != number_field})
            return self._send_again(entity_type, stream, update_op, keep, False, "keep-number")
        candidates = [str(number)] + [f"{number}-R{n}" for n in range(1, RENUMBER_LIMIT + 1)]
        try:
            body = self.client.call(stream.operation,
                                    where=" OR ".join(f'{number_field}=="{quote(c)}"' for c in candidates))
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            return WriteResult(item.idempotency_key, error=exc)
        found = body.get(stream.collection) if isinstance(body, Mapping) else None
        holders = {str(d.get(number_field)): d for d in found or [] if isinstance(d, Mapping)}
        if holders.get(str(number), {}).get("Status") not in (None, "VOIDED", "DELETED"):
            return result  # a live document holds the source's number: not ours to work around
        marker = marker_value(entity_type, item.hub_id)
        for candidate in candidates[1:]:
            holder = holders.get(candidate)
            if holder is None:
                renumbered = replace(item, payload={**item.payload, number_field: candidate})
                return self._send_again(entity_type, stream, create_op, renumbered, True, candidate)
            if holder.get(marker_field(entity_type)) == marker and holder.get("Status") not in ("VOIDED", "DELETED"):
                record = to_record(stream, holder)  # an earlier attempt of this write made it
                return WriteResult(item.idempotency_key, record.external_id, True, record)
        return result

    def _send_again(self, entity_type: str, stream: Stream, operation: str, item: Outbound, created: bool,
                    change: str) -> WriteResult:
        """Send one changed item again. Its request needs an Idempotency-Key of its own (Xero
        would replay the refused answer to the original key); the result keeps the item's key."""
        salted = replace(item, idempotency_key=f"{item.idempotency_key}:{change}")
        result = self._send(entity_type, stream, operation, [salted], created)[0]
        return replace(result, idempotency_key=item.idempotency_key)

    def _learn_item_codes(self, items: Sequence[Outbound]) -> None:
        """The Code of each item the chunk's lines name (one read per item, once per process).
        An item gone from Xero leaves its lines without ItemCode: the line still says what was
        sold and where it is booked (AccountCode), so nothing is guessed."""
        wanted = {str(line["_item_id"]) for item in items for line in item.payload.get("LineItems") or []
                  if isinstance(line, Mapping) and line.get("_item_id")}
        for item_id in sorted(wanted - set(self._item_codes)):
            try:
                body = self.client.call("get_item", item_id=item_id)
            except InvalidError as exc:
                if exc.status == 404:
                    continue
                raise
            found = (body.get("Items") or [{}])[0] if isinstance(body, Mapping) else {}
            if isinstance(found, Mapping) and found.get("Code"):
                self._item_codes[item_id] = str(found["Code"])

    def _with_item_codes(self, payload: dict[str, Any]) -> dict[str, Any]:
        lines = payload.get("LineItems")
        if isinstance(lines, list):
            payload["LineItems"] = [
                {**line, "ItemCode": self._item_codes[str(line["_item_id"])]}
                if isinstance(line, Mapping) and str(line.get("_item_id")) in self._item_codes else line
                for line in lines]
        return payload

    def _payload(self, entity_type: str, stream: Stream, item: Outbound) -> dict[str, Any]:
        payload: dict[str, Any] = self._with_item_codes(dict(item.payload))
        if "_fx" in payload:
            payload = settle_rate(payload, self.base_currency())
        payload = clean(payload)
        payload[marker_field(entity_type)] = marker_value(entity_type, item.hub_id)
        if item.external_id:
            payload[stream.id_field] = item.external_id
        if item.operation == "void":
            payload = {stream.id_field: item.external_id, "Status": "VOIDED"}
            if entity_type == "customer":
                payload = {stream.id_field: item.external_id, "ContactStatus": "ARCHIVED"}
        elif item.operation == "delete":
            payload = {stream.id_field: item.external_id,
                       "Status": "DELETED"} if entity_type != "customer" else {
                stream.id_field: item.external_id, "ContactStatus": "ARCHIVED"}
        return payload

    def _send(self, entity_type: str, stream: Stream, operation: str, items: list[Outbound],
              created: bool) -> list[WriteResult]:
        body = {stream.collection: [self._payload(entity_type, stream, i) for i in items]}
        key = batch_key(f"{entity_type}-{'c' if created else 'u'}", items)
        try:
            if entity_type == "payment" and not created:
                return self._delete_payments(items)
            answer = self.client.call(operation, **{OPERATIONS[entity_type][2]: body},
                                      summarize_errors=False, idempotency_key=key)
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            return [WriteResult(i.idempotency_key, error=exc) for i in items]
        returned = answer.get(stream.collection) if isinstance(answer, Mapping) else None
        if not isinstance(returned, list) or len(returned) != len(items):
            error = InvalidError(f"Xero answered {len(returned or [])} {stream.collection} for "
                                 f"{len(items)} sent", system=self.client.name)
            return [WriteResult(i.idempotency_key, error=error) for i in items]
        results = []
        for item, data in zip(items, returned, strict=True):
            refused = item_error(self.client.name, data)
            if refused is not None and item.operation == "void" and ALREADY_VOIDED in str(refused):
                # voided already (by hand, or by an earlier attempt): the void has landed
                results.append(WriteResult(item.idempotency_key, item.external_id))
                continue
            if refused is not None:
                results.append(WriteResult(item.idempotency_key, error=refused))
                continue
            record = to_record(stream, data)
            results.append(WriteResult(item.idempotency_key, record.external_id, created, record))
        return results

    def _replace_payment(self, stream: Stream, item: Outbound) -> WriteResult:
        """A payment corrected as the hub has it (``hub resync`` of a rate Xero holds wrong): Xero
        can only delete a payment (POST Payments/{id} with Status DELETED, the API's one change
        to a payment), so the linked one (``external_id``) is deleted, then the payment created
        again. Every attempt first reads the live payments carrying the hub's marker, so a crash
        or a lost answer between the two steps never pays the invoice twice and the next attempt
        of the same outbox item finishes the job: the old one still live, delete it; none live,
        create; a live one other than the old, it is the new one an earlier attempt made."""
        try:
            body = self.client.call(stream.operation, where=f'{marker_field("payment")}=="{quote(item.hub_id)}"')
            found = body.get(stream.collection) if isinstance(body, Mapping) else None
            live = [to_record(stream, d) for d in found or [] if isinstance(d, Mapping)]
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            return WriteResult(item.idempotency_key, error=exc)
        live = [r for r in live if not r.deleted]
        made = next((r for r in live if r.external_id != item.external_id), None)
        if made is not None:
            return WriteResult(item.idempotency_key, made.external_id, True, made)
        if item.external_id is not None and live:
            (deleted,) = self._delete_payments([item])
            if not deleted.ok:
                return deleted
        (created,) = self._send("payment", stream, OPERATIONS["payment"][0],
                                [replace(item, external_id=None, operation="upsert")], True)
        return created

    def _delete_payments(self, items: list[Outbound]) -> list[WriteResult]:
        results = []
        for item in items:
            try:
                answer = self.client.call("delete_payment", payment_id=item.external_id,
                                          payment_delete={"Status": "DELETED"},
                                          idempotency_key=batch_key("payment-d", [item]))
                data = (answer.get("Payments") or [{}])[0]
                record = to_record(stream_for("payment"), data)
                results.append(WriteResult(item.idempotency_key, record.external_id, False, record))
            except (QuotaExhausted, AuthError):
                raise
            except ConnectorError as exc:
                results.append(WriteResult(item.idempotency_key, error=exc))
        return results

    # -- follow-ups ------------------------------------------------------------------------

    def _resolve_duplicate(self, item: Outbound, result: WriteResult) -> WriteResult:
        if result.ok or DUPLICATE_NAME not in str(result.error):
            return result
        name = str(item.payload.get("Name") or "")
        wanted = normalise_key(name)
        try:
            # searchTerm on the first word also finds spacing/punctuation variants of the name
            term = (name.split() or [name])[0]
            body = self.client.call("get_contacts", include_archived=False, search_term=term)
            exact = [c for c in body.get("Contacts") or [] if normalise_key(c.get("Name")) == wanted]
            if len(exact) == 1 and exact[0].get("ContactNumber") in (None, "", item.hub_id):
                linked = replace(item, external_id=str(exact[0]["ContactID"]), attempt=1)
                (answer,) = self._send("customer", stream_for("customer"), "update_or_create_contacts",
                                       [linked], created=False)
                return answer
        except ConnectorError as exc:
            return WriteResult(item.idempotency_key, error=exc)
        candidates = [str(c["ContactID"]) for c in exact]
        return WriteResult(item.idempotency_key, error=DuplicateError(
            f"contact name {name!r} matches {len(candidates)} Xero contacts that cannot be linked "
            "automatically", candidates=candidates, system=self.client.name, status=400))

    def _settled_invoice(self, item: Outbound, refused: WriteResult) -> WriteResult:
        """An update refused because the invoice is paid in Xero. The invoice's payment can land
        before a later change of the same invoice (a status or payment figure, which Xero keeps
        itself): when the lines Xero holds are the ones sent, it is already written. A change
        of lines or currency on a paid invoice stays refused, saying what a person must do."""
        try:
            answer = self.client.call("get_invoice", invoice_id=str(item.external_id))
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError:
            return refused
        current = (answer.get("Invoices") or [{}])[0] if isinstance(answer, Mapping) else {}
        if _invoice_lines(current) == _invoice_lines(item.payload) \
                and str(current.get("CurrencyCode") or "") == str(item.payload.get("CurrencyCode") or ""):
            return WriteResult(item.idempotency_key, item.external_id, False,
                               to_record(stream_for("invoice"), current))
        return WriteResult(item.idempotency_key, item.external_id, error=InvalidError(
            f"Xero invoice {current.get('InvoiceNumber') or item.external_id} is paid, so its lines cannot "
            "change; remove its payment in Xero, then run `hub resync` for it", system=self.client.name,
            status=400))

    def _allocate(self, entity_type: str, item: Outbound, result: WriteResult) -> WriteResult:
        """Allocate an unsettled credit note to its invoice (refunds are paid out: ``_pay_out``)."""
        invoice_id = item.payload.get("_allocate_to")
        # Not only after a create: a retry after an unknown outcome finds the credit note made but
        # maybe not yet allocated. Only an unsettled (AUTHORISED) one is allocated, so never twice.
        if not result.ok or not invoice_id or result.record is None:
            return result
        data = result.record.data
        if data.get("Status") != "AUTHORISED":
            return result
        amount = data.get("RemainingCredit", data.get("Total"))
        try:
            invoice = self.client.call("get_invoice", invoice_id=str(invoice_id))
            due = (invoice.get("Invoices") or [{}])[0].get("AmountDue") or 0
            if due >= amount:
                self.client.call("create_credit_note_allocation", credit_note_id=result.external_id,
                                 allocations={"Allocations": [{"Invoice": {"InvoiceID": str(invoice_id)},
                                                               "Amount": amount,
                                                               "Date": data.get("DateString", "")[:10]}]},
                                 summarize_errors=False, idempotency_key=batch_key("alloc", [item]))
            fresh = self.client.call("get_credit_note", credit_note_id=str(result.external_id))
            record = to_record(stream_for(entity_type), (fresh.get("CreditNotes") or [data])[0])
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            return WriteResult(item.idempotency_key, result.external_id, result.created, result.record, error=exc)
        return WriteResult(item.idempotency_key, result.external_id, result.created, record)
