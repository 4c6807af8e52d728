"""The Stripe emulator's credit notes: pre- or post-payment credit against an invoice, from its
lines (taxes pro rata) or custom amounts, with an optional refund of the invoice's payment.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.invoices import InvoicesMixin
from connectors.stripe.emulator.money import round_half_up
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import as_int, as_list, check_known, invalid, merge_metadata, missing


class CreditNotesMixin(InvoicesMixin):
    """Issuing and voiding credit notes; a pre-payment note lowers the invoice's amount due."""

    def create_credit_note(self, params: Params) -> dict[str, Any]:
        check_known(params, ("invoice", "lines", "reason", "memo", "metadata", "refund_amount",
                             "credit_amount", "out_of_band_amount", "amount", "refunds",
                             "email_type", "effective_at", "shipping_cost"))
        inv = self.get("invoice", str(params.get("invoice") or ""), "invoice")
        if inv["status"] not in ("open", "paid"):
            raise invalid("Credit notes can only be created for open or paid invoices.", "invoice")
        lines_in = as_list(params.get("lines"))
        if not lines_in and params.get("amount"):
            lines_in = [{"type": "custom_line_item", "unit_amount": params["amount"], "quantity": 1,
                         "description": "Credit"}]
        if not lines_in:
            raise invalid("Missing required param: lines.", "lines", code="parameter_missing")
        cn_id = self.ids("cn")
        lines = []
        for spec in lines_in:
            taxes: list[dict[str, Any]] = []
            if spec.get("type") == "invoice_line_item":
                src = next((ln for ln in inv["_lines"] if ln["id"] == spec.get("invoice_line_item")), None)
                if src is None:
                    raise missing("invoice line item", str(spec.get("invoice_line_item")),
                                  "lines[invoice_line_item]")
                amount = as_int(spec, "amount", src["amount"]) or 0
                quantity = as_int(spec, "quantity", src["quantity"])
                for tax in src["taxes"]:
                    part = round_half_up(Decimal(tax["amount"]) * amount / src["amount"]) if src["amount"] else 0
                    taxes.append({**tax, "amount": part,
                                  "taxable_amount": amount - part if tax["tax_behavior"] == "inclusive"
                                  else amount})
                desc, unit = src["description"], None
            else:
                quantity = as_int(spec, "quantity", 1) or 1
                unit = as_int(spec, "unit_amount", 0) or 0
                amount, desc = unit * quantity, spec.get("description") or "Credit"
            lines.append({"id": self.ids("cnli"), "object": "credit_note_line_item", "amount": amount,
                          "description": desc, "discount_amount": 0, "discount_amounts": [],
                          "invoice_line_item": spec.get("invoice_line_item") or None, "livemode": False,
                          "metadata": {}, "pretax_credit_amounts": [], "quantity": quantity,
                          "tax_rates": [], "taxes": taxes, "type": spec.get("type") or "custom_line_item",
                          "unit_amount": unit, "unit_amount_decimal": None if unit is None else str(unit)})
            if lines[-1]["invoice_line_item"] is None:
                lines[-1].pop("invoice_line_item")
        subtotal = sum(line["amount"] for line in lines)
        excl = sum(t["amount"] for line in lines for t in line["taxes"] if t["tax_behavior"] == "exclusive")
        incl = sum(t["amount"] for line in lines for t in line["taxes"] if t["tax_behavior"] == "inclusive")
        total = subtotal + excl
        post = inv["status"] == "paid"
        refunds = []
        refund_amount = as_int(params, "refund_amount", 0) or 0
        if refund_amount:
            pi = next((p for p in self.live("payment_intent")
                       if p["payment_details"]["order_reference"] == inv["id"]), None)
            if pi is None:
                raise invalid("This invoice has no payment to refund.", "refund_amount")
            refund = self.create_refund({"payment_intent": pi["id"], "amount": refund_amount})
            refunds.append({"amount_refunded": refund_amount, "refund": refund["id"], "type": "refund",
                            "payment_record_refund": None})
        count = sum(1 for c in self.table("credit_note").values() if c["invoice"] == inv["id"]) + 1
        note = self.base("cn", "credit_note", id=cn_id, amount=total, amount_shipping=0,
                         currency=inv["currency"], customer=inv["customer"],
                         customer_balance_transaction=None, discount_amount=0, discount_amounts=[],
                         effective_at=self.now(), invoice=inv["id"], memo=params.get("memo") or None,
                         metadata=merge_metadata({}, params.get("metadata")),
                         number=f"{inv['number']}-CN-{count:02d}", out_of_band_amount=None,
                         pdf=f"https://pay.stripe.com/credit_notes/{cn_id}/pdf",
                         post_payment_amount=total if post else 0,
                         pre_payment_amount=0 if post else total, pretax_credit_amounts=[],
                         reason=params.get("reason") or None, refunds=refunds, shipping_cost=None,
                         status="issued", subtotal=subtotal, subtotal_excluding_tax=subtotal - incl,
                         total=total, total_excluding_tax=subtotal - incl,
                         total_taxes=[t for line in lines for t in line["taxes"]],
                         type="post_payment" if post else "pre_payment", voided_at=None, _lines=lines)
        self._store("credit_note", note)
        previous = {"post_payment_credit_notes_amount": inv["post_payment_credit_notes_amount"],
                    "pre_payment_credit_notes_amount": inv["pre_payment_credit_notes_amount"]}
        if post:
            inv["post_payment_credit_notes_amount"] += total
        else:
            inv["pre_payment_credit_notes_amount"] += total
            self.recompute(inv)
        self.emit("credit_note.created", note)
        self.emit("invoice.updated", inv, previous)
        return note

    def void_credit_note(self, obj_id: str) -> dict[str, Any]:
        note = self.get("credit_note", obj_id)
        if note["status"] == "void":
            raise invalid("This credit note is already voided.")
        note["status"], note["voided_at"] = "void", self.now()
        self.emit("credit_note.voided", note, {"status": "issued"})
        return note
