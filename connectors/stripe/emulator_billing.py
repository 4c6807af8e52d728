"""The Stripe emulator's billing engine: invoices and their items, tax maths, payments,
refunds, credit notes, subscriptions with proration, and renewals on clock advance.

Emulator choices (not Stripe facts): the account settles in USD at the fixed ``FX_TO_USD`` rates
with a 2.9 % + 30 cent fee; an invoice's PaymentIntent names the invoice in
``payment_details.order_reference``.
"""

from __future__ import annotations

import calendar
import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.stripe.emulator_store import Params, StripeStore
from connectors.stripe.emulator_wire import (
    StripeAPIError,
    as_bool,
    as_int,
    as_list,
    check_known,
    created_filter,
    invalid,
    merge_metadata,
    missing,
    paginate,
)

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
# Stripe's test payment methods that decline (docs.stripe.com/testing#declined-payments).
DECLINING_METHODS = frozenset({"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"})
FX_TO_USD = {"usd": Decimal("1"), "eur": Decimal("1.08"), "gbp": Decimal("1.27"),
             "jpy": Decimal("0.0067"), "cad": Decimal("0.73"), "aud": Decimal("0.66"),
             "chf": Decimal("1.12"), "sek": Decimal("0.095"), "krw": Decimal("0.00075")}


def _exp(currency: str) -> int:
    cur = currency.lower()
    return 0 if cur in ZERO_DECIMAL else 3 if cur in THREE_DECIMAL else 2


