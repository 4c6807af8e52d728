"""The Stripe emulator's credit notes: pre- or post-payment credit against an invoice, from its
lines (taxes and discounts pro rata) or custom amounts, with an optional refund of the invoice's
payment.

Stripe's rule (API reference, credit notes, since 2025-11-17.clover): a credit note first lowers
the invoice's ``amount_remaining`` (its ``pre_payment_amount``, never below zero); the excess is
its ``post_payment_amount``, and the refunds (``refund_amount`` or ``refunds[]``), the customer
balance credit (``credit_amount``) and the credit outside Stripe (``out_of_band_amount``) must sum
to exactly that; anything else is a 400. A note cannot credit more than the invoice has left to
credit.
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
                if not 0 < amount <= src["amount"]:
                    raise invalid(f"The amount to credit for line {src['id']} must be positive and at most "
                                  f"its amount ({src['amount']}).", "lines[amount]")
                discounts = [{"amount": round_half_up(Decimal(d["amount"]) * amount / src["amount"]),
                              "discount": d["discount"]} for d in src["discount_amounts"]]
                net = amount - sum(d["amount"] for d in discounts)
                for tax in src["taxes"]:
                    part = round_half_up(Decimal(tax["amount"]) * amount / src["amount"])
                    taxes.append({**tax, "amount": part,
                                  "taxable_amount": net - part if tax["tax_behavior"] == "inclusive" else net})
                desc, unit = src["description"], None
            else:
                quantity = as_int(spec, "quantity", 1) or 1
                unit = as_int(spec, "unit_amount", 0) or 0
                amount, desc, discounts = unit * quantity, spec.get("description") or "Credit", []
            lines.append({"id": self.ids("cnli"), "object": "credit_note_line_item", "amount": amount,
                          "description": desc, "discount_amount": sum(d["amount"] for d in discounts),
                          "discount_amounts": discounts,
                          "invoice_line_item": spec.get("invoice_line_item") or None, "livemode": False,
                          "metadata": {}, "pretax_credit_amounts": [], "quantity": quantity,
                          "tax_rates": [], "taxes": taxes, "type": spec.get("type") or "custom_line_item",
                          "unit_amount": unit, "unit_amount_decimal": None if unit is None else str(unit)})
            if lines[-1]["invoice_line_item"] is None:
                lines[-1].pop("invoice_line_item")
        discounted = sum(line["discount_amount"] for line in lines)
        subtotal = sum(line["amount"] for line in lines)
        excl = sum(t["amount"] for line in lines for t in line["taxes"] if t["tax_behavior"] == "exclusive")
        incl = sum(t["amount"] for line in lines for t in line["taxes"] if t["tax_behavior"] == "inclusive")
        total = subtotal - discounted + excl
        credited = sum(c["total"] for c in self.table("credit_note").values()
                       if c["invoice"] == inv["id"] and c["status"] == "issued")
        if total <= 0 or total > inv["total"] - credited:
            raise invalid(f"The credit note's total ({total}) must be positive and at most the invoice's "
                          f"amount left to credit ({inv['total'] - credited}).", "lines")
        pre_amount = min(total, inv["amount_remaining"]) if inv["status"] == "open" else 0
        post_amount = total - pre_amount
        refund_amount = as_int(params, "refund_amount", 0) or 0
        linked = [(self.get("refund", str(r.get("refund") or ""), "refund"), r)
                  for r in as_list(params.get("refunds")) if isinstance(r, dict)]
        linked_amount = sum(as_int(r, "amount_refunded", ref["amount"]) or 0 for ref, r in linked)
        credit_amount = as_int(params, "credit_amount", 0) or 0
        out_of_band = as_int(params, "out_of_band_amount", 0) or 0
        if refund_amount + linked_amount + credit_amount + out_of_band != post_amount:
            raise invalid(f"The sum of refunds ({refund_amount + linked_amount}), credit_amount "
                          f"({credit_amount}) and out_of_band_amount ({out_of_band}) must equal the credit "
                          f"note's post_payment_amount ({post_amount}).",
                          "refund_amount" if refund_amount else "out_of_band_amount")
        post = post_amount > 0
        refunds = [{"amount_refunded": as_int(r, "amount_refunded", ref["amount"]), "refund": ref["id"],
                    "type": "refund", "payment_record_refund": None} for ref, r in linked]
        if refund_amount:
            pi_id = next((str(p["payment"]["payment_intent"]) for p in self.live("invoice_payment")
                          if p["invoice"] == inv["id"] and p["status"] == "paid"
                          and p["payment"]["type"] == "payment_intent"), None)  # the invoice's payment
            if pi_id is None:
                raise invalid("This invoice has no payment to refund.", "refund_amount")
            refund = self.create_refund({"payment_intent": pi_id, "amount": refund_amount})
            refunds.append({"amount_refunded": refund_amount, "refund": refund["id"], "type": "refund",
                            "payment_record_refund": None})
        count = sum(1 for c in self.table("credit_note").values() if c["invoice"] == inv["id"]) + 1
        note = self.base("cn", "credit_note", id=cn_id, amount=total, amount_shipping=0,
                         currency=inv["currency"], customer=inv["customer"],
                         customer_balance_transaction=None, discount_amount=discounted,
                         discount_amounts=_by_discount(lines),
                         effective_at=self.now(), invoice=inv["id"], memo=params.get("memo") or None,
                         metadata=merge_metadata({}, params.get("metadata")),
                         number=f"{inv['number']}-CN-{count:02d}", out_of_band_amount=out_of_band or None,
                         pdf=f"https://pay.stripe.com/credit_notes/{cn_id}/pdf",
                         post_payment_amount=post_amount, pre_payment_amount=pre_amount,
                         pretax_credit_amounts=[],
                         reason=params.get("reason") or None, refunds=refunds, shipping_cost=None,
                         status="issued", subtotal=subtotal, subtotal_excluding_tax=subtotal - incl,
                         total=total, total_excluding_tax=total - excl - incl,
                         total_taxes=[t for line in lines for t in line["taxes"]],
                         type=("mixed" if pre_amount and post_amount else "post_payment" if post else "pre_payment"),
                         voided_at=None, _lines=lines)
        self._store("credit_note", note)
        self.credit_note_to_balance(note, credit_amount)
        previous = {"post_payment_credit_notes_amount": inv["post_payment_credit_notes_amount"],
                    "pre_payment_credit_notes_amount": inv["pre_payment_credit_notes_amount"]}
        inv["post_payment_credit_notes_amount"] += post_amount
        if pre_amount:
            inv["pre_payment_credit_notes_amount"] += pre_amount
            self.recompute(inv)
        self.emit("credit_note.created", note)
        self.emit("invoice.updated", inv, previous)
        return note

    def void_credit_note(self, obj_id: str) -> dict[str, Any]:
        note = self.get("credit_note", obj_id)
        if note["status"] == "void":
            raise invalid("This credit note is already voided.")
        note["status"], note["voided_at"] = "void", self.now()
        self.credit_note_voided_from_balance(note)
        # the void takes the note's credit back off its invoice: what it took off the amount
        # remaining is owed again (Stripe: a voided credit note no longer adjusts the invoice)
        inv = self.get("invoice", str(note["invoice"]), "invoice")
        previous = {"post_payment_credit_notes_amount": inv["post_payment_credit_notes_amount"],
                    "pre_payment_credit_notes_amount": inv["pre_payment_credit_notes_amount"]}
        inv["post_payment_credit_notes_amount"] -= note["post_payment_amount"]
        if note["pre_payment_amount"]:
            inv["pre_payment_credit_notes_amount"] -= note["pre_payment_amount"]
            self.recompute(inv)
        self.emit("credit_note.voided", note, {"status": "issued"})
        self.emit("invoice.updated", inv, previous)
        return note


def _by_discount(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, int] = {}
    for line in lines:
        for part in line["discount_amounts"]:
            totals[part["discount"]] = totals.get(part["discount"], 0) + part["amount"]
    return [{"amount": amount, "discount": discount} for discount, amount in totals.items()]
