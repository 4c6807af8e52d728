"""The Stripe emulator's money movements: a card payment (PaymentIntent, Charge and its
balance transaction) and refunds against it.

Emulator choices (not Stripe facts): the account settles in USD at the fixed ``FX_TO_USD`` rates
with a 2.9 % + 30 cent fee. A PaymentIntent does not name the invoice it pays (as since API
version 2025-03-31): the invoice payments part links them; ``payment_details`` is the business's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.money import FX_TO_USD, minor_unit_exponent, round_half_up
from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import as_int, check_known, invalid, merge_metadata


class PaymentsMixin(StripeStore):
    """Charges with their PaymentIntents and balance transactions, and refunds."""

    def charge(self, customer: str, amount: int, currency: str, invoice: str | None = None,
               *, emit: bool = True, intent: dict[str, Any] | None = None) -> dict[str, Any]:
        """PaymentIntent + Charge + balance transaction for a successful card payment. With
        ``intent`` the charge is a new attempt of that PaymentIntent (an invoice's retry), which
        is confirmed again instead of a second one being made."""
        now = self.now()
        cus = self.table("customer").get(customer, {})
        rate = FX_TO_USD.get(currency, Decimal("1"))
        settled = round_half_up(Decimal(amount).scaleb(-minor_unit_exponent(currency)) * rate * 100)
        fee = round_half_up(Decimal(settled) * Decimal("0.029")) + 30
        pi_id = intent["id"] if intent is not None else self.ids("pi")
        ch_id, txn_id = self.ids("ch"), self.ids("txn")
        txn = self.base("txn", "balance_transaction", id=txn_id, amount=settled,
                        available_on=now + 2 * 86400, balance_type="payments", currency="usd",
                        description=f"Payment for Invoice {invoice}" if invoice else None,
                        exchange_rate=float(rate) if currency != "usd" else None, fee=fee,
                        fee_details=[{"amount": fee, "application": None, "currency": "usd",
                                      "description": "Stripe processing fees", "type": "stripe_fee"}],
                        net=settled - fee, reporting_category="charge", source=ch_id,
                        status="available", type="charge")
        ch = self.base("ch", "charge", id=ch_id, amount=amount, amount_captured=amount,
                       amount_refunded=0, application=None, application_fee=None,
                       application_fee_amount=None, balance_transaction=txn_id,
                       billing_details={"address": None, "email": cus.get("email"),
                                        "name": cus.get("name"), "phone": None, "tax_id": None},
                       calculated_statement_descriptor="EMULATED CO", captured=True, currency=currency,
                       customer=customer, description=None, disputed=False,
                       failure_balance_transaction=None, failure_code=None, failure_message=None,
                       fraud_details={}, metadata={}, on_behalf_of=None, outcome=None, paid=True,
                       payment_intent=pi_id, payment_method="pm_card_visa",
                       payment_method_details={"type": "card", "card": {
                           "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
                           "country": "US", "funding": "credit"}},
                       receipt_email=None, receipt_number=None, receipt_url=None, refunded=False,
                       review=None, shipping=None, source_transfer=None, statement_descriptor=None,
                       statement_descriptor_suffix=None, status="succeeded", transfer_data=None,
                       transfer_group=None)
        pi = self.base("pi", "payment_intent", id=pi_id, amount=amount, amount_capturable=0,
                       amount_received=amount, application=None, application_fee_amount=None,
                       automatic_payment_methods=None, canceled_at=None, cancellation_reason=None,
                       capture_method="automatic", client_secret=f"{pi_id}_secret_emulated",
                       confirmation_method="automatic", currency=currency, customer=customer,
                       description="Payment for Invoice" if invoice else None,
                       last_payment_error=None, latest_charge=ch_id, metadata={}, next_action=None,
                       on_behalf_of=None,
                       payment_details={"customer_reference": None, "order_reference": None},
                       payment_method="pm_card_visa", payment_method_configuration_details=None,
                       payment_method_options=None, processing=None, receipt_email=None,
                       review=None, setup_future_usage=None, shipping=None, statement_descriptor=None,
                       statement_descriptor_suffix=None, status="succeeded", transfer_data=None,
                       transfer_group=None)
        self._store("balance_transaction", txn)
        self._store("charge", ch)
        if intent is not None:  # the same PaymentIntent, now succeeded by this charge
            for kept in ("created", "metadata", "description", "payment_details"):
                pi[kept] = intent[kept]
            intent.clear()
            intent.update(pi)
            pi = intent
        else:
            self._store("payment_intent", pi)
        if emit:
            self.emit("payment_intent.succeeded", pi)
            self.emit("charge.succeeded", ch)
        return pi

    def create_refund(self, params: Params) -> dict[str, Any]:
        check_known(params, ("charge", "payment_intent", "amount", "reason", "metadata",
                             "instructions_email", "origin", "refund_application_fee",
                             "reverse_transfer", "customer", "currency"))
        if params.get("payment_intent"):
            pi = self.get("payment_intent", str(params["payment_intent"]))
            ch = self.get("charge", pi["latest_charge"])
        elif params.get("charge"):
            ch = self.get("charge", str(params["charge"]))
            pi = self.get("payment_intent", ch["payment_intent"])
        else:
            raise invalid("Missing required param: charge or payment_intent.", "charge",
                          code="parameter_missing")
        remaining = ch["amount"] - ch["amount_refunded"]
        amount = as_int(params, "amount", remaining)
        assert amount is not None
        if amount <= 0 or amount > remaining:
            raise invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                          f"({remaining})", "amount", code="amount_too_large")
        reason = params.get("reason") or None
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid("Invalid reason", "reason")
        txn_id = self.ids("txn")
        original = self.table("balance_transaction")[ch["balance_transaction"]]
        settled = -round_half_up(Decimal(original["amount"]) * amount / ch["amount"])
        txn = self.base("txn", "balance_transaction", id=txn_id, amount=settled,
                        available_on=self.now(), balance_type="payments", currency="usd",
                        description="REFUND FOR CHARGE", exchange_rate=original["exchange_rate"],
                        fee=0, fee_details=[], net=settled, reporting_category="refund",
                        source=None, status="available", type="refund")
        refund = self.base("re", "refund", amount=amount, balance_transaction=txn_id, charge=ch["id"],
                           currency=ch["currency"],
                           metadata=merge_metadata({}, params.get("metadata")),
                           payment_intent=pi["id"], reason=reason, receipt_number=None,
                           source_transfer_reversal=None, status="succeeded", transfer_reversal=None,
                           destination_details={"type": "card", "card": {"type": "refund"}})
        txn["source"] = refund["id"]
        self._store("balance_transaction", txn)
        self._store("refund", refund)
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] == ch["amount"]
        self.emit("refund.created", refund)
        self.emit("charge.refunded", ch, previous)
        return refund
