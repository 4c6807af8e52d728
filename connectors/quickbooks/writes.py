"""Idempotent writes: single saves with ``requestid``, everything else through ``/batch``.

QuickBooks has no idempotency on ``/batch``, so safety comes from the hub marker: every body
carries ``hub:<canonical id>`` in its marker field, and whenever an earlier attempt's outcome is
unknown (``Outbound.attempt > 1``, or a transient error during this call) each create is first
looked up by marker and linked instead of created again.

Per-item outcomes:
* 5010 stale SyncToken -> re-read once; if the record already says what we meant, done;
  otherwise re-apply with the fresh SyncToken.
* 6240 duplicate name -> candidates by name and email; exactly one -> linked (no write);
  more -> ``WriteResult(error=DuplicateError(candidates=...))`` for the engine's finding.
* Foreign currency without a rate -> the rate is read from QuickBooks' exchange-rate table for
  the document date; none there -> an error result, never a silent 1:1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from connectors.base import (
    ConflictError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    Outbound,
    RateLimited,
    Record,
    RetryableError,
    WriteResult,
)
from connectors.quickbooks.batch import QueryBatch
from connectors.quickbooks.client import QboClient
from connectors.quickbooks.errors import NotFound, item_fault
from connectors.quickbooks.streams import Reader, quote, to_record
from mapping.exact_json import dumps
from mapping.quickbooks import ENTITY_NAMES, MARKER_FIELDS, marker
from mapping.quickbooks_payouts import FEE_KEY

TRANSACTIONS = frozenset({"invoice", "payment", "credit_note", "refund"})


def request_id(key: str, salt: str = "") -> str:
    """QBO ``requestid``: at most 50 characters (36 in batch); long keys are hashed."""
    text = key + salt
    return text if len(text) <= 36 else hashlib.sha256(text.encode()).hexdigest()[:36]


def _same(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Does the record already hold every field of ``wanted`` (numbers compared as Decimal)?"""
    def norm(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: norm(v) for k, v in value.items() if k not in ("name", "Id", "LineNum")}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return Decimal(value)
        return value
    keys = [k for k in wanted if k not in ("Line",)]
    if "Line" in wanted and _sales_lines(current.get("Line")) != _sales_lines(wanted["Line"]):
        return False  # an amount edited behind the hub's back is not "already written"
    return all(norm(current.get(k)) == norm(wanted[k]) for k in keys)


def _sales_lines(lines: Any) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(Amount, Qty, UnitPrice) of each sales line; QuickBooks' own subtotal lines and ids aside."""
    result = []
    for line in lines or []:
        if not isinstance(line, Mapping) or line.get("DetailType") != "SalesItemLineDetail":
            continue
        detail = line.get("SalesItemLineDetail") or {}
        result.append((Decimal(str(line.get("Amount") or 0)), Decimal(str(detail.get("Qty") or 0)),
                       Decimal(str(detail.get("UnitPrice") or 0))))
    return result


@dataclass
class Pending:
    index: int
    item: Outbound
    body: dict[str, Any]
    operation: str  # create | update


