"""Taking a Xero credit note's allocations off before it is voided.

Xero will not void a credit note while any of it is allocated to an invoice ("This document
cannot be edited as it has a payment or credit note allocated to it."): each allocation is
deleted first (``DELETE CreditNotes/{id}/Allocations/{id}``), which gives the invoice its amount
due back and the note its credit, and only then is the note voided. A retry is safe: the
allocations are re-read each time, so one already deleted is not deleted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import AuthError, ConnectorError, Outbound, QuotaExhausted, WriteResult
from connectors.xero.client import XeroClient


def live_allocations(note: Mapping[str, Any]) -> list[str]:
    """The ids of the allocations a credit note still has."""
    return [str(a["AllocationID"]) for a in note.get("Allocations") or []
            if isinstance(a, Mapping) and a.get("AllocationID") and not a.get("IsDeleted")]


def deallocate_before_void(client: XeroClient, item: Outbound) -> WriteResult | None:
    """Delete every allocation of the credit note ``item`` voids; ``None`` when the void may be
    sent, else the failed write (the void waits for its retry)."""
    try:
        answer = client.call("get_credit_note", credit_note_id=str(item.external_id))
        notes = answer.get("CreditNotes") if isinstance(answer, Mapping) else None
        note = notes[0] if notes else {}
        for allocation_id in live_allocations(note):
            client.call("delete_credit_note_allocations", credit_note_id=str(item.external_id),
                        allocation_id=allocation_id)
    except (QuotaExhausted, AuthError):
        raise
    except ConnectorError as exc:
        return WriteResult(item.idempotency_key, item.external_id, error=exc)
    return None
