"""A Stripe payout in Xero: a BankTransfer from the clearing account to the bank and a SPEND
BankTransaction of the fee total, both carrying the hub's marker (``Reference``), each looked up
by it before it is created, so a retry never books either twice."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from connectors.base import (
    AuthError,
    ConnectorError,
    InvalidError,
    Outbound,
    QuotaExhausted,
    Record,
    WriteResult,
)
from connectors.xero.client import XeroClient
from connectors.xero.requests import batch_key, clean, item_error, quote
from connectors.xero.streams import stream_for, to_record
from mapping.xero import marker_value
from mapping.xero_payouts import FEE_KEY


class PayoutWrites:
    def __init__(self, client: XeroClient, find_marked: Callable[[str, Sequence[str]], dict[str, Record]]) -> None:
        self.client = client
        self.find_marked = find_marked

    def fees(self, references: Sequence[Any]) -> dict[str, dict[str, Any]]:
        """The fee SPEND BankTransactions carrying these payout markers, by marker (one request
        per 25): how a payout's second document is found, on a retry as on a read."""
        wanted = sorted({str(r) for r in references if r})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 25):
            chunk = wanted[start:start + 25]
            where = " OR ".join(f'Reference=="{quote(v)}"' for v in chunk)
            body = self.client.call("get_bank_transactions", where=where)
            for data in (body.get("BankTransactions") or []) if isinstance(body, Mapping) else []:
                if isinstance(data, Mapping) and data.get("Type") == "SPEND" and data.get("Status") != "DELETED":
                    found.setdefault(str(data.get("Reference")), dict(data))
        return found

    def write(self, item: Outbound) -> WriteResult:
        """A payout's BankTransfer, then its fee SPEND, each looked up by marker before it is
        created (Xero's transfers cannot be edited: one found is written), each request with
        its own Idempotency-Key. A failure between the two leaves the transfer unlinked: the
        next attempt finds it, and the fee document, by marker and creates only what is missing."""
        fee = item.payload.get(FEE_KEY)
        try:
            record = self.find_marked("payout", [item.hub_id]).get(item.hub_id)
            created = record is None
            if record is None:
                transfer = clean({k: v for k, v in item.payload.items() if k != FEE_KEY})
                answer = self.client.call("create_bank_transfer", bank_transfers={"BankTransfers": [transfer]},
                                          idempotency_key=batch_key("payout-transfer", [item]))
                made, refused = self._one(answer, "BankTransfers")
                if made is None:
                    return WriteResult(item.idempotency_key, error=refused)
                record = to_record(stream_for("payout"), made)
            if isinstance(fee, Mapping):
                refused = self._fee_document(item, fee)
                if refused is not None:
                    return WriteResult(item.idempotency_key, error=refused)
        except (QuotaExhausted, AuthError):
            raise
        except ConnectorError as exc:
            return WriteResult(item.idempotency_key, error=exc)
        return WriteResult(item.idempotency_key, record.external_id, created, record)

    def _fee_document(self, item: Outbound, fee: Mapping[str, Any]) -> InvalidError | None:
        """Create the fee SPEND, or bring one edited by hand back to the hub's fees (a repair
        pushes the payout again); None when Xero holds what the hub has."""
        reference = marker_value("payout", item.hub_id)
        spent_before = self.fees([reference]).get(reference)
        if spent_before is None:
            answer = self.client.call("create_bank_transactions", bank_transactions={"BankTransactions": [
                clean(dict(fee))]}, summarize_errors=False, idempotency_key=batch_key("payout-fee", [item]))
        elif _fee_of(spent_before) != _fee_of(fee):
            spend_id = str(spent_before["BankTransactionID"])
            answer = self.client.call("update_bank_transaction", bank_transaction_id=spend_id, bank_transactions={
                "BankTransactions": [clean({**fee, "BankTransactionID": spend_id})]},
                idempotency_key=batch_key("payout-fee-update", [item]))
        else:
            return None
        return self._one(answer, "BankTransactions")[1]

    def _one(self, answer: Any, collection: str) -> tuple[Mapping[str, Any] | None, InvalidError | None]:
        """The one document Xero answered in ``collection``, or its refusal."""
        returned = answer.get(collection) if isinstance(answer, Mapping) else None
        first = returned[0] if isinstance(returned, list) and len(returned) == 1 else None
        refused = item_error(self.client.name, first)
        if first is None and refused is None:
            refused = InvalidError(f"Xero answered no {collection}", system=self.client.name)
        return (first if refused is None and isinstance(first, Mapping) else None), refused

def _fee_of(spend: Mapping[str, Any]) -> Decimal:
    """A fee SPEND's amount: its lines' (quantity x unit amount), as the hub writes it (no tax)."""
    return sum((Decimal(str(line.get("Quantity") or 1)) * Decimal(str(line.get("UnitAmount") or 0))
                for line in spend.get("LineItems") or [] if isinstance(line, Mapping)), Decimal(0))


__all__ = ["PayoutWrites"]