def _round(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def add_interval(ts: int, interval: str, count: int) -> int:
    """Calendar arithmetic for billing periods (month ends clamp, as Stripe does)."""
    dt = datetime.fromtimestamp(ts, UTC)
    if interval == "day":
        dt += timedelta(days=count)
    elif interval == "week":
        dt += timedelta(weeks=count)
    else:
        months = dt.month - 1 + count * (12 if interval == "year" else 1)
        year, month = dt.year + months // 12, months % 12 + 1
        dt = dt.replace(year=year, month=month, day=min(dt.day, calendar.monthrange(year, month)[1]))
    return int(dt.timestamp())



class BillingMixin(StripeStore):
    """Invoices, payments, refunds, credit notes and subscriptions."""

    # ------------------------------------------------------------------ invoices

    def create_invoice(self, params: Params, *, billing_reason: str = "manual",
                       subscription: Mapping[str, Any] | None = None,
                       period: tuple[int, int] | None = None) -> dict[str, Any]:
        check_known(params, ("customer", "currency", "collection_method", "days_until_due", "due_date",
                             "auto_advance", "default_tax_rates", "description", "metadata",
                             "pending_invoice_items_behavior", "footer", "subscription",
                             "automatic_tax", "discounts"))
        cus = self.get("customer", str(params.get("customer") or ""), "customer")
        method = params.get("collection_method") or "charge_automatically"
        if method not in ("charge_automatically", "send_invoice"):
            raise invalid("Invalid collection_method", "collection_method")
        days = as_int(params, "days_until_due")
        if method == "send_invoice" and days is None and not params.get("due_date"):
            raise invalid("Missing required param: days_until_due or due_date when collection_method "
                          "is send_invoice.", "days_until_due", code="parameter_missing")
        now = self.now()
        start, end = period or (now, now)
        inv = self.base(
            "in", "invoice", account_country="US", account_name="Emulated Co", amount_due=0,
            amount_overpaid=0, amount_paid=0, amount_paid_off_stripe=0, amount_remaining=0,
            amount_shipping=0, application=None, attempt_count=0, attempted=False,
            auto_advance=as_bool(params, "auto_advance", False),
            automatic_tax={"enabled": False, "disabled_reason": None, "liability": None,
                           "provider": None, "status": None},
            automatically_finalizes_at=None, billing_reason=billing_reason, collection_method=method,
            currency=str(params.get("currency") or cus.get("currency") or "usd").lower(),
            customer=cus["id"], customer_address=cus["address"], customer_email=cus["email"],
            customer_name=cus["name"], customer_phone=cus["phone"], customer_shipping=None,
            customer_tax_exempt=cus["tax_exempt"], customer_tax_ids=[], default_payment_method=None,
            default_source=None,
            default_tax_rates=[self.render(t) for t in self._tax_rates(params.get("default_tax_rates"))],
            description=params.get("description") or None, discounts=[],
            due_date=as_int(params, "due_date"), effective_at=None, ending_balance=None, footer=None,
            from_invoice=None, hosted_invoice_url=None, invoice_pdf=None, issuer={"type": "self"},
            last_finalization_error=None, latest_revision=None,
            metadata=merge_metadata({}, params.get("metadata")), next_payment_attempt=None,
            number=None, on_behalf_of=None, parent=None,
            payment_settings={"default_mandate": None, "payment_method_options": None,
                              "payment_method_types": None},
            period_end=end, period_start=start, post_payment_credit_notes_amount=0,
            pre_payment_credit_notes_amount=0, receipt_number=None, rendering=None,
            shipping_cost=None, shipping_details=None, starting_balance=0, statement_descriptor=None,
            status="draft",
            status_transitions={"finalized_at": None, "marked_uncollectible_at": None,
                                "paid_at": None, "voided_at": None},
            subtotal=0, subtotal_excluding_tax=0, test_clock=None, total=0,
            total_discount_amounts=[], total_excluding_tax=0, total_pretax_credit_amounts=[],
            total_taxes=[], webhooks_delivered_at=None, _lines=[], _days_until_due=days)
        if subscription is not None:
            inv["parent"] = {"type": "subscription_details", "quote_details": None,
                             "subscription_details": {"metadata": dict(subscription["metadata"]),
                                                      "subscription": subscription["id"]}}
        self._store("invoice", inv)
        if params.get("pending_invoice_items_behavior") == "include" or subscription is not None:
            for item in list(self.live("invoiceitem"))[::-1]:
                same_sub = subscription is None or (item.get("_subscription") == subscription["id"])
                if item["customer"] == cus["id"] and item["invoice"] is None and same_sub:
                    self._attach_item(inv, item)
        self.recompute(inv)
        self.emit("invoice.created", inv)
        return self.render(inv) if subscription is None and billing_reason == "manual" else inv

    def update_invoice(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("metadata", "description", "footer", "auto_advance", "days_until_due",
                             "due_date", "default_tax_rates", "collection_method"))
        inv = self.get("invoice", obj_id)
        changes: dict[str, Any] = {}
        if "metadata" in params:
            changes["metadata"] = merge_metadata(inv["metadata"], params["metadata"])
        if "description" in params:
            changes["description"] = params["description"] or None
        if "auto_advance" in params:
            changes["auto_advance"] = as_bool(params, "auto_advance")
        if "default_tax_rates" in params:
            if inv["status"] != "draft":
                raise invalid("You can only update default_tax_rates on a draft invoice.")
            changes["default_tax_rates"] = [self.render(t) for t in
                                            self._tax_rates(params["default_tax_rates"])]
        self._update("invoice", inv, changes)
        self.recompute(inv)
        return self.render(inv)

    def delete_invoice(self, obj_id: str) -> dict[str, Any]:
        inv = self.get("invoice", obj_id)
        if inv["status"] != "draft":
            raise invalid("You can only delete draft invoices.")
        inv["_deleted"] = True
        for item in self.live("invoiceitem"):
            if item["invoice"] == obj_id:
                item["invoice"] = None
        self.emit("invoice.deleted", inv)
        return {"id": obj_id, "object": "invoice", "deleted": True}

    def invoice_lines(self, obj_id: str, params: Params) -> dict[str, Any]:
        inv = self.get("invoice", obj_id)
        lines = [self._wire_line(line) for line in inv["_lines"]]
        return paginate(lines, params, f"/v1/invoices/{obj_id}/lines")

    def create_invoice_item(self, params: Params, *, proration: bool = False,
                            subscription: str | None = None, subscription_item: str | None = None,
                            period: tuple[int, int] | None = None) -> dict[str, Any]:
        check_known(params, ("customer", "invoice", "amount", "currency", "description", "quantity",
                             "price", "pricing", "unit_amount", "unit_amount_decimal", "tax_rates",
                             "period", "metadata", "discountable", "subscription", "tax_behavior",
                             "price_data"))
        cus = self.get("customer", str(params.get("customer") or ""), "customer")
        inv = self.get("invoice", str(params["invoice"])) if params.get("invoice") else None
        if inv is not None and inv["status"] != "draft":
            raise invalid(f"You can only add invoice items to draft invoices; {inv['id']} is "
                          f"{inv['status']}.", "invoice")
        quantity = as_int(params, "quantity", 1) or 1
        pricing: dict[str, Any] = params["pricing"] if isinstance(params.get("pricing"), dict) else {}
        price_id = params.get("price") or pricing.get("price")
        price = self.get("price", str(price_id)) if price_id else None
        if price is not None and price["type"] != "one_time":
            raise invalid(f"The price specified ({price['id']}) is set to `type=recurring` but this "
                          "field only accepts prices with `type=one_time`.", "pricing[price]")
        currency = str(params.get("currency") or (price or {}).get("currency")
                       or (inv or {}).get("currency") or cus.get("currency") or "usd").lower()
        if price is not None:
            unit = Decimal(price["unit_amount_decimal"])
            amount = _round(unit * quantity)
        elif params.get("amount") not in (None, ""):
            amount = as_int(params, "amount") or 0
            unit = Decimal(amount) / quantity
        elif params.get("unit_amount") not in (None, "") or params.get("unit_amount_decimal"):
            unit = Decimal(str(params.get("unit_amount") or params.get("unit_amount_decimal")))
            amount = _round(unit * quantity)
        else:
            raise invalid("Missing required param: amount, price or unit_amount.", "amount",
                          code="parameter_missing")
        if inv is not None and currency != inv["currency"]:
            raise invalid(f"The currency of the invoice item ({currency}) must match the invoice "
                          f"({inv['currency']}).", "currency")
        now = self.now()
        per: dict[str, Any] = params["period"] if isinstance(params.get("period"), dict) else {}
        start, end = period or (as_int(per, "start", now) or now, as_int(per, "end", now) or now)
        tax_ids = params.get("tax_rates")
        item = self.base(
            "ii", "invoiceitem", amount=amount, currency=currency, customer=cus["id"], date=now,
            description=params.get("description") or (price and self._product_name(price)) or None,
            discountable=not proration, discounts=[], invoice=None,
            metadata=merge_metadata({}, params.get("metadata")), net_amount=amount,
            parent=({"type": "subscription_details",
                     "subscription_details": {"subscription": subscription,
                                              "subscription_item": subscription_item}}
                    if subscription else None),
            period={"start": start, "end": end},
            pricing=({"type": "price_details", "price_details": {"price": price["id"],
                                                                 "product": price["product"]},
                      "unit_amount_decimal": format(unit, "f")} if price is not None else None),
            proration=proration, proration_details={"credited_items": None, "discount_amounts": []},
            quantity=quantity, quantity_decimal=str(quantity),
            tax_rates=[self.render(t) for t in self._tax_rates(tax_ids)], test_clock=None,
            _unit=format(unit, "f"), _subscription=subscription, _subscription_item=subscription_item)
        self._store("invoiceitem", item)
        self.emit("invoiceitem.created", item)
        if inv is not None:
            self._attach_item(inv, item)
            self.recompute(inv)
            self.emit("invoice.updated", inv, {"total": inv["total"]})
        return item

    def delete_invoice_item(self, obj_id: str) -> dict[str, Any]:
        item = self.get("invoiceitem", obj_id)
        if item["invoice"]:
            inv = self.get("invoice", item["invoice"])
            if inv["status"] != "draft":
                raise invalid("Invoice items on finalized invoices cannot be deleted.")
            inv["_lines"] = [line for line in inv["_lines"] if line.get("_item") != obj_id]
            self.recompute(inv)
        item["_deleted"] = True
        self.emit("invoiceitem.deleted", item)
        return {"id": obj_id, "object": "invoiceitem", "deleted": True}

    def _attach_item(self, inv: dict[str, Any], item: dict[str, Any]) -> None:
        item["invoice"] = inv["id"]
        line = self._line(inv, amount=item["amount"], description=item["description"],
                          quantity=item["quantity"], unit=item["_unit"],
                          price=item["pricing"]["price_details"]["price"] if item["pricing"] else None,
                          period=(item["period"]["start"], item["period"]["end"]),
                          proration=item["proration"], tax_rate_ids=[t["id"] for t in item["tax_rates"]])
        line["parent"] = {"type": "invoice_item_details", "subscription_item_details": None,
                          "invoice_item_details": {"invoice_item": item["id"],
                                                   "proration": item["proration"],
                                                   "proration_details": {"credited_items": None},
                                                   "subscription": item.get("_subscription")}}
        line["_item"] = item["id"]
        inv["_lines"].append(line)

    def _line(self, inv: Mapping[str, Any], *, amount: int, description: str | None, quantity: int,
              unit: str, price: str | None, period: tuple[int, int], proration: bool,
              tax_rate_ids: list[str]) -> dict[str, Any]:
        price_obj = self.table("price").get(price) if price else None
        return {"id": self.ids("il"), "object": "line_item", "amount": amount,
                "currency": inv["currency"], "description": description, "discount_amounts": [],
                "discountable": not proration, "discounts": [], "invoice": inv["id"],
                "livemode": False, "metadata": {}, "parent": None,
                "period": {"start": period[0], "end": period[1]}, "pretax_credit_amounts": [],
                "pricing": ({"type": "price_details",
                             "price_details": {"price": price, "product": price_obj["product"]},
                             "unit_amount_decimal": unit} if price_obj else None),
                "quantity": quantity, "subtotal": amount, "taxes": [], "_tax_rates": tax_rate_ids}

    def recompute(self, inv: dict[str, Any]) -> None:
        """Line taxes and invoice totals, rounded per line (half up), as Stripe computes them."""
        totals: dict[tuple[str, str], list[int]] = {}
        excl = incl = 0
        for line in inv["_lines"]:
            rate_ids = line["_tax_rates"] or [t["id"] for t in inv["default_tax_rates"]]
            taxes = []
            for rate in self._tax_rates(rate_ids):
                pct = Decimal(rate["_pct"])
                if rate["inclusive"]:
                    tax = _round(Decimal(line["amount"]) * pct / (100 + pct))
                    taxable, behavior = line["amount"] - tax, "inclusive"
                    incl += tax
                else:
                    tax = _round(Decimal(line["amount"]) * pct / 100)
                    taxable, behavior = line["amount"], "exclusive"
                    excl += tax
                taxes.append({"amount": tax, "tax_behavior": behavior,
                              "tax_rate_details": {"tax_rate": rate["id"]},
                              "taxability_reason": "standard_rated", "taxable_amount": taxable,
                              "type": "tax_rate_details"})
                agg = totals.setdefault((rate["id"], behavior), [0, 0])
                agg[0] += tax
                agg[1] += taxable
            line["taxes"] = taxes
        subtotal = sum(line["amount"] for line in inv["_lines"])
        total = subtotal + excl
        inv.update(subtotal=subtotal, subtotal_excluding_tax=subtotal - incl, total=total,
                   total_excluding_tax=subtotal - incl,
                   total_taxes=[{"amount": a, "tax_behavior": b,
                                 "tax_rate_details": {"tax_rate": rid},
                                 "taxability_reason": "standard_rated", "taxable_amount": t,
                                 "type": "tax_rate_details"} for (rid, b), (a, t) in totals.items()])
        due = max(total - inv["pre_payment_credit_notes_amount"], 0)
        inv["amount_due"] = due
        inv["amount_remaining"] = max(due - inv["amount_paid"], 0)

    def _next_number(self, cus: Mapping[str, Any]) -> str:
        prefix = str(cus["invoice_prefix"])
        self._number_seq[prefix] = self._number_seq.get(prefix, 0) + 1
        return f"{prefix}-{self._number_seq[prefix]:04d}"

    def finalize_invoice(self, obj_id: str) -> dict[str, Any]:
        inv = self.get("invoice", obj_id)
        if inv["status"] != "draft":
            raise invalid("This invoice is already finalized, you can't re-finalize a non-draft "
                          "invoice.", code="invoice_not_editable")
        now = self.now()
        previous = {"status": "draft", "number": None}
        inv["status"] = "open"
        inv["number"] = self._next_number(self.table("customer")[inv["customer"]])
        inv["status_transitions"]["finalized_at"] = now
        inv["effective_at"] = now
        inv["ending_balance"] = 0
        inv["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{inv['id']}"
        inv["invoice_pdf"] = f"https://pay.stripe.com/invoice/{inv['id']}/pdf"
        if inv["collection_method"] == "send_invoice" and inv["due_date"] is None:
            inv["due_date"] = now + 86400 * int(inv["_days_until_due"] or 30)
        self.recompute(inv)
        self.emit("invoice.finalized", inv, previous)
        if inv["amount_due"] == 0:
            self._mark_paid(inv)
        return inv

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
            if params.get("payment_method") in DECLINING_METHODS:
                self._decline(inv, str(params["payment_method"]))
            self.charge(inv["customer"], inv["amount_remaining"], inv["currency"], invoice=inv["id"])
        self._mark_paid(inv)
        return inv

    def _decline(self, inv: dict[str, Any], method: str) -> None:
        """A declined card, as Stripe answers it: a failed charge, a PaymentIntent waiting for a new
        payment method, ``invoice.payment_failed``, and a 402 ``card_declined`` card error. The
        invoice stays open for a retry."""
        pi = self.charge(inv["customer"], inv["amount_remaining"], inv["currency"], invoice=inv["id"],
                         emit=False)
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
        previous = {"attempted": inv["attempted"], "attempt_count": inv["attempt_count"]}
        inv["attempted"] = True
        inv["attempt_count"] += 1
        self.emit("charge.failed", ch)
        self.emit("payment_intent.payment_failed", pi)
        self.emit("invoice.payment_failed", inv, previous)
        raise StripeAPIError(402, "Your card was declined.", type_="card_error", code="card_declined")

    def _mark_paid(self, inv: dict[str, Any]) -> None:
        previous = {"status": inv["status"], "amount_paid": inv["amount_paid"]}
        inv["amount_paid"] = inv["amount_due"]
        inv["amount_remaining"] = 0
        inv["attempted"] = True
        inv["attempt_count"] = max(inv["attempt_count"], 1)
        inv["status"] = "paid"
        inv["status_transitions"]["paid_at"] = self.now()
        self.emit("invoice.paid", inv, previous)

    def transition(self, obj_id: str, target: str) -> dict[str, Any]:
        inv = self.get("invoice", obj_id)
        if inv["status"] != "open" and not (target == "void" and inv["status"] == "uncollectible"):
            raise invalid(f"You can only {'void' if target == 'void' else 'mark uncollectible'} an "
                          f"open invoice; this one is {inv['status']}.", code="invoice_not_editable")
        previous = {"status": inv["status"]}
        inv["status"] = target
        stamp = "voided_at" if target == "void" else "marked_uncollectible_at"
        inv["status_transitions"][stamp] = self.now()
        if target == "void":
            inv["amount_remaining"] = 0
        self.emit("invoice.voided" if target == "void" else "invoice.marked_uncollectible", inv,
                  previous)
        return inv

    # ------------------------------------------------------------------ payments

    def charge(self, customer: str, amount: int, currency: str, invoice: str | None = None,
               *, emit: bool = True) -> dict[str, Any]:
        """PaymentIntent + Charge + balance transaction for a successful card payment."""
        now = self.now()
        cus = self.table("customer").get(customer, {})
        rate = FX_TO_USD.get(currency, Decimal("1"))
        settled = _round(Decimal(amount).scaleb(-_exp(currency)) * rate * 100)
        fee = _round(Decimal(settled) * Decimal("0.029")) + 30
        pi_id, ch_id, txn_id = self.ids("pi"), self.ids("ch"), self.ids("txn")
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
                       payment_details={"customer_reference": None, "order_reference": invoice},
                       payment_method="pm_card_visa", payment_method_configuration_details=None,
                       payment_method_options=None, processing=None, receipt_email=None,
                       review=None, setup_future_usage=None, shipping=None, statement_descriptor=None,
                       statement_descriptor_suffix=None, status="succeeded", transfer_data=None,
                       transfer_group=None)
        self._store("balance_transaction", txn)
        self._store("charge", ch)
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
        settled = -_round(Decimal(original["amount"]) * amount / ch["amount"])
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

    # ------------------------------------------------------------------ credit notes

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
                    part = _round(Decimal(tax["amount"]) * amount / src["amount"]) if src["amount"] else 0
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

    # ------------------------------------------------------------------ subscriptions

    def _sub_item(self, sub_id: str, spec: Mapping[str, Any], start: int, end: int) -> dict[str, Any]:
        price = self.get("price", str(spec.get("price") or ""), "price")
        if price["type"] != "recurring":
            raise invalid(f"The price specified ({price['id']}) is not a recurring price.",
                          "items[price]")
        return self.base("si", "subscription_item", billing_thresholds=None,
                         current_period_end=end, current_period_start=start, discounts=[],
                         metadata=merge_metadata({}, spec.get("metadata")), price=self.render(price),
                         quantity=as_int(spec, "quantity", 1), subscription=sub_id,
                         tax_rates=[self.render(t) for t in self._tax_rates(spec.get("tax_rates"))])

    def create_subscription(self, params: Params) -> dict[str, Any]:
        check_known(params, ("customer", "items", "metadata", "proration_behavior", "collection_method",
                             "days_until_due", "default_tax_rates", "currency", "description",
                             "payment_behavior", "cancel_at_period_end", "billing_cycle_anchor",
                             "off_session", "default_payment_method", "trial_period_days"))
        cus = self.get("customer", str(params.get("customer") or ""), "customer")
        specs = as_list(params.get("items"))
        if not specs:
            raise invalid("Missing required param: items.", "items", code="parameter_missing")
        now = self.now()
        first = self.get("price", str(specs[0].get("price") or ""), "price")
        if first["type"] != "recurring":
            raise invalid(f"The price specified ({first['id']}) is not a recurring price.", "items[0][price]")
        end = add_interval(now, first["recurring"]["interval"], first["recurring"]["interval_count"])
        sub_id = self.ids("sub")
        items = [self._sub_item(sub_id, spec, now, end) for spec in specs]
        if len({i["price"]["currency"] for i in items}) != 1:
            raise invalid("All prices on a subscription must have the same currency.", "items")
        method = params.get("collection_method") or "charge_automatically"
        sub = self.base(
            "sub", "subscription", id=sub_id, application=None,
            automatic_tax={"enabled": False, "disabled_reason": None, "liability": None},
            billing_cycle_anchor=now, billing_cycle_anchor_config=None, billing_mode={"type": "classic"},
            billing_schedules=[], billing_thresholds=None, cancel_at=None,
            cancel_at_period_end=as_bool(params, "cancel_at_period_end", False), canceled_at=None,
            cancellation_details=None, collection_method=method, currency=items[0]["price"]["currency"],
            customer=cus["id"], days_until_due=as_int(params, "days_until_due"),
            default_payment_method=None, default_source=None,
            default_tax_rates=[self.render(t) for t in self._tax_rates(params.get("default_tax_rates"))],
            description=params.get("description") or None, discounts=[], ended_at=None,
            invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}},
            items={"object": "list", "data": items, "has_more": False,
                   "url": f"/v1/subscription_items?subscription={sub_id}"},
            latest_invoice=None, metadata=merge_metadata({}, params.get("metadata")),
            next_pending_invoice_item_invoice=None, on_behalf_of=None, pause_collection=None,
            payment_settings=None, pending_invoice_item_interval=None, pending_setup_intent=None,
            pending_update=None, schedule=None, start_date=now, status="active", test_clock=None,
            transfer_data=None, trial_end=None, trial_settings=None, trial_start=None)
        self._store("subscription", sub)
        self.emit("customer.subscription.created", sub)
        self._cycle_invoice(sub, "subscription_create", now, end)
        return self.render(sub)

    def list_subscriptions(self, params: Params) -> dict[str, Any]:
        status = params.get("status") or "active_or_trialing"
        items = self.live("subscription")
        if status not in ("all",):
            if status == "active_or_trialing":
                items = [s for s in items if s["status"] in ("active", "trialing", "past_due")]
            else:
                items = [s for s in items if s["status"] == status]
        if params.get("customer"):
            items = [s for s in items if s["customer"] == params["customer"]]
        if params.get("price"):
            items = [s for s in items if any(i["price"]["id"] == params["price"]
                                             for i in s["items"]["data"])]
        check = created_filter(params)
        envelope = paginate([s for s in items if check(s)], params, "/v1/subscriptions")
        envelope["data"] = [self.render(o) for o in envelope["data"]]
        return envelope

    def _cycle_invoice(self, sub: dict[str, Any], reason: str, start: int, end: int) -> dict[str, Any]:
        inv = self.create_invoice({"customer": sub["customer"], "currency": sub["currency"],
                                   "collection_method": sub["collection_method"],
                                   "days_until_due": sub["days_until_due"] or (
                                       30 if sub["collection_method"] == "send_invoice" else None),
                                   "default_tax_rates": [t["id"] for t in sub["default_tax_rates"]]},
                                  billing_reason=reason, subscription=sub, period=(start, end))
        for item in sub["items"]["data"]:
            price = item["price"]
            line = self._line(inv, amount=_round(Decimal(price["unit_amount_decimal"]) * item["quantity"]),
                              description=f"{item['quantity']} × {self._product_name(price)}",
                              quantity=item["quantity"], unit=price["unit_amount_decimal"],
                              price=price["id"], period=(start, end), proration=False,
                              tax_rate_ids=[t["id"] for t in item["tax_rates"]])
            line["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                              "subscription_item_details": {"invoice_item": None, "proration": False,
                                                            "proration_details": {"credited_items": None},
                                                            "subscription": sub["id"],
                                                            "subscription_item": item["id"]}}
            line["subscription"] = sub["id"]
            inv["_lines"].append(line)
        self.recompute(inv)
        self._finalize_and_collect(sub, inv)
        return inv

    def _finalize_and_collect(self, sub: dict[str, Any], inv: dict[str, Any]) -> None:
        self.finalize_invoice(inv["id"])
        if sub["collection_method"] == "charge_automatically" and inv["status"] == "open":
            self.pay_invoice(inv["id"], {})
        sub["latest_invoice"] = inv["id"]

    def update_subscription(self, sub_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("items", "metadata", "proration_behavior", "cancel_at_period_end",
                             "default_tax_rates", "description", "collection_method", "days_until_due",
                             "payment_behavior", "proration_date", "cancel_at", "off_session"))
        sub = self.get("subscription", sub_id)
        if sub["status"] == "canceled":
            raise invalid("A canceled subscription can only update its cancellation_details and "
                          "metadata.")
        behavior = params.get("proration_behavior") or "create_prorations"
        if behavior not in ("create_prorations", "none", "always_invoice"):
            raise invalid("Invalid proration_behavior", "proration_behavior")
        now = as_int(params, "proration_date", self.now()) or self.now()
        previous: dict[str, Any] = {}
        changes: dict[str, Any] = {}
        if "metadata" in params:
            changes["metadata"] = merge_metadata(sub["metadata"], params["metadata"])
        if "cancel_at_period_end" in params:
            changes["cancel_at_period_end"] = as_bool(params, "cancel_at_period_end")
        if "description" in params:
            changes["description"] = params["description"] or None
        prorations: list[tuple[dict[str, Any], int, str, dict[str, Any] | None]] = []
        specs = as_list(params.get("items"))
        if specs:
            previous["items"] = copy.deepcopy(sub["items"])
            items = {i["id"]: i for i in sub["items"]["data"]}
            start = sub["items"]["data"][0]["current_period_start"]
            end = sub["items"]["data"][0]["current_period_end"]
            fraction = Decimal(max(end - now, 0)) / Decimal(max(end - start, 1))
            for spec in specs:
                old = items.get(str(spec.get("id"))) if spec.get("id") else None
                if spec.get("id") and old is None:
                    raise missing("subscription item", str(spec["id"]), "items[id]")
                if old is not None:
                    old_total = Decimal(old["price"]["unit_amount_decimal"]) * (old["quantity"] or 1)
                    prorations.append((old, -_round(old_total * fraction), "Unused time on", None))
                    if as_bool(spec, "deleted", False):
                        del items[old["id"]]
                        continue
                    new = copy.deepcopy(old)
                    if spec.get("price"):
                        price = self.get("price", str(spec["price"]), "price")
                        new["price"] = self.render(price)
                    if spec.get("quantity") not in (None, ""):
                        new["quantity"] = as_int(spec, "quantity")
                    items[old["id"]] = new
                else:
                    new = self._sub_item(sub_id, spec, start, end)
                    items[new["id"]] = new
                new_total = Decimal(new["price"]["unit_amount_decimal"]) * (new["quantity"] or 1)
                prorations.append((new, _round(new_total * fraction), "Remaining time on", new))
            if not items:
                raise invalid("A subscription must have at least one item.", "items")
            changes["items"] = {**sub["items"], "data": list(items.values())}
        for key, value in changes.items():
            if sub.get(key) != value and key not in previous:
                previous[key] = copy.deepcopy(sub.get(key))
        sub.update(changes)
        if previous:
            self.emit("customer.subscription.updated", sub, previous)
        if behavior != "none" and prorations:
            end = sub["items"]["data"][0]["current_period_end"]
            created = []
            for item, amount, label, _new in prorations:
                if amount == 0:
                    continue
                price = item["price"]
                desc = f"{label} {item['quantity']} × {self._product_name(price)} after " \
                       f"{datetime.fromtimestamp(now, UTC):%d %b %Y}"
                ii = self.create_invoice_item(
                    {"customer": sub["customer"], "amount": amount, "currency": sub["currency"],
                     "description": desc, "quantity": item["quantity"],
                     "tax_rates": [t["id"] for t in item["tax_rates"]]},
                    proration=True, subscription=sub["id"], subscription_item=item["id"],
                    period=(now, end))
                ii["pricing"] = {"type": "price_details",
                                 "price_details": {"price": price["id"], "product": price["product"]},
                                 "unit_amount_decimal": price["unit_amount_decimal"]}
                created.append(ii)
            if behavior == "always_invoice" and created:
                inv = self.create_invoice({"customer": sub["customer"], "currency": sub["currency"],
                                           "collection_method": sub["collection_method"],
                                           "days_until_due": sub["days_until_due"] or (
                                               30 if sub["collection_method"] == "send_invoice" else None),
                                           "default_tax_rates": [t["id"] for t in sub["default_tax_rates"]]},
                                          billing_reason="subscription_update", subscription=sub,
                                          period=(now, now))
                self._finalize_and_collect(sub, inv)
        return self.render(sub)

    def cancel_subscription(self, sub_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("invoice_now", "prorate", "cancellation_details"))
        sub = self.get("subscription", sub_id)
        if sub["status"] == "canceled":
            raise invalid("This subscription has already been canceled.")
        previous = {"status": sub["status"], "canceled_at": None, "ended_at": None}
        now = self.now()
        sub.update(status="canceled", canceled_at=now, ended_at=now,
                   cancellation_details={"comment": None, "feedback": None,
                                         "reason": "cancellation_requested"})
        self.emit("customer.subscription.deleted", sub, previous)
        return self.render(sub)

    def renew_subscriptions(self) -> list[str]:
        """Issue the renewal invoices of every period that ended by the emulator's clock."""
        issued = []
        now = self.now()
        for sub in list(self.table("subscription").values()):
            while sub["status"] == "active":
                items = sub["items"]["data"]
                end = items[0]["current_period_end"]
                if end > now:
                    break
                if sub["cancel_at_period_end"]:
                    previous = {"status": "active"}
                    sub.update(status="canceled", canceled_at=end, ended_at=end)
                    self.emit("customer.subscription.deleted", sub, previous)
                    break
                rec = items[0]["price"]["recurring"]
                new_end = add_interval(end, rec["interval"], rec["interval_count"])
                previous = {"items": copy.deepcopy(sub["items"])}
                for item in items:
                    item["current_period_start"], item["current_period_end"] = end, new_end
                self.emit("customer.subscription.updated", sub, previous)
                issued.append(self._cycle_invoice(sub, "subscription_cycle", end, new_end)["id"])
        return issued

