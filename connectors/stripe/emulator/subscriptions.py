"""The Stripe emulator's subscriptions: creation with the first cycle's invoice (from a billing
cycle anchor, ``anchors.py``), item changes with proration, cancellation, and renewals when the
clock passes a period's end; metered prices billed in arrears from their meter's events; each
invoice collected by ``collection.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.anchors import add_interval, billing_anchor
from connectors.stripe.emulator.auto_tax import AutomaticTaxMixin
from connectors.stripe.emulator.collection import CollectionMixin
from connectors.stripe.emulator.meters import MetersMixin
from connectors.stripe.emulator.money import round_half_up
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import (
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


def _prorated_total(item: Mapping[str, Any]) -> Decimal:
    """What a change prorates of an item's period: a metered item none (its usage is billed at
    the period's end whatever changed, as Stripe bills it)."""
    if item["price"]["recurring"].get("usage_type") == "metered":
        return Decimal(0)
    return Decimal(item["price"]["unit_amount_decimal"]) * (item["quantity"] or 1)


class SubscriptionsMixin(CollectionMixin, MetersMixin, AutomaticTaxMixin):
    """Subscriptions and their billing cycles, each cycle invoiced through the invoices part."""

    def _sub_item(self, sub_id: str, spec: Mapping[str, Any], start: int, end: int) -> dict[str, Any]:
        price = self.get("price", str(spec.get("price") or ""), "price")
        if price["type"] != "recurring":
            raise invalid(f"The price specified ({price['id']}) is not a recurring price.",
                          "items[price]")
        if price["recurring"].get("usage_type") == "metered" and spec.get("quantity") not in (None, ""):
            raise invalid("Quantity should not be specified where usage_type is `metered`. Remove "
                          "quantity from the request.", "items[quantity]")
        return self.base("si", "subscription_item", billing_thresholds=None,
                         current_period_end=end, current_period_start=start, discounts=[],
                         metadata=merge_metadata({}, spec.get("metadata")), price=self.render(price),
                         quantity=as_int(spec, "quantity", 1), subscription=sub_id,
                         tax_rates=[self.render(t) for t in self._tax_rates(spec.get("tax_rates"))])

    def create_subscription(self, params: Params) -> dict[str, Any]:
        check_known(params, ("customer", "items", "metadata", "proration_behavior", "collection_method",
                             "days_until_due", "default_tax_rates", "currency", "description",
                             "payment_behavior", "cancel_at_period_end", "billing_cycle_anchor",
                             "billing_cycle_anchor_config", "automatic_tax", "off_session",
                             "default_payment_method", "trial_period_days", "discounts"))
        cus = self.get("customer", str(params.get("customer") or ""), "customer")
        specs = as_list(params.get("items"))
        if not specs:
            raise invalid("Missing required param: items.", "items", code="parameter_missing")
        now = self.now()
        first = self.get("price", str(specs[0].get("price") or ""), "price")
        if first["type"] != "recurring":
            raise invalid(f"The price specified ({first['id']}) is not a recurring price.", "items[0][price]")
        rec = first["recurring"]
        anchor, config = billing_anchor(params, now, rec["interval"], rec["interval_count"])
        end = anchor if anchor > now else add_interval(now, rec["interval"], rec["interval_count"])
        sub_id = self.ids("sub")
        items = [self._sub_item(sub_id, spec, now, end) for spec in specs]
        if len({i["price"]["currency"] for i in items}) != 1:
            raise invalid("All prices on a subscription must have the same currency.", "items")
        method = params.get("collection_method") or "charge_automatically"
        behavior = params.get("payment_behavior") or "allow_incomplete"
        if behavior not in ("allow_incomplete", "default_incomplete", "error_if_incomplete",
                            "pending_if_incomplete"):
            raise invalid("Invalid payment_behavior", "payment_behavior")
        auto_tax: Mapping[str, Any] = params["automatic_tax"] if isinstance(params.get("automatic_tax"), dict) else {}
        taxed = bool(as_bool(auto_tax, "enabled", False))
        if taxed and self.tax_location(cus) is None:
            raise StripeAPIError(400, "The customer's location isn't recognized. Automatic tax requires "
                                 "a valid address to calculate tax.", code="customer_tax_location_invalid",
                                 param="customer")
        sub = self.base(
            "sub", "subscription", id=sub_id, application=None,
            automatic_tax={"enabled": taxed, "disabled_reason": None,
                           "liability": {"type": "self"} if taxed else None},
            billing_cycle_anchor=anchor, billing_cycle_anchor_config=config, billing_mode={"type": "classic"},
            billing_schedules=[], billing_thresholds=None, cancel_at=None,
            cancel_at_period_end=as_bool(params, "cancel_at_period_end", False), canceled_at=None,
            cancellation_details=None, collection_method=method, currency=items[0]["price"]["currency"],
            customer=cus["id"], days_until_due=as_int(params, "days_until_due"),
            default_payment_method=self._own_method(cus["id"], params.get("default_payment_method")),
            default_source=None,
            default_tax_rates=[self.render(t) for t in self._tax_rates(params.get("default_tax_rates"))],
            description=params.get("description") or None, discounts=[], ended_at=None,
            invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}},
            items={"object": "list", "data": items, "has_more": False,
                   "url": f"/v1/subscription_items?subscription={sub_id}"},
            latest_invoice=None, metadata=merge_metadata({}, params.get("metadata")),
            next_pending_invoice_item_invoice=None, on_behalf_of=None, pause_collection=None,
            payment_settings=None, pending_invoice_item_interval=None, pending_setup_intent=None,
            pending_update=None, schedule=None, start_date=now, status="active", test_clock=None,
            transfer_data=None, trial_end=None, trial_settings=None, trial_start=None, _cycles=0,
            _behavior=behavior)
        sub["discounts"] = self.redeem(params.get("discounts"), "discounts", customer=cus["id"],
                                       currency=sub["currency"], subscription=sub_id)
        self._store("subscription", sub)
        # Stripe creates the first invoice with the subscription: its created event already names
        # it (``latest_invoice``), so it is recorded once the invoice exists, not before
        prorated = anchor > now and params.get("proration_behavior") != "none"
        # a later anchor: the first invoice bills now..anchor, prorated (or nothing with "none")
        share = (Decimal(anchor - now) / Decimal(anchor - add_interval(anchor, rec["interval"], -rec["interval_count"]))
                 if anchor > now else Decimal(1))
        self._cycle_invoice(sub, "subscription_create", now, end,
                            share=share if prorated or anchor == now else Decimal(0))
        self.emit("customer.subscription.created", sub)
        return self.render(sub)

    def list_subscriptions(self, params: Params) -> dict[str, Any]:
        # Stripe (spec3): without ``status`` every subscription not canceled; ``all`` every one
        status = params.get("status") or ""
        items = self.live("subscription")
        if status == "":
            items = [s for s in items if s["status"] != "canceled"]
        elif status != "all":
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

    def _cycle_invoice(self, sub: dict[str, Any], reason: str, start: int, end: int, *,
                       share: Decimal = Decimal(1), usage: tuple[int, int] | None = None) -> dict[str, Any]:
        """A cycle's invoice: licensed items for ``start..end`` (``share`` of a full period when
        the first one is short of an anchor), metered items in arrears: their usage over
        ``usage`` (the period that just ended; none on the first invoice), as Stripe bills them."""
        inv = self.create_invoice({"customer": sub["customer"], "currency": sub["currency"],
                                   "collection_method": sub["collection_method"],
                                   "days_until_due": sub["days_until_due"] or (
                                       30 if sub["collection_method"] == "send_invoice" else None),
                                   "default_tax_rates": [t["id"] for t in sub["default_tax_rates"]],
                                   "automatic_tax": {"enabled": "true" if sub["automatic_tax"]["enabled"] else "false"}},
                                  billing_reason=reason, subscription=sub, period=(start, end),
                                  discount_ids=self.cycle_discounts(sub, start))
        for item in sub["items"]["data"]:
            price = item["price"]
            unit = Decimal(price["unit_amount_decimal"])
            if price["recurring"].get("usage_type") == "metered":
                used = self.metered_usage(price, sub["customer"], *usage) if usage else Decimal(0)
                quantity, amount, period = int(used), round_half_up(unit * used), usage or (start, end)
                description = f"{format(used.normalize(), 'f')} × {self._product_name(price)} " \
                              f"(at {price['unit_amount_decimal']} / {price['recurring']['interval']})"
            else:
                quantity, amount, period = item["quantity"], round_half_up(unit * item["quantity"] * share), (start, end)
                description = f"{item['quantity']} × {self._product_name(price)}"
                if share != 1:
                    description = f"Remaining time on {description} until the billing cycle anchor"
            line = self._line(inv, amount=amount, description=description, quantity=quantity,
                              unit=price["unit_amount_decimal"], price=price["id"], period=period,
                              proration=share != 1, tax_rate_ids=[t["id"] for t in item["tax_rates"]])
            line["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                              "subscription_item_details": {"invoice_item": None, "proration": share != 1,
                                                            "proration_details": {"credited_items": None},
                                                            "subscription": sub["id"],
                                                            "subscription_item": item["id"]}}
            line["subscription"] = sub["id"]
            inv["_lines"].append(line)
        self.recompute(inv)
        self._finalize_and_collect(sub, inv)
        return inv

    def _finalize_and_collect(self, sub: dict[str, Any], inv: dict[str, Any]) -> None:
        """Finalize and charge (``collection.py``); not paid, the subscription is ``incomplete``
        (its first invoice) or ``past_due`` (a later one), as Stripe's ``allow_incomplete``."""
        self.finalize_invoice(inv["id"])
        sub["latest_invoice"] = inv["id"]
        if sub["collection_method"] != "charge_automatically" or inv["status"] != "open":
            return
        if sub.get("_behavior") == "default_incomplete" and inv["billing_reason"] == "subscription_create":
            sub["status"] = "incomplete"  # its PaymentIntent waits for the client to confirm it
            self.open_intent(inv)
            return
        if not self.collect_automatically(inv):
            status = "incomplete" if inv["billing_reason"] == "subscription_create" else "past_due"
            if sub["status"] in ("active", "incomplete"):
                self._sub_status(sub, status)

    def _own_method(self, customer: str, method: Any) -> str | None:
        """A subscription's ``default_payment_method``: the customer's own (400 otherwise)."""
        if not method:
            return None
        pm = self.table("payment_method").get(str(method))
        if pm is None or pm.get("customer") != customer:
            raise invalid(f"The customer does not have a payment method with the ID {method}. The "
                          "payment method must be attached to the customer.", "default_payment_method")
        return str(method)

    def update_subscription(self, sub_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("items", "metadata", "proration_behavior", "cancel_at_period_end",
                             "default_tax_rates", "description", "collection_method", "days_until_due",
                             "payment_behavior", "proration_date", "cancel_at", "off_session", "discounts"))
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
        if "discounts" in params:
            changes["discounts"] = self.redeem(params["discounts"], "discounts", customer=sub["customer"],
                                               currency=sub["currency"], subscription=sub_id,
                                               reusable=sub["discounts"])
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
                    old_total = _prorated_total(old)
                    prorations.append((old, -round_half_up(old_total * fraction), "Unused time on", None))
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
                new_total = _prorated_total(new)
                prorations.append((new, round_half_up(new_total * fraction), "Remaining time on", new))
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
        """Issue the renewal invoices of every period that ended by the emulator's clock (a
        ``past_due`` subscription keeps being invoiced, as Stripe's), then the payment retries
        due. Periods are counted from the billing cycle anchor, so a month-end anchor keeps its
        day (Jan 31, Feb 28, Mar 31) and subscriptions sharing an anchor renew together."""
        issued = []
        now = self.now()
        for sub in list(self.table("subscription").values()):
            while sub["status"] in ("active", "past_due"):
                items = sub["items"]["data"]
                start, end = items[0]["current_period_start"], items[0]["current_period_end"]
                if end > now:
                    break
                if sub["cancel_at_period_end"]:
                    previous = {"status": sub["status"]}
                    sub.update(status="canceled", canceled_at=end, ended_at=end)
                    self.emit("customer.subscription.deleted", sub, previous)
                    break
                rec = items[0]["price"]["recurring"]
                sub["_cycles"] = sub.get("_cycles", 0) + 1
                full = sub["_cycles"] + (0 if sub["billing_cycle_anchor"] > sub["start_date"] else 1)
                new_end = add_interval(sub["billing_cycle_anchor"], rec["interval"], rec["interval_count"] * full)
                previous = {"items": copy.deepcopy(sub["items"])}
                for item in items:
                    item["current_period_start"], item["current_period_end"] = end, new_end
                self.emit("customer.subscription.updated", sub, previous)
                issued.append(self._cycle_invoice(sub, "subscription_cycle", end, new_end,
                                                  usage=(start, end))["id"])
        self.retry_payments()
        return issued
