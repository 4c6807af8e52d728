"""Payments made through the API rather than by an invoice: ``POST /v1/payment_intents`` (with
confirm, capture, cancel) and the legacy ``POST /v1/charges``.

Stripe facts kept (docs "The PaymentIntents lifecycle", "Place a hold on a payment method",
"Testing"): an intent without a payment method is ``requires_payment_method``, with one
``requires_confirmation``; confirming it charges the card: ``succeeded`` (its ``latest_charge``
with a balance transaction carrying Stripe's fee), or with ``capture_method=manual``
``requires_capture`` (an authorised, uncaptured charge that moves no money until captured); a
declined card answers 402 ``card_declined`` and leaves the intent ``requires_payment_method``
with ``last_payment_error``; ``pm_card_createDispute`` succeeds and is disputed at once. Events:
``payment_intent.created``, ``.succeeded``, ``.amount_capturable_updated``, ``.payment_failed``,
``.canceled``, ``charge.succeeded``, ``charge.captured``, ``charge.failed``; with
``setup_future_usage`` the payment method is attached to the intent's customer. A charge made with
``/v1/charges`` names no PaymentIntent. Stripe's smallest charge is 0.50 USD (or about that).

The money itself moves through ``payments.charge`` (charge, balance transaction, fee), the one
place the emulator computes it.
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.disputes import DisputesMixin
from connectors.stripe.emulator.payment_methods import (
    DECLINES,
    DISPUTES,
    PaymentMethodsMixin,
    card_fields,
    card_of,
)
from connectors.stripe.emulator.payments import PaymentsMixin
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import (
    StripeAPIError,
    as_bool,
    as_int,
    check_known,
    invalid,
    merge_metadata,
)

# Stripe's minimum charge amounts in minor units (docs "Minimum and maximum charge amounts")
MINIMUM = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50, "sek": 300}
INTENT_PARAMS = ("amount", "currency", "customer", "confirm", "payment_method", "payment_method_types",
                 "metadata", "description", "capture_method", "confirmation_method", "receipt_email",
                 "statement_descriptor", "statement_descriptor_suffix", "setup_future_usage", "off_session",
                 "return_url", "automatic_payment_methods", "error_on_requires_action", "transfer_group",
                 "use_stripe_sdk")
CONFIRM_PARAMS = ("payment_method", "receipt_email", "return_url", "off_session", "setup_future_usage",
                  "error_on_requires_action", "use_stripe_sdk", "capture_method")


class IntentsMixin(PaymentMethodsMixin, DisputesMixin, PaymentsMixin):
    """PaymentIntents and charges created directly."""

    def _amount(self, params: Params) -> tuple[int, str]:
        amount = as_int(params, "amount")
        currency = str(params.get("currency") or "").lower()
        if amount is None:
            raise invalid("Missing required param: amount.", "amount", code="parameter_missing")
        if not currency:
            raise invalid("Missing required param: currency.", "currency", code="parameter_missing")
        if amount < MINIMUM.get(currency, 1):
            raise invalid(f"Amount must be at least {MINIMUM.get(currency, 1)} {currency} (minor units).",
                          "amount", code="amount_too_small")
        return amount, currency

    def _method_for(self, pm_id: str, customer: str | None) -> dict[str, Any]:
        pm = self.payment_method(pm_id)
        if pm["customer"] and customer and pm["customer"] != customer:
            raise invalid("The provided PaymentMethod belongs to a different Customer.", "payment_method")
        if pm["customer"] and not customer:
            raise invalid("The provided PaymentMethod was previously attached to a Customer; pass that "
                          "customer too.", "payment_method")
        return pm

    # ------------------------------------------------------------------ payment intents

    def create_intent(self, params: Params) -> dict[str, Any]:
        check_known(params, INTENT_PARAMS)
        amount, currency = self._amount(params)
        customer = str(params["customer"]) if params.get("customer") else None
        if customer:
            self.get("customer", customer, "customer")
        capture = str(params.get("capture_method") or "automatic")
        if capture not in ("automatic", "automatic_async", "manual"):
            raise invalid(f"Invalid capture_method: {capture}", "capture_method")
        pm = self._method_for(str(params["payment_method"]), customer) if params.get("payment_method") else None
        pi_id = self.ids("pi")
        pi = self.base(
            "pi", "payment_intent", id=pi_id, amount=amount, amount_capturable=0,
            amount_received=0, application=None, application_fee_amount=None,
            automatic_payment_methods=None, canceled_at=None, cancellation_reason=None,
            capture_method=capture, client_secret=f"{pi_id}_secret_emulated",
            confirmation_method=str(params.get("confirmation_method") or "automatic"), currency=currency,
            customer=customer, description=params.get("description") or None, last_payment_error=None,
            latest_charge=None, metadata=merge_metadata({}, params.get("metadata")), next_action=None,
            on_behalf_of=None, payment_method=pm["id"] if pm else None,
            payment_method_configuration_details=None, payment_method_options={},
            payment_method_types=[str(t) for t in (params.get("payment_method_types") or ["card"])],
            processing=None, receipt_email=params.get("receipt_email") or None, review=None,
            setup_future_usage=params.get("setup_future_usage") or None, shipping=None,
            statement_descriptor=params.get("statement_descriptor") or None,
            statement_descriptor_suffix=params.get("statement_descriptor_suffix") or None,
            status="requires_confirmation" if pm else "requires_payment_method", transfer_data=None,
            transfer_group=params.get("transfer_group") or None)
        self._store("payment_intent", pi)
        self.emit("payment_intent.created", pi)
        if as_bool(params, "confirm", False):
            return self.confirm_intent(pi_id, {})
        return self.render(pi)

    def update_intent(self, pi_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("amount", "currency", "customer", "description", "metadata", "payment_method",
                             "receipt_email", "setup_future_usage", "statement_descriptor",
                             "statement_descriptor_suffix", "capture_method", "transfer_group"))
        pi = self.get("payment_intent", pi_id)
        if pi["status"] in ("succeeded", "canceled", "processing", "requires_capture") and set(params) - {"metadata", "description"}:
            raise invalid(f"You cannot update this PaymentIntent because it has a status of {pi['status']}.",
                          code="payment_intent_unexpected_state")
        changes: dict[str, Any] = {}
        if "amount" in params or "currency" in params:
            changes["amount"], changes["currency"] = self._amount({"amount": params.get("amount", pi["amount"]),
                                                                   "currency": params.get("currency", pi["currency"])})
        for name in ("description", "receipt_email", "setup_future_usage", "statement_descriptor",
                     "statement_descriptor_suffix", "capture_method", "transfer_group"):
            if name in params:
                changes[name] = params[name] or None
        if params.get("customer"):
            changes["customer"] = self.get("customer", str(params["customer"]), "customer")["id"]
        if "metadata" in params:
            changes["metadata"] = merge_metadata(pi["metadata"], params["metadata"])
        if params.get("payment_method"):
            pm = self._method_for(str(params["payment_method"]), changes.get("customer", pi["customer"]))
            changes.update(payment_method=pm["id"], status="requires_confirmation")
        return self.render(self._update("payment_intent", pi, changes))

    def confirm_intent(self, pi_id: str, params: Params) -> dict[str, Any]:
        check_known(params, CONFIRM_PARAMS)
        pi = self.get("payment_intent", pi_id)
        if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise invalid(f"This PaymentIntent's status is {pi['status']}; it cannot be confirmed.",
                          code="payment_intent_unexpected_state")
        if params.get("payment_method"):
            pi["payment_method"] = self._method_for(str(params["payment_method"]), pi["customer"])["id"]
        for name in ("receipt_email", "setup_future_usage", "capture_method"):
            if params.get(name):
                pi[name] = params[name]
        if not pi["payment_method"]:
            raise invalid("You cannot confirm this PaymentIntent because it's missing a payment method.",
                          "payment_method", code="payment_intent_unexpected_state")
        pm = self.table("payment_method")[pi["payment_method"]]
        ch = self._card_charge(pi["customer"], pi["amount"], pi["currency"], pm["id"], pm["_test_card"], pi)
        if not pi["customer"]:
            ch["billing_details"] = dict(pm["billing_details"])
        pi.update(latest_charge=ch["id"], last_payment_error=None)
        if pm["_test_card"] in DECLINES:
            self._fail(ch, pi)
        if pi["capture_method"] == "manual":
            self._hold(ch)
            pi.update(status="requires_capture", amount_capturable=pi["amount"])
            self.emit("payment_intent.amount_capturable_updated", pi)
            self.emit("charge.succeeded", ch)
            return self.render(pi)
        pi.update(status="succeeded", amount_received=pi["amount"])
        if pi["setup_future_usage"] and pi["customer"] and not pm["customer"]:
            pm["customer"] = pi["customer"]  # saved for later payments, as Stripe does
            self.emit("payment_method.attached", pm)
        self.emit("payment_intent.succeeded", pi)
        self.emit("charge.succeeded", ch)
        self.intent_succeeded(pi)  # an invoice's PaymentIntent: the invoice is paid
        if pm["_test_card"] in DISPUTES:
            self.open_dispute(ch["id"])
        return self.render(pi)

    def capture_intent(self, pi_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("amount_to_capture", "metadata", "statement_descriptor",
                             "statement_descriptor_suffix", "final_capture"))
        pi = self.get("payment_intent", pi_id)
        if pi["status"] != "requires_capture":
            raise invalid(f"This PaymentIntent could not be captured because it has a status of {pi['status']}. "
                          "Only a PaymentIntent with one of the following statuses may be captured: "
                          "requires_capture.", code="payment_intent_unexpected_state")
        if as_int(params, "amount_to_capture", pi["amount"]) != pi["amount"]:
            raise invalid("The emulator captures the whole amount only.", "amount_to_capture")
        ch = self.table("charge")[pi["latest_charge"]]
        self._capture(ch)
        if "metadata" in params:
            pi["metadata"] = merge_metadata(pi["metadata"], params["metadata"])
        pi.update(status="succeeded", amount_capturable=0, amount_received=pi["amount"])
        self.emit("charge.captured", ch)
        self.emit("payment_intent.succeeded", pi)
        return self.render(pi)

    def cancel_intent(self, pi_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("cancellation_reason",))
        pi = self.get("payment_intent", pi_id)
        if pi["status"] in ("succeeded", "canceled", "processing"):
            raise invalid(f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}.",
                          code="payment_intent_unexpected_state")
        reason = params.get("cancellation_reason") or None
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
            raise invalid(f"Invalid cancellation_reason: {reason}", "cancellation_reason")
        if pi["status"] == "requires_capture":  # the authorisation is released: nothing was taken
            ch = self.table("charge")[pi["latest_charge"]]
            ch.update(amount_refunded=ch["amount"], refunded=True)
            ch.pop("_held", None)
        pi.update(status="canceled", canceled_at=self.now(), cancellation_reason=reason, amount_capturable=0)
        self.emit("payment_intent.canceled", pi)
        return self.render(pi)

    # ------------------------------------------------------------------ legacy charges

    def create_legacy_charge(self, params: Params) -> dict[str, Any]:
        check_known(params, ("amount", "currency", "customer", "source", "description", "metadata", "capture",
                             "receipt_email", "statement_descriptor", "statement_descriptor_suffix",
                             "transfer_group", "shipping"))
        amount, currency = self._amount(params)
        customer = str(params["customer"]) if params.get("customer") else None
        if customer:
            self.get("customer", customer, "customer")
        source = str(params.get("source") or "")
        card = card_of(source) if source.startswith("tok_") else None
        if card is None:
            raise invalid("Provide a source: a test card token (tok_visa, tok_mastercard, …).", "source",
                          code="parameter_missing" if not source else "parameter_invalid")
        # a legacy charge is paid by a card (``card_…``), not by a PaymentMethod
        ch = self._card_charge(customer, amount, currency, self.ids("card"), card, None,
                               description=params.get("description"), metadata=params.get("metadata"),
                               receipt_email=params.get("receipt_email"))
        if card in DECLINES:
            self._fail(ch, None)
        if as_bool(params, "capture", True) is False:
            self._hold(ch)
        self.emit("charge.succeeded", ch)
        if card in DISPUTES:
            self.open_dispute(ch["id"])
        return self.render(ch)

    def capture_legacy_charge(self, ch_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("amount", "receipt_email", "statement_descriptor", "statement_descriptor_suffix"))
        ch = self.get("charge", ch_id)
        if ch["captured"]:
            raise invalid(f"Charge {ch_id} has already been captured.", code="charge_already_captured")
        if as_int(params, "amount", ch["amount"]) != ch["amount"]:
            raise invalid("The emulator captures the whole amount only.", "amount")
        if ch.get("payment_intent"):
            return self.render(self.table("charge")[self.capture_intent(ch["payment_intent"], {})["latest_charge"]])
        self._capture(ch)
        self.emit("charge.captured", ch)
        return self.render(ch)

    # ------------------------------------------------------------------ the money

    def _card_charge(self, customer: str | None, amount: int, currency: str, method: str, card: str,
                     pi: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
        """A successful card charge with its balance transaction and fee, made by ``payments.charge``.
        That makes the PaymentIntent an invoice payment needs; this payment has its own (or, a
        legacy charge, none), so that one is dropped unseen: no answer or event named it."""
        made = self.charge(customer or "", amount, currency, emit=False)
        self.table("payment_intent").pop(made["id"])
        self.kind_of.pop(made["id"], None)
        ch = self.table("charge")[made["latest_charge"]]
        source = pi or {}
        details = card_fields(card)
        ch.update(customer=customer, payment_intent=pi["id"] if pi else None, payment_method=method,
                  description=fields.get("description") or source.get("description"),
                  metadata=merge_metadata(dict(source.get("metadata") or {}), fields.get("metadata")),
                  receipt_email=fields.get("receipt_email") or source.get("receipt_email"),
                  payment_method_details={"type": "card", "card": {
                      k: details[k] for k in ("brand", "last4", "exp_month", "exp_year", "country", "funding")}},
                  outcome={"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                           "seller_message": "Payment complete.", "type": "authorized"})
        txn = self.table("balance_transaction")[ch["balance_transaction"]]
        txn["description"] = ch["description"]
        return ch

    def _fail(self, ch: dict[str, Any], pi: dict[str, Any] | None) -> None:
        """A declined card: the charge failed and moved no money, a 402 ``card_declined``."""
        self.table("balance_transaction").pop(ch["balance_transaction"], None)
        ch.update(status="failed", paid=False, captured=False, amount_captured=0, balance_transaction=None,
                  failure_code="card_declined", failure_message="Your card was declined.",
                  outcome={"network_status": "declined_by_network", "reason": "generic_decline",
                           "risk_level": "normal", "seller_message": "The bank did not return any further details "
                           "with this decline.", "type": "issuer_declined"})
        self.emit("charge.failed", ch)
        if pi is not None:
            pi.update(status="requires_payment_method", payment_method=None, last_payment_error={
                "code": "card_declined", "decline_code": "generic_decline", "type": "card_error",
                "message": "Your card was declined.", "charge": ch["id"]})
            self.emit("payment_intent.payment_failed", pi)
        raise StripeAPIError(402, "Your card was declined.", type_="card_error", code="card_declined")

    def _hold(self, ch: dict[str, Any]) -> None:
        """An authorised, uncaptured charge: its balance transaction waits for the capture."""
        ch["_held"] = self.table("balance_transaction").pop(ch["balance_transaction"])
        ch.update(captured=False, amount_captured=0, balance_transaction=None)

    def _capture(self, ch: dict[str, Any]) -> None:
        txn = ch.pop("_held")
        txn.update(created=self.now(), available_on=self.now() + 2 * 86400)
        self._store("balance_transaction", txn)
        ch.update(captured=True, amount_captured=ch["amount"], balance_transaction=txn["id"])

    def add_intent_routes(self, router: Any, route: Any) -> None:
        route(router, "POST", "/v1/payment_intents", lambda p, m: self.create_intent(p))
        route(router, "POST", "/v1/payment_intents/{id}", lambda p, m: self.update_intent(m["id"], p))
        route(router, "POST", "/v1/payment_intents/{id}/confirm", lambda p, m: self.confirm_intent(m["id"], p))
        route(router, "POST", "/v1/payment_intents/{id}/capture", lambda p, m: self.capture_intent(m["id"], p))
        route(router, "POST", "/v1/payment_intents/{id}/cancel", lambda p, m: self.cancel_intent(m["id"], p))
        route(router, "POST", "/v1/charges", lambda p, m: self.create_legacy_charge(p))
        route(router, "POST", "/v1/charges/{id}/capture", lambda p, m: self.capture_legacy_charge(m["id"], p))
