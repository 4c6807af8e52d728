"""Flow rules of the posting model (README "Posting model") that need the store: which credit
note claims a refund, and the credit note a negative invoice becomes.

* A Stripe credit note naming refunds claims each of them: the refund's hub record gets the note's id
  (``Refund.credit_note_id``, a hub-owned field, so later reads of the refund keep it), which
  changes its content and so re-plans its ledger documents, built from the note at push time.
  The two arrive in either order: a refund stored first is claimed when the note comes; a note
  stored first holds the refund's placeholder, and the claim is made when the refund is linked
  (``Ingest.repoint_holders`` hands the note back here).
* A negative invoice becomes a hub credit note (``mapping.postings.negative_invoice_credit``),
  which flows to the ledgers in its place; it follows the invoice (a void voids it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mapping.model import CreditNote, Entity, Invoice, Refund
from mapping.postings import negative_invoice_credit, note_refunds
from state.store import Tx

# Plans the writes a changed record calls for: (tx, entity, the connection that changed it).
PlanRecord = Callable[[Tx, Entity, str], int]


def derive_postings(tx: Tx, entity: Entity, connection: str, run_id: str | None, plan: PlanRecord) -> None:
    """What a changed hub record derives: a credit note's claim on its refund, a negative
    invoice's credit note."""
    if isinstance(entity, CreditNote) and entity.refund_id:
        claim_refund(tx, entity, connection, run_id, plan)
    elif isinstance(entity, Invoice):
        _negative_invoice(tx, entity, run_id, plan)


def claim_refund(tx: Tx, note: CreditNote, connection: str, run_id: str | None, plan: PlanRecord) -> None:
    """Mark every refund ``note`` names as the note's (those stored yet), and re-plan them."""
    for paid in note_refunds(note):
        stored = tx.get_entity(paid.refund_id)
        if stored is None or stored.deleted:
            continue  # not read yet: claimed when it is linked (``repoint_holders``)
        refund = stored.entity()
        if not isinstance(refund, Refund) or refund.credit_note_id == note.id:
            continue
        claimed = dataclasses.replace(refund, credit_note_id=note.id)
        source = stored.source or connection
        if tx.upsert_entity(claimed, source, run_id=run_id) != "unchanged":
            plan(tx, claimed, source)


def _negative_invoice(tx: Tx, invoice: Invoice, run_id: str | None, plan: PlanRecord) -> None:
    # Stripe's totals are fixed once an invoice is finalised: only a negative one derives
    # (a read per invoice would tax every ingest for this rare case).
    if invoice.total.minor >= 0 or invoice.status == "draft":
        return
    note = negative_invoice_credit(invoice)
    if tx.upsert_entity(note, "hub", run_id=run_id) != "unchanged":
        plan(tx, note, "hub")


__all__ = ["claim_refund", "derive_postings"]
