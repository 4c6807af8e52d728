"""How the Stripe emulator collects an invoice: which payment method pays it, a declined or
impossible payment, the retry schedule, and the PaymentIntent every attempt confirms.

Stripe facts kept (docs "Automate payment retries", "How subscriptions work", the Invoice and
Subscription objects, ``payment_behavior`` in spec3):
- automatic collection charges the first of: the invoice's ``default_payment_method``, the
  subscription's, the customer's ``invoice_settings.default_payment_method``, the customer's
  ``default_source``. With none, nothing is charged: the invoice stays ``open``, its
  PaymentIntent ``requires_payment_method`` with no charge, ``invoice.payment_failed`` is sent,
  and no retry is scheduled ("Stripe doesn't retry payments if no payment methods are
  available": ``next_payment_attempt`` null);
- a declined attempt leaves the invoice open with ``attempted``, ``attempt_count`` + 1 and, while
  retries remain for an automatically collected invoice, ``next_payment_attempt``; every attempt
  (retry or ``POST /v1/invoices/{id}/pay``) confirms the invoice's one PaymentIntent again, each
  attempt a charge of its own;
- a subscription whose first invoice is not paid is ``incomplete`` (``allow_incomplete``, the
  default ``payment_behavior``), ``active`` once it is paid, ``incomplete_expired`` (its invoice
  voided) if it is not paid within 23 hours; a renewal not paid makes it ``past_due``, and it is
  ``active`` again when paid. With ``default_incomplete`` the first invoice is not attempted: its
  PaymentIntent waits for the client to confirm it (``POST /v1/payment_intents/{id}/confirm``),
  which pays the invoice.

Emulator choices (Stripe's Smart Retries time attempts by a model no emulator can play): the
account's retry schedule is a custom one, ``RETRY_DAYS`` = a retry 3, then 5, then 7 days after
the attempt before it (``next_payment_attempt`` = the failed attempt's time + that); after the
last, ``next_payment_attempt`` is null and the subscription stays ``past_due`` (the "leave the
subscription past-due" setting). Retries run when the emulator's clock is advanced
(``POST /__emulator/clock``, or ``retry_payments()``), oldest due first. A customer with no
payment method is charged a test Visa card anyway unless ``Realism.payment_method_required``
is on (the suite's flows never collect a card; Stripe's behaviour, switched, as ``realism.py``).
``error_if_incomplete`` and ``pending_if_incomplete`` are taken as ``allow_incomplete``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.stripe.emulator.invoices import InvoicesMixin
from connectors.stripe.emulator.payment_methods import DECLINES
from connectors.stripe.emulator.realism import Realism
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import StripeAPIError, as_bool, check_known, invalid

DAY = 86400
RETRY_DAYS = (3, 5, 7)  # the custom retry schedule: days after the previous attempt
INCOMPLETE_EXPIRES = 23 * 3600  # an incomplete subscription's first invoice must be paid by then
# Stripe's fixed test ids that decline (docs.stripe.com/testing#declined-payments)
DECLINING_METHODS = frozenset({"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"})
LEGACY_CARD = "pm_card_visa"  # what a customer without a payment method is charged by default


class CollectionMixin(InvoicesMixin):
    """Collecting invoices: payment methods, declines, retries, subscription status."""

    realism: Realism
    retry_schedule_days: tuple[int, ...] = RETRY_DAYS  # the account's setting (a test may change it)

    # ------------------------------------------------------------------ which method pays

    def collection_method_for(self, inv: Mapping[str, Any], explicit: Any = None) -> str | None:
        """The payment method an attempt uses (Stripe's order), ``None`` when there is none."""
        if explicit:
            return str(explicit)
        sub = self.table("subscription").get(self.subscription_of(inv) or "")
        cus = self.table("customer").get(str(inv["customer"])) or {}
        for candidate in (inv.get("default_payment_method"), (sub or {}).get("default_payment_method"),
                          (cus.get("invoice_settings") or {}).get("default_payment_method"),
                          cus.get("default_source")):
            if candidate:
                return str(candidate)
        return None if self.realism.payment_method_required else LEGACY_CARD

    @staticmethod
    def subscription_of(inv: Mapping[str, Any]) -> str | None:
        parent = inv.get("parent") or {}
        details = parent.get("subscription_details") or {}
        return str(details["subscription"]) if details.get("subscription") else None

    def _declines(self, method: str) -> bool:
        if method in DECLINING_METHODS:
            return True
        pm = self.table("payment_method").get(method)
        return pm is not None and pm.get("_test_card") in DECLINES

    def _intent_of(self, inv: Mapping[str, Any]) -> dict[str, Any] | None:
        """The invoice's PaymentIntent still waiting for a payment (every attempt confirms it)."""
        for link in self.live("invoice_payment"):
            if link["invoice"] == inv["id"] and link["status"] == "open":
                pi = self.table("payment_intent").get(str(link["payment"].get("payment_intent")))
                if pi is not None and pi["status"] == "requires_payment_method":
                    return pi
        return None

    # ------------------------------------------------------------------ attempts

    def pay_invoice(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("paid_out_of_band", "payment_method", "source", "off_session",
                             "forgive", "mandate"))
        inv = self.get("invoice", obj_id)
        if inv["status"] == "draft":
            self.finalize_invoice(obj_id)
        if inv["status"] == "paid":
            raise invalid("Invoice is already paid", code="invoice_already_paid")
        if inv["status"] != "open":
            raise invalid(f"You cannot pay an invoice with status {inv['status']}.",
                          code="invoice_not_editable")
        if as_bool(params, "paid_out_of_band", False):
            inv["amount_paid_off_stripe"] = inv["amount_remaining"]
        elif inv["amount_remaining"] > 0:
            method = self.collection_method_for(inv, params.get("payment_method") or params.get("source"))
            if method is None:
                raise StripeAPIError(400, "This customer has no attached payment source or default "
                                     "payment method. Please consider adding a default payment method.",
                                     code="invoice_no_payment_method_types")
            self._attempt(inv, method, raise_decline=True)
        self._mark_paid(inv)
        return inv

    def collect_automatically(self, inv: dict[str, Any]) -> bool:
        """A finalized ``charge_automatically`` invoice's attempt; True when it was paid."""
        if inv["status"] != "open" or inv["collection_method"] != "charge_automatically":
            return bool(inv["status"] == "paid")
        method = self.collection_method_for(inv)
        if method is None:
            self._no_payment_method(inv)
            return False
        if self._attempt(inv, method, raise_decline=False):
            self._mark_paid(inv)
            return True
        return False

    def _attempt(self, inv: dict[str, Any], method: str, *, raise_decline: bool) -> bool:
        """One charge of the invoice's PaymentIntent; a decline is recorded (and raised 402 for a
        request that asked to pay)."""
        intent = self._intent_of(inv)
        if not self._declines(method):
            self.charge(inv["customer"], inv["amount_remaining"], inv["currency"], invoice=inv["id"],
                        intent=intent)
            inv["attempted"] = True
            inv["attempt_count"] += 1  # a successful attempt counts too
            inv["next_payment_attempt"] = None
            return True
        pi = self.charge(inv["customer"], inv["amount_remaining"], inv["currency"], invoice=inv["id"],
                         emit=False, intent=intent)
        ch = self.table("charge")[pi["latest_charge"]]
        self.table("balance_transaction").pop(ch["balance_transaction"], None)  # no money moved
        error = {"code": "card_declined", "decline_code": "generic_decline", "type": "card_error",
                 "message": "Your card was declined.", "charge": ch["id"]}
        ch.update(status="failed", paid=False, captured=False, amount_captured=0, balance_transaction=None,
                  failure_code="card_declined", failure_message="Your card was declined.",
                  payment_method=method, outcome={"network_status": "declined_by_network",
                                                  "reason": "generic_decline", "type": "issuer_declined"})
        pi.update(status="requires_payment_method", amount_received=0, last_payment_error=error,
                  payment_method=None)
        self.emit("charge.failed", ch)
        self.emit("payment_intent.payment_failed", pi)
        self._failed(inv, retry=True)
        if raise_decline:
            raise StripeAPIError(402, "Your card was declined.", type_="card_error", code="card_declined")
        return False

    def open_intent(self, inv: dict[str, Any]) -> dict[str, Any]:
        """The invoice's PaymentIntent waiting for a payment method (made once, with no charge)."""
        pi = self._intent_of(inv)
        if pi is None:
            pi = self.charge(inv["customer"], inv["amount_remaining"], inv["currency"], invoice=inv["id"],
                             emit=False)
            ch = self.table("charge").pop(pi["latest_charge"])
            self.table("balance_transaction").pop(ch["balance_transaction"], None)
            pi.update(status="requires_payment_method", amount_received=0, latest_charge=None,
                      payment_method=None)
            self.emit("payment_intent.created", pi)
        return pi

    def _no_payment_method(self, inv: dict[str, Any]) -> None:
        """Nothing to charge: the PaymentIntent waits for a payment method, no charge, no retry."""
        self.open_intent(inv)
        self._failed(inv, retry=False)

    def intent_succeeded(self, pi: Mapping[str, Any]) -> None:
        """A client confirmed an invoice's PaymentIntent itself (``POST
        /v1/payment_intents/{id}/confirm``, as with ``default_incomplete``): the invoice is paid."""
        for link in self.live("invoice_payment"):
            if link["payment"].get("payment_intent") == pi["id"] and link["status"] == "open":
                inv = self.table("invoice").get(str(link["invoice"]))
                if inv is not None and inv["status"] == "open":
                    inv["attempted"] = True
                    inv["attempt_count"] += 1
                    self._mark_paid(inv)

    def _failed(self, inv: dict[str, Any], *, retry: bool) -> None:
        previous = {"attempted": inv["attempted"], "attempt_count": inv["attempt_count"],
                    "next_payment_attempt": inv["next_payment_attempt"]}
        inv["attempted"] = True
        inv["attempt_count"] += 1
        retries_done = inv["attempt_count"] - 1
        automatic = inv["collection_method"] == "charge_automatically"
        days = self.retry_schedule_days
        inv["next_payment_attempt"] = (self.now() + days[retries_done] * DAY
                                       if retry and automatic and retries_done < len(days) else None)
        self.emit("invoice.payment_failed", inv, previous)
        sub = self.table("subscription").get(self.subscription_of(inv) or "")
        if sub is not None and sub["status"] == "active" and inv["billing_reason"] != "subscription_create":
            self._sub_status(sub, "past_due")  # a renewal (or an update's invoice) not paid

    # ------------------------------------------------------------------ subscription status

    def _sub_status(self, sub: dict[str, Any], status: str) -> None:
        if sub["status"] != status:
            previous = {"status": sub["status"]}
            sub["status"] = status
            self.emit("customer.subscription.updated", sub, previous)

    def _mark_paid(self, inv: dict[str, Any]) -> None:
        super()._mark_paid(inv)
        inv["next_payment_attempt"] = None
        sub = self.table("subscription").get(self.subscription_of(inv) or "")
        if sub is not None and sub["status"] in ("incomplete", "past_due") and not any(
                i["status"] == "open" and self.subscription_of(i) == sub["id"] for i in self.live("invoice")):
            self._sub_status(sub, "active")

    def transition(self, obj_id: str, target: str) -> dict[str, Any]:
        """Voiding an invoice cancels the PaymentIntent still waiting to pay it (reason
        ``void_invoice``) and its invoice payment, as Stripe does."""
        pi = self._intent_of(self.get("invoice", obj_id)) if target == "void" else None
        inv = super().transition(obj_id, target)
        if pi is not None:
            pi.update(status="canceled", canceled_at=self.now(), cancellation_reason="void_invoice")
            for link in self.live("invoice_payment"):
                if link["payment"].get("payment_intent") == pi["id"] and link["status"] == "open":
                    link.update(status="canceled", is_default=False)
                    link["status_transitions"]["canceled_at"] = self.now()
            self.emit("payment_intent.canceled", pi)
        inv["next_payment_attempt"] = None if target == "void" else inv["next_payment_attempt"]
        return inv

    # ------------------------------------------------------------------ the clock

    def retry_payments(self) -> list[str]:
        """Every retry due by the emulator's clock, oldest first; expire incomplete subscriptions.
        Returns the invoices attempted."""
        now = self.now()
        for sub in self.live("subscription"):
            if sub["status"] == "incomplete" and now >= sub["created"] + INCOMPLETE_EXPIRES:
                latest = self.table("invoice").get(str(sub.get("latest_invoice") or ""))
                if latest is not None and latest["status"] == "open":
                    latest["next_payment_attempt"] = None
                    self.transition(latest["id"], "void")
                self._sub_status(sub, "incomplete_expired")
        due = sorted((i for i in self.live("invoice") if i["status"] == "open"
                      and i.get("next_payment_attempt") is not None and i["next_payment_attempt"] <= now),
                     key=lambda i: int(i["next_payment_attempt"]))
        for inv in due:
            self.collect_automatically(inv)
        return [i["id"] for i in due]