class Writer:
    def __init__(self, client: QboClient, reader: Reader, *, batch_size: int = 30,
                 home_currency: Callable[[], str] = lambda: "USD", batch: QueryBatch,
                 system: str = "quickbooks") -> None:
        self.batch = batch  # the reader's too: one batch budget and count for the realm
        self.client = client
        self.reader = reader
        self.batch_size = max(1, min(30, batch_size))
        self.home_currency = home_currency  # the company's, asked when a rate is settled
        self.system = system
        # (currency, date) -> the ledger's rate: one lookup per day, not one per document.
        self._rates: dict[tuple[str, str], Decimal] = {}

    # ------------------------------------------------------------------ entry point

    def upsert(self, entity_type: str, items: Sequence[Outbound]) -> list[WriteResult]:
        if entity_type == "payout":
            return self._payouts(items)
        return self._upsert(entity_type, items)

    def _payouts(self, items: Sequence[Outbound]) -> list[WriteResult]:
        """A payout is two documents: its Transfer (the linked record, written as any other) and
        its fee Purchase, written once the Transfer is. The Purchase carries the same marker and
        is looked up by it before every create, so a retry after any failure (the Transfer's or
        the Purchase's own, applied or not) finds it instead of booking the fees twice; one found
        with other fees (edited by hand) is updated to the hub's."""
        fees = {i.idempotency_key: i.payload.get(FEE_KEY) for i in items}
        bare = [replace(i, payload={k: v for k, v in i.payload.items() if k != FEE_KEY}) for i in items]
        results = self._upsert("payout", bare)
        return [self._fee_document(item, fee, result)
                if result.ok and isinstance(fee := fees[item.idempotency_key], Mapping) else result
                for item, result in zip(items, results, strict=True)]

    def _fee_document(self, item: Outbound, fee: Mapping[str, Any], result: WriteResult) -> WriteResult:
        body = {**fee, "PrivateNote": marker(item.hub_id)}
        rid = request_id(item.idempotency_key, ":fee")

        def attempt() -> None:
            found = self.reader.fee_document(item.hub_id)
            if found is None:
                self.client.once(lambda qb: qb.create_object("Purchase", dumps(body), request_id=rid))
            elif Decimal(str(found.get("TotalAmt"))) != Decimal(str(body.get("TotalAmt"))):
                # edited by hand (a repair pushes the payout again): the fees back as the hub has them
                update = {**body, "Id": found["Id"], "SyncToken": found["SyncToken"]}
                self.client.once(lambda qb: qb.update_object("Purchase", dumps(update), request_id=rid + ":u"))
        try:
            self.client.policy.call(attempt)
        except ConnectorError as exc:  # the Transfer is there; the next attempt finds both by marker
            return WriteResult(result.idempotency_key, result.external_id, result.created, result.record, error=exc)
        return result

    def _upsert(self, entity_type: str, items: Sequence[Outbound]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(items)
        pending: list[Pending] = []
        found: dict[str, Record | None] = {}
        unknown = [i.hub_id for i in items if i.external_id is None and i.attempt > 1]
        unknown_ids = set(unknown)
        lookup_failed: ConnectorError | None = None
        if entity_type in ENTITY_NAMES and unknown:
            try:
                found = self._lookup_many(entity_type, unknown)
            except ConnectorError as exc:
                # Writing them blind could create twice, and asking one by one would cost a
                # request each under whatever made the lookup fail (a burst of 429s, say): the
                # writes whose outcome is unknown wait for the next pass.
                lookup_failed = exc
        for index, item in enumerate(items):
            if lookup_failed is not None and item.hub_id in unknown_ids:
                results[index] = WriteResult(item.idempotency_key, item.external_id, error=lookup_failed)
                continue
            try:
                outcome = self._prepare(entity_type, index, item, found)
            except ConnectorError as exc:
                outcome = WriteResult(item.idempotency_key, item.external_id, error=exc)
            if isinstance(outcome, WriteResult):
                results[index] = outcome
            else:
                pending.append(outcome)
        if len(pending) == 1 and len(items) == 1:
            self._single(entity_type, pending[0], results)
        else:
            for start in range(0, len(pending), self.batch_size):
                self._batch(entity_type, pending[start:start + self.batch_size], results)
        final = [r if r is not None else WriteResult(items[i].idempotency_key,
                                                     error=RetryableError("not written", system=self.system))
                 for i, r in enumerate(results)]
        if entity_type == "credit_note":
            final = [self._apply_credit(item, result) for item, result in zip(items, final, strict=True)]
        return final

    def _apply_credit(self, item: Outbound, result: WriteResult) -> WriteResult:
        """Apply a written credit memo to its open invoice, the way QuickBooks does it: a Payment of
        TotalAmt 0 whose lines link the Invoice and the CreditMemo for the same amount, which moves
        the invoice's Balance and the memo's RemainingCredit. Only what both still have open is
        applied, and the request id is the write's own, so a retry never applies twice."""
        invoice_id = item.payload.get("_apply_to")
        if not result.ok or not invoice_id or result.record is None or item.operation != "upsert":
            return result
        memo = result.record.data
        try:
            remaining = Decimal(str(memo.get("RemainingCredit", memo.get("TotalAmt")) or 0))
            invoice = self.reader.read("invoice", str(invoice_id)).data
            amount = min(remaining, Decimal(str(invoice.get("Balance") or 0)))
            if amount <= 0:
                return result
            body = {"CustomerRef": memo["CustomerRef"], "TotalAmt": Decimal(0),
                    "CurrencyRef": memo.get("CurrencyRef"), "TxnDate": memo.get("TxnDate"),
                    "PrivateNote": f"credit applied: {marker(item.hub_id)}",
                    "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": str(invoice_id), "TxnType": "Invoice"}]},
                             {"Amount": amount, "LinkedTxn": [{"TxnId": str(result.external_id),
                                                               "TxnType": "CreditMemo"}]}]}
            if memo.get("ExchangeRate") not in (None, ""):
                body["ExchangeRate"] = memo["ExchangeRate"]
            rid = request_id(item.idempotency_key, ":apply")
            self.client.policy.call(lambda: self._save("payment", {k: v for k, v in body.items() if v is not None},
                                                       rid))
            fresh = self.reader.read("credit_note", str(result.external_id))
        except ConnectorError as exc:
            return WriteResult(item.idempotency_key, result.external_id, result.created, result.record, error=exc)
        return WriteResult(item.idempotency_key, result.external_id, result.created, fresh)

    def _unapply_credit(self, item: Outbound) -> None:
        """Take a credit memo's application off its invoice before the memo goes: the Payment of
        TotalAmt 0 that ``_apply_credit`` made (found by the note's marker) is deleted, which gives
        the invoice its Balance back. QuickBooks keeps a transaction a live one links to in use,
        so the memo is voided only once nothing applies it."""
        application = self.reader.lookup("payment", item.hub_id)
        if application is None or Decimal(str(application.data.get("TotalAmt") or 0)) != 0:
            return  # never applied (or already taken off); a payment with cash is not ours to remove
        url = f"{self.client.qb.api_url}/company/{self.client.realm_id}/payment"
        body = {"Id": application.external_id, "SyncToken": application.version}
        rid = request_id(item.idempotency_key, ":unapply")
        self.client.call(lambda qb: qb.post(url, dumps(body), params={"operation": "delete"}, request_id=rid))

    # ------------------------------------------------------------------ preparation

    def _marked(self, entity_type: str, item: Outbound) -> dict[str, Any]:
        body = {k: v for k, v in item.payload.items() if k not in ("Id", "SyncToken", "sparse", "_apply_to")}
        body[MARKER_FIELDS[entity_type]] = marker(item.hub_id)
        return body

    def _lookup_many(self, entity_type: str, hub_ids: Sequence[str]) -> dict[str, Record | None]:
        """Records carrying these hub markers, by hub id. QuickBooks' query language has no OR,
        so it is one query per marker — sent through ``QueryBatch`` (``batch_size``
        to a request, 30 by default: after a crash, 200 writes of unknown outcome cost 7 calls, not 200)."""
        ids = list(dict.fromkeys(hub_ids))
        if len(ids) == 1:
            return {ids[0]: self.reader.lookup(entity_type, ids[0])}
        name = ENTITY_NAMES[entity_type]
        found: dict[str, Record | None] = {}
        for _round in range(2):  # the markers whose query faulted are asked once more, batched
            asked = [h for h in ids if h not in found]
            for hub_id, answer in zip(asked, self.batch.send([self.reader.lookup_query(entity_type, h) for h in asked]),
                                      strict=True):
                if isinstance(answer, ConnectorError):
                    continue  # not known: asked again, then that item looks itself up in _prepare
                found[hub_id] = self.reader.chosen(entity_type, hub_id, (answer.get("QueryResponse") or {}).get(name))
        return found

    def _prepare(self, entity_type: str, index: int, item: Outbound,
                 found: Mapping[str, Record | None]) -> Pending | WriteResult:
        if entity_type not in ENTITY_NAMES:
            raise InvalidError(f"QuickBooks does not hold {entity_type!r}", system=self.system)
        body = self._marked(entity_type, item)
        if entity_type in TRANSACTIONS:
            self._exchange_rate(body)
        if item.external_id is None and item.attempt > 1:
            record = found[item.hub_id] if item.hub_id in found else self.reader.lookup(entity_type, item.hub_id)
            if record is not None:  # an earlier attempt did create it: an update, at its SyncToken
                item = replace(item, external_id=record.external_id, remote_version=record.version)
        external_id = item.external_id
        if item.operation in ("void", "delete"):
            if external_id is None:
                return WriteResult(item.idempotency_key, None)  # nothing there: already gone
            return self._void_or_delete(entity_type, item, external_id)
        if external_id is None:
            return Pending(index, item, body, "create")
        return Pending(index, item, body, "update")

    def _exchange_rate(self, body: dict[str, Any]) -> None:
        """Settle the document's rate: none in the home currency; Stripe's settlement rate only
        when Stripe settled in the home currency (both are then home units per document unit);
        a rate read back from QuickBooks as it was; otherwise the company's own rate for the
        day — never 1:1 and never a rate for another pair."""
        home = self.home_currency().upper()
        hint = body.pop("_fx", None)
        currency = str((body.get("CurrencyRef") or {}).get("value") or home).upper()
        if currency == home:
            body.pop("ExchangeRate", None)
            return
        if isinstance(hint, dict) and str(hint.get("settled_in", "")).upper() == home and hint.get("settlement_rate"):
            body["ExchangeRate"] = Decimal(str(hint["settlement_rate"]))
        if body.get("ExchangeRate") not in (None, "", 0):
            return
        as_of = str(body.get("TxnDate") or self.reader.now().date().isoformat())
        cached = self._rates.get((currency, as_of))
        if cached is not None:
            body["ExchangeRate"] = cached
            return
        url = f"{self.client.qb.api_url}/company/{self.client.realm_id}/exchangerate"
        try:
            result = self.client.call(lambda qb: qb.get(url, params={"sourcecurrencycode": currency,
                                                                      "asofdate": as_of}))
        except NotFound:
            raise InvalidError(f"no {currency}->{home} exchange rate in QuickBooks for {as_of}; "
                               "refusing to write it at 1:1", system=self.system) from None
        rate = (result.get("ExchangeRate") or {}).get("Rate")
        if rate in (None, "", 0):
            raise InvalidError(f"QuickBooks returned no {currency} rate for {as_of}", system=self.system)
        body["ExchangeRate"] = self._rates[(currency, as_of)] = Decimal(str(rate))

    def _current(self, entity_type: str, external_id: str) -> Record:
        return self.reader.read(entity_type, external_id)

    def _update_body(self, item: Outbound, body: Mapping[str, Any], sync_token: str) -> dict[str, Any]:
        """Sparse update built by hand: the SDK would send "" for every unset field (§2.7)."""
        return {**body, "Id": item.external_id, "SyncToken": sync_token, "sparse": True}

    # ------------------------------------------------------------------ single saves

    def _save(self, entity_type: str, payload: Mapping[str, Any], rid: str) -> dict[str, Any]:
        name = ENTITY_NAMES[entity_type]
        text = dumps(payload)
        if "Id" in payload:
            result = self.client.once(lambda qb: qb.update_object(name, text, request_id=rid))
        else:
            result = self.client.once(lambda qb: qb.create_object(name, text, request_id=rid))
        obj: dict[str, Any] = result[name]
        return obj

    def _single(self, entity_type: str, pending: Pending, results: list[WriteResult | None]) -> None:
        """One item: a save with ``requestid`` (a replay returns the original answer)."""
        state = {"unknown": False}
        item = pending.item

        def attempt() -> WriteResult:
            operation, target = pending.operation, item
            if operation == "create" and state["unknown"]:
                found = self.reader.lookup(entity_type, item.hub_id)
                if found is not None:
                    return WriteResult(item.idempotency_key, found.external_id, created=True, record=found)
            try:
                if operation == "create":
                    obj = self._save(entity_type, pending.body, request_id(item.idempotency_key))
                    return WriteResult(item.idempotency_key, str(obj["Id"]), created=True,
                                       record=to_record(entity_type, obj))
                assert target.external_id is not None
                token = target.remote_version or self._current(entity_type, target.external_id).version or "0"
                obj = self._save(entity_type, self._update_body(target, pending.body, token),
                                 request_id(item.idempotency_key, f":{token}"))
                return WriteResult(item.idempotency_key, str(obj["Id"]), record=to_record(entity_type, obj))
            except RetryableError as exc:
                state["unknown"] = state["unknown"] or not isinstance(exc, RateLimited)
                raise

        try:
            result = self.client.policy.call(attempt)
        except ConnectorError as exc:
            result = self._resolve(entity_type, pending, exc)
        results[pending.index] = result

    # ------------------------------------------------------------------ batches

    def _batch(self, entity_type: str, chunk: list[Pending], results: list[WriteResult | None]) -> None:
        name = ENTITY_NAMES[entity_type]
        # Creates of earlier attempts were looked up by marker in ``_prepare`` just now, so the
        # outcome is unknown only after a send of this batch failed in a way that may have applied.
        state = {"unknown": False}
        errors: dict[int, ConnectorError] = {}

        def attempt() -> None:
            todo = [p for p in chunk if results[p.index] is None and p.index not in errors]
            creates = [p for p in todo if p.operation == "create"]
            if state["unknown"] and creates:
                found = self._lookup_many(entity_type, [p.item.hub_id for p in creates])
                for p in creates:
                    record = found[p.item.hub_id] if p.item.hub_id in found \
                        else self.reader.lookup(entity_type, p.item.hub_id)
                    if record is not None:
                        results[p.index] = WriteResult(p.item.idempotency_key, record.external_id,
                                                       created=True, record=record)
                todo = [p for p in todo if results[p.index] is None]
            if not todo:
                return
            request = []
            for p in todo:
                body = p.body
                if p.operation == "update":
                    assert p.item.external_id is not None
                    token = p.item.remote_version or self._current(entity_type, p.item.external_id).version or "0"
                    body = self._update_body(p.item, p.body, token)
                request.append({"bId": str(p.index), "operation": p.operation, name: body})
            text = dumps({"BatchItemRequest": request})
            try:
                response = self.batch.post(text)
            except RetryableError as exc:
                state["unknown"] = state["unknown"] or not isinstance(exc, RateLimited)
                raise
            by_bid = {str(r.get("bId")): r for r in response.get("BatchItemResponse") or []}
            for p in todo:
                reply = by_bid.get(str(p.index))
                if reply is None:
                    errors[p.index] = RetryableError("batch answer lacks this item", system=self.system)
                elif "Fault" in reply:
                    errors[p.index] = item_fault(reply["Fault"], system=self.system)
                else:
                    obj = reply[name]
                    results[p.index] = WriteResult(p.item.idempotency_key, str(obj["Id"]),
                                                   created=p.operation == "create",
                                                   record=to_record(entity_type, obj))

        try:
            self.client.policy.call(attempt)
        except ConnectorError as exc:
            for p in chunk:
                if results[p.index] is None and p.index not in errors:
                    errors[p.index] = exc
        for p in chunk:
            if p.index in errors and results[p.index] is None:
                results[p.index] = self._resolve(entity_type, p, errors[p.index])

    # ------------------------------------------------------------------ conflicts and duplicates

    def _resolve(self, entity_type: str, pending: Pending, error: ConnectorError) -> WriteResult:
        key = pending.item.idempotency_key
        try:
            if isinstance(error, DuplicateError) and pending.operation == "create":
                return self._link_duplicate(entity_type, pending, error)
            if isinstance(error, ConflictError) and not isinstance(error, DuplicateError) \
                    and pending.operation == "update":
                return self._reapply(entity_type, pending)
        except ConnectorError as exc:
            return WriteResult(key, pending.item.external_id, error=exc)
        return WriteResult(key, pending.item.external_id, error=error)

    def _reapply(self, entity_type: str, pending: Pending) -> WriteResult:
        """5010: re-read once; write again with the fresh SyncToken only if still needed."""
        item = pending.item
        assert item.external_id is not None
        current = self._current(entity_type, item.external_id)
        if _same(current.data, pending.body):
            return WriteResult(item.idempotency_key, item.external_id, record=current)
        token = current.version or "0"
        obj = self._save(entity_type, self._update_body(item, pending.body, token),
                         request_id(item.idempotency_key, f":{token}"))
        return WriteResult(item.idempotency_key, str(obj["Id"]), record=to_record(entity_type, obj))

    def _link_duplicate(self, entity_type: str, pending: Pending, error: DuplicateError) -> WriteResult:
        """6240: the name is taken. Link when exactly one record plausibly is ours; else a finding."""
        name = ENTITY_NAMES[entity_type]
        body = pending.body
        key_field = "DisplayName" if entity_type == "customer" else "Name"
        conditions = [f"{key_field} = {quote(str(body.get(key_field, '')))}"]
        email = (body.get("PrimaryEmailAddr") or {}).get("Address") if entity_type == "customer" else None
        if email:
            conditions.append(f"PrimaryEmailAddr = {quote(str(email))}")
        found: dict[str, dict[str, Any]] = {}
        for condition in conditions:
            result = self.reader.query(f"SELECT * FROM {name} WHERE {condition} ORDERBY Id MAXRESULTS 10")
            for row in (result.get("QueryResponse") or {}).get(name) or []:
                found[str(row["Id"])] = row
        if len(found) == 1:
            (obj,) = found.values()
            return WriteResult(pending.item.idempotency_key, str(obj["Id"]), created=False,
                               record=to_record(entity_type, obj))
        candidates = sorted(found, key=int) or list(error.candidates)
        return WriteResult(pending.item.idempotency_key, error=DuplicateError(
            f"{key_field} {body.get(key_field)!r} matches {len(candidates)} QuickBooks {name} records "
            f"({', '.join(candidates)}); not linking or writing", candidates=candidates, system=self.system))

    # ------------------------------------------------------------------ void / delete

    def _void_or_delete(self, entity_type: str, item: Outbound, external_id: str) -> WriteResult:
        name = ENTITY_NAMES[entity_type]
        if entity_type not in TRANSACTIONS:
            current = self._current(entity_type, external_id)
            body = {"Id": external_id, "SyncToken": current.version, "sparse": True, "Active": False}
            obj = self._save(entity_type, body, request_id(item.idempotency_key, ":off"))
            return WriteResult(item.idempotency_key, external_id, record=to_record(entity_type, obj))
        if entity_type == "credit_note":
            self._unapply_credit(item)
        try:
            current = self._current(entity_type, external_id)
        except NotFound:
            return WriteResult(item.idempotency_key, external_id)  # already deleted
        body = {"Id": external_id, "SyncToken": current.version}
        url = f"{self.client.qb.api_url}/company/{self.client.realm_id}/{name.lower()}"
        params = {"operation": item.operation}
        rid = request_id(item.idempotency_key, f":{item.operation}")
        result = self.client.call(lambda qb: qb.post(url, dumps(body), params=dict(params), request_id=rid))
        obj = result[name]
        if obj.get("status") == "Deleted":
            return WriteResult(item.idempotency_key, external_id,
                               record=Record(entity_type, external_id, obj, deleted=True))
        return WriteResult(item.idempotency_key, external_id, record=to_record(entity_type, obj))
