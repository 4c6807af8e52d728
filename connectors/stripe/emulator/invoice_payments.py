"""The Stripe emulator's Invoice Payments: which payment paid which invoice.

Since API version 2025-03-31 (Basil) a PaymentIntent no longer names its invoice
(``payment_intent.invoice`` and ``charge.invoice`` are gone, and ``payment_details.order_reference``
is the business's own value, never Stripe's); the link is an ``invoice_payment`` object
(``inpay_…``): ``invoice``, ``payment {type, payment_intent}``, ``amount_requested``,
``amount_paid`` (null until paid), ``status`` (open, paid, canceled), ``status_transitions``
and ``is_default``. ``GET /v1/invoice_payments`` lists them newest first, filtered by ``invoice``,
``payment[type]`` with ``payment[payment_intent]``, ``status`` and ``created``;
``GET /v1/invoice_payments/{id}`` reads one; ``expand[]=payments`` on an invoice includes the
first ten (the field is includable, never sent unasked), with the list's url.

Emulator choices (not Stripe facts): Stripe makes the default invoice payment when the invoice is
finalized, the emulator when a payment of the invoice is first attempted (it makes the
PaymentIntent only then too); a later attempt confirms the same PaymentIntent again, as Stripe
does (``collection.py``), so the invoice keeps one invoice payment, ``open`` until the invoice is
paid; paid otherwise (out of band), it is ``canceled`` (and no longer the default). An invoice paid
out of band, or with nothing due, has no invoice payment. ``invoice_payment.paid`` is emitted when
one is paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.stripe.emulator.invoices import InvoicesMixin
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import created_filter, invalid, paginate

LIST_URL = "/v1/invoice_payments"
_FIRST_PAGE = 10  # what ``expand[]=payments`` includes of an invoice's payments
_PAYMENT_TYPES = ("payment_intent", "payment_record")  # what the list's ``payment[type]`` takes
_STATUSES = ("canceled", "open", "paid")


class InvoicePaymentsMixin(InvoicesMixin):
    """Invoice payments made as invoices are charged, their list and retrieve endpoints, and the
    invoice's includable ``payments``."""

    # ------------------------------------------------------------------ made as invoices are paid

    def charge(self, customer: str, amount: int, currency: str, invoice: str | None = None,
               *, emit: bool = True, intent: dict[str, Any] | None = None) -> dict[str, Any]:
        """A payment made for an invoice gets its invoice payment, ``open`` until the invoice is
        paid (a declined attempt leaves its PaymentIntent waiting for a payment method); a retry
        confirms the same PaymentIntent, so it keeps its one invoice payment."""
        pi = super().charge(customer, amount, currency, invoice, emit=emit, intent=intent)
        if invoice and intent is None:
            self._store("invoice_payment", self.base(
                "inpay", "invoice_payment", amount_paid=None, amount_requested=amount, currency=currency,
                invoice=invoice, is_default=True,
                payment={"type": "payment_intent", "payment_intent": pi["id"]}, status="open",
                status_transitions={"canceled_at": None, "paid_at": None}))
        return pi

    def _mark_paid(self, inv: dict[str, Any]) -> None:
        """The invoice's open payments settle with it: the one whose PaymentIntent succeeded is
        paid, the others (declined attempts, or all of them when paid out of band) canceled."""
        now = self.now()
        paid = []
        for link in self.invoice_payments_of(str(inv["id"])):
            if link["status"] != "open":
                continue
            pi = self.table("payment_intent").get(str(link["payment"]["payment_intent"]))
            if pi is not None and pi["status"] == "succeeded":
                link.update(status="paid", amount_paid=pi["amount_received"])
                link["status_transitions"]["paid_at"] = now
                paid.append(link)
            else:
                link.update(status="canceled", is_default=False)
                link["status_transitions"]["canceled_at"] = now
        super()._mark_paid(inv)
        for link in paid:
            self.emit("invoice_payment.paid", link)

    # ------------------------------------------------------------------ reads

    def invoice_payments_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """An invoice's payments, newest first."""
        return [p for p in self.live("invoice_payment") if p["invoice"] == invoice_id]

    def paid_intent_of(self, invoice_id: str) -> str | None:
        """The PaymentIntent that paid an invoice (``None``: none did, or it was paid out of band)."""
        return next((str(p["payment"]["payment_intent"]) for p in self.invoice_payments_of(invoice_id)
                     if p["status"] == "paid" and p["payment"]["type"] == "payment_intent"), None)

    def list_invoice_payments(self, params: Params) -> dict[str, Any]:
        """``GET /v1/invoice_payments``: the filters the spec gives the operation, and paging."""
        check = created_filter(params)
        invoice = str(params.get("invoice") or "")
        status = str(params.get("status") or "")
        if status and status not in _STATUSES:
            raise invalid(f"Invalid status: must be one of {', '.join(_STATUSES)}", "status")
        payment = params.get("payment")
        kind = intent = ""
        if payment not in (None, ""):
            if not isinstance(payment, Mapping):
                raise invalid("Invalid object", "payment")
            kind, intent = str(payment.get("type") or ""), str(payment.get("payment_intent") or "")
            if not kind:
                raise invalid("Missing required param: payment[type].", "payment[type]",
                              code="parameter_missing")
            if kind not in _PAYMENT_TYPES:
                raise invalid(f"Invalid payment[type]: must be one of {', '.join(_PAYMENT_TYPES)}",
                              "payment[type]")

        def listed(link: Mapping[str, Any]) -> bool:
            paid_by = link["payment"]
            return (check(link) and (not invoice or link["invoice"] == invoice)
                    and (not status or link["status"] == status)
                    and (not kind or paid_by["type"] == kind)
                    and (not intent or paid_by.get("payment_intent") == intent))
        if params.get("ending_before"):  # paging back (rare): the whole list, as Stripe orders it
            items = [p for p in self.live("invoice_payment") if listed(p)]
        else:
            items, params = self._page_down("invoice_payment", params, listed)
        envelope = paginate(items, params, LIST_URL)
        envelope["data"] = [self.render(p) for p in envelope["data"]]
        return envelope

    def retrieve_invoice_payment(self, obj_id: str) -> dict[str, Any]:
        return self.render(self.get("invoice_payment", obj_id, "invoice_payment"))

    def includable(self, node: Mapping[str, Any], field: str) -> dict[str, Any] | None:
        """An invoice's ``payments`` (``expand[]=payments``): the first ten, newest first."""
        if node.get("object") == "invoice" and field == "payments" and node.get("id") and not node.get("deleted"):
            links = self.invoice_payments_of(str(node["id"]))
            return {"object": "list", "data": [self.render(p) for p in links[:_FIRST_PAGE]],
                    "has_more": len(links) > _FIRST_PAGE, "url": LIST_URL}
        others = getattr(super(), "includable", None)  # the other includable fields (``includes``)
        found: dict[str, Any] | None = others(node, field) if others is not None else None
        return found

    def add_invoice_payment_routes(self, router: Any, route: Any) -> None:
        route(router, "GET", "/v1/invoice_payments", lambda p, m: self.list_invoice_payments(p))
        route(router, "GET", "/v1/invoice_payments/{id}", lambda p, m: self.retrieve_invoice_payment(m["id"]))
