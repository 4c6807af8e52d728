"""The Stripe emulator's invoices: drafts and their items, lines and tax maths, finalising
(numbering, due dates), collection (paid, declined, out of band), void and uncollectible.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.balances import CustomerBalanceMixin
from connectors.stripe.emulator.coupons import CouponsMixin
from connectors.stripe.emulator.money import round_half_up
from connectors.stripe.emulator.payments import PaymentsMixin
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import (
    as_bool,
    as_int,
    check_known,
    invalid,
    merge_metadata,
    paginate,
)


class InvoicesMixin(PaymentsMixin, CouponsMixin, CustomerBalanceMixin):
    """Invoices and invoice items; paying one charges through the payments part, discounts
    through the coupons part, the customer's balance applies at finalization."""

    request_api_version: str | None = None  # the API version of the request being served

    def create_invoice(self, params: Params, *, billing_reason: str = "manual",
                       subscription: Mapping[str, Any] | None = None,
                       period: tuple[int, int] | None = None,
                       discount_ids: list[str] | None = None) -> dict[str, Any]:
        check_known(params, ("customer", "currency", "collection_method", "days_until_due", "due_date",
                             "auto_advance", "default_tax_rates", "description", "metadata",
                             "pending_invoice_items_behavior", "footer", "subscription",
                             "automatic_tax", "discounts", "default_payment_method"))
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
            customer_tax_exempt=cus["tax_exempt"], customer_tax_ids=[],
            default_payment_method=params.get("default_payment_method") or None,
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
        if discount_ids is not None:  # a subscription's cycle: its discounts, already redeemed
            inv["discounts"] = list(discount_ids)
        elif "discounts" in params:
            inv["discounts"] = self.redeem(params["discounts"], "discounts", customer=cus["id"],
                                           currency=inv["currency"], invoice=inv["id"])
        if subscription is not None:
            inv["parent"] = {"type": "subscription_details", "quote_details": None,
                             "subscription_details": {"metadata": dict(subscription["metadata"]),
                                                      "subscription": subscription["id"]}}
        self.enable_automatic_tax(inv, params.get("automatic_tax"))
        self._store("invoice", inv)
        # Pending invoice items (made with the customer, no invoice): a subscription's invoice
        # takes the customer's untagged ones and its own (prorations); a one-off invoice only
        # with ``include`` (the default before API version 2022-08-01, ``exclude`` since), and with
        # ``subscription`` only that subscription's
        wanted = subscription["id"] if subscription is not None else params.get("subscription") or None
        behavior = params.get("pending_invoice_items_behavior") or (
            "include" if (self.request_api_version or "9")[:10] < "2022-08-01" else "exclude")
        if behavior == "include" or subscription is not None:
            for item in list(self.live("invoiceitem"))[::-1]:
                tag = item.get("_subscription")
                ours = tag == wanted if wanted and params.get("subscription") else tag in (None, wanted)
                if item["customer"] == cus["id"] and item["invoice"] is None and ours:
                    self._attach_item(inv, item)
        self.recompute(inv)
        self.emit("invoice.created", inv)
        return self.render(inv) if subscription is None and billing_reason == "manual" else inv

    def update_invoice(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("metadata", "description", "footer", "auto_advance", "days_until_due",
                             "due_date", "default_tax_rates", "collection_method", "discounts"))
        inv = self.get("invoice", obj_id)
        changes: dict[str, Any] = {}
        if "discounts" in params:
            if inv["status"] != "draft":
                raise invalid("You can only update discounts on a draft invoice.", "discounts",
                              code="invoice_not_editable")
            changes["discounts"] = self.redeem(params["discounts"], "discounts", customer=inv["customer"],
                                               currency=inv["currency"], invoice=inv["id"],
                                               reusable=inv["discounts"])
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
                             "price_data", "discounts"))
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
            amount = round_half_up(unit * quantity)
        elif params.get("amount") not in (None, ""):
            amount = as_int(params, "amount") or 0
            unit = Decimal(amount) / quantity
        elif params.get("unit_amount") not in (None, "") or params.get("unit_amount_decimal"):
            unit = Decimal(str(params.get("unit_amount") or params.get("unit_amount_decimal")))
            amount = round_half_up(unit * quantity)
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
        # Stripe: prorations never take discounts; negative items by default not (since 2015-03-24)
        discountable = False if proration else as_bool(params, "discountable", amount >= 0)
        item = self.base(
            "ii", "invoiceitem", amount=amount, currency=currency, customer=cus["id"], date=now,
            description=params.get("description") or (price and self._product_name(price)) or None,
            discountable=discountable, discounts=[], invoice=None,
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
        if params.get("discounts"):
            item["discounts"] = self.redeem(params["discounts"], "discounts", customer=cus["id"],
                                            currency=currency, invoice_item=item["id"])
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
        line["discountable"], line["discounts"] = item["discountable"], list(item["discounts"])
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
        """Discounts, then line taxes on the discounted amounts, then invoice totals, rounded per
        line (half up), as Stripe computes them."""
        self.discount_lines(inv["_lines"], inv["discounts"], inv["currency"])
        totals: dict[tuple[str, str, str], list[int]] = {}
        excl = incl = 0
        by_discount: dict[str, int] = {}
        item_discounts = 0
        for line in inv["_lines"]:
            for part in line["discount_amounts"]:
                by_discount[part["discount"]] = by_discount.get(part["discount"], 0) + part["amount"]
                if part["discount"] in line["discounts"]:
                    item_discounts += part["amount"]
            base = line["amount"] - sum(part["amount"] for part in line["discount_amounts"])
            taxes = self.line_taxes(inv, line, base)
            for part in taxes:
                if part["tax_behavior"] == "inclusive":
                    incl += part["amount"]
                else:
                    excl += part["amount"]
                agg = totals.setdefault((part["tax_rate_details"]["tax_rate"], part["tax_behavior"],
                                         part["taxability_reason"]), [0, 0])
                agg[0] += part["amount"]
                agg[1] += part["taxable_amount"]
            line["taxes"] = taxes
        gross = sum(line["amount"] for line in inv["_lines"])
        discounted = sum(by_discount.values())
        # ``subtotal`` has item discounts in it, ``total`` every discount (Stripe's definitions)
        subtotal = gross - item_discounts
        total = gross - discounted + excl
        inv.update(subtotal=subtotal, subtotal_excluding_tax=subtotal - incl, total=total,
                   total_excluding_tax=gross - discounted - incl,
                   total_discount_amounts=[{"amount": a, "discount": d} for d, a in by_discount.items()],
                   total_taxes=[{"amount": a, "tax_behavior": b,
                                 "tax_rate_details": {"tax_rate": rid},
                                 "taxability_reason": why, "taxable_amount": t,
                                 "type": "tax_rate_details"} for (rid, b, why), (a, t) in totals.items()])
        # the customer balance applied at finalization: a credit (< 0) lowers it, a debit raises it
        due = max(total - inv["pre_payment_credit_notes_amount"] + inv.get("_balance_applied", 0), 0)
        inv["amount_due"] = due
        inv["amount_remaining"] = max(due - inv["amount_paid"], 0)

    def line_taxes(self, inv: Mapping[str, Any], line: Mapping[str, Any], base: int) -> list[dict[str, Any]]:
        """A line's taxes on its discounted amount ``base``: its tax rates (or the invoice's
        defaults), each rounded half up; ``auto_tax`` computes them when automatic tax is on."""
        rate_ids = line["_tax_rates"] or [t["id"] for t in inv["default_tax_rates"]]
        taxes = []
        for rate in self._tax_rates(rate_ids):
            pct = Decimal(rate["_pct"])
            if rate["inclusive"]:
                tax = round_half_up(Decimal(base) * pct / (100 + pct))
                taxable, behavior = base - tax, "inclusive"
            else:
                tax = round_half_up(Decimal(base) * pct / 100)
                taxable, behavior = base, "exclusive"
            # Stripe computes no reason for a manual tax rate: only Stripe Tax (or manual tax
            # amounts) give one
            taxes.append({"amount": tax, "tax_behavior": behavior, "tax_rate_details": {"tax_rate": rate["id"]},
                          "taxability_reason": "not_available", "taxable_amount": taxable,
                          "type": "tax_rate_details"})
        return taxes

    def enable_automatic_tax(self, inv: dict[str, Any], spec: Any) -> None:
        """``automatic_tax[enabled]`` on a create: only ``auto_tax`` computes it (refused here)."""
        if isinstance(spec, Mapping) and as_bool(spec, "enabled", False):
            raise invalid("Automatic tax is not modelled.", "automatic_tax[enabled]")

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
        self.apply_customer_balance(inv)  # starting_balance, ending_balance
        inv["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{inv['id']}"
        inv["invoice_pdf"] = f"https://pay.stripe.com/invoice/{inv['id']}/pdf"
        if inv["collection_method"] == "send_invoice" and inv["due_date"] is None:
            inv["due_date"] = now + 86400 * int(inv["_days_until_due"] or 30)
        self.recompute(inv)
        self.emit("invoice.finalized", inv, previous)
        if inv["amount_due"] == 0:
            self._mark_paid(inv)
        return inv

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
            self.unapply_customer_balance(inv)
        self.emit("invoice.voided" if target == "void" else "invoice.marked_uncollectible", inv,
                  previous)
        return inv
