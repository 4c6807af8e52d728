"""The Stripe emulator's coupons, promotion codes and the discounts they are redeemed into, and
the discount step of an invoice's maths (before tax).

What Stripe documents (API reference, version 2026-10-28): a coupon is ``percent_off`` or
``amount_off`` + ``currency``; ``duration`` once / repeating (``duration_in_months``) / forever;
``max_redemptions`` and ``redeem_by`` make it invalid once reached; ``applies_to.products``
narrows it to lines of those products. A promotion code wraps a coupon (``promotion[type]=coupon``,
``promotion[coupon]``) with its own code, activity, expiry, redemption cap and restrictions.
Redeeming either (``discounts=[{coupon|promotion_code|discount}]`` on an invoice, an invoice item
or a subscription) makes a Discount (``di_…``), which the object lists by id. Line discounts
apply before invoice discounts; a line that is not ``discountable`` (prorations, negative items)
takes no discount; tax is computed on the line amount after its discounts; ``subtotal`` has item
discounts incorporated, ``total`` every discount.

Emulator choices (Stripe does not document its rounding): a percentage is taken of each line's
amount left after the discounts before it, rounded half up per line; an amount off is spread over
the eligible lines in proportion to what is left of each, shares floored and the remaining minor
units given to the largest remainders (the earlier line on a tie), so the shares sum exactly to
the amount off (capped at what is left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.stripe.emulator.money import round_half_up
from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import (
    StripeAPIError,
    as_bool,
    as_int,
    as_list,
    check_known,
    invalid,
    merge_metadata,
)

COUPON_PARAMS = ("id", "amount_off", "currency", "currency_options", "duration", "duration_in_months",
                 "max_redemptions", "metadata", "name", "percent_off", "redeem_by", "applies_to")
PROMOTION_PARAMS = ("promotion", "code", "active", "customer", "customer_account", "expires_at",
                    "max_redemptions", "metadata", "restrictions")


def no_such(kind: str, obj_id: str, param: str) -> StripeAPIError:
    """A parameter naming an object that does not exist: 400 ``resource_missing`` (a path id is 404)."""
    return StripeAPIError(400, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


class CouponsMixin(StripeStore):
    """Coupons, promotion codes, discounts and their allocation to invoice lines."""

    # ------------------------------------------------------------------ coupons

    def create_coupon(self, params: Params) -> dict[str, Any]:
        check_known(params, COUPON_PARAMS)
        amount_off = as_int(params, "amount_off")
        pct_text = params.get("percent_off")
        if (amount_off is None) == (pct_text in (None, "")):
            raise invalid("You must pass exactly one of percent_off or amount_off.", "percent_off")
        pct: Decimal | None = None
        if pct_text not in (None, ""):
            try:
                pct = Decimal(str(pct_text))
            except InvalidOperation:
                raise invalid(f"Invalid decimal: {pct_text}", "percent_off") from None
            if not 0 < pct <= 100:
                raise invalid("percent_off must be greater than 0 and at most 100.", "percent_off")
        currency = str(params.get("currency") or "").lower() or None
        if amount_off is not None:
            if amount_off <= 0:
                raise invalid("amount_off must be a positive integer.", "amount_off")
            if currency is None:
                raise invalid("You must pass currency when passing amount_off.", "currency",
                              code="parameter_missing")
        duration = params.get("duration") or "once"
        if duration not in ("once", "repeating", "forever"):
            raise invalid("Invalid duration: must be one of forever, once, or repeating", "duration")
        months = as_int(params, "duration_in_months")
        if duration == "repeating" and (months is None or months <= 0):
            raise invalid("duration_in_months must be a positive integer when duration is repeating.",
                          "duration_in_months", code="parameter_missing" if months is None else "parameter_invalid")
        if duration != "repeating" and months is not None:
            raise invalid("duration_in_months is only valid when duration is repeating.",
                          "duration_in_months")
        # Stripe makes up an id without a prefix when none is given
        coupon_id = str(params.get("id") or "") or self.ids("").lstrip("_")
        if coupon_id in self.table("coupon") and not self.table("coupon")[coupon_id].get("_deleted"):
            raise invalid("Coupon already exists.", "id", code="resource_already_exists")
        max_red = as_int(params, "max_redemptions")
        if max_red is not None and max_red <= 0:
            raise invalid("max_redemptions must be a positive integer.", "max_redemptions")
        applies = params.get("applies_to")
        products = [str(p) for p in as_list(applies.get("products"))] if isinstance(applies, dict) else None
        for product in products or []:
            self.get("product", product)
        raw_options = params.get("currency_options")
        options: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
        coupon = self.base(
            "", "coupon", id=coupon_id, amount_off=amount_off,
            applies_to={"products": products} if products is not None else None, currency=currency,
            currency_options={str(k).lower(): {"amount_off": as_int(v, "amount_off")}
                              for k, v in options.items() if isinstance(v, dict)} or None,
            duration=duration, duration_in_months=months, max_redemptions=max_red,
            metadata=merge_metadata({}, params.get("metadata")), name=params.get("name") or None,
            percent_off=float(pct) if pct is not None else None, redeem_by=as_int(params, "redeem_by"),
            times_redeemed=0, valid=True, _pct=str(pct) if pct is not None else None)
        for optional in ("applies_to", "currency_options"):  # absent, never null, in Stripe's spec
            if coupon[optional] is None:
                del coupon[optional]
        self._store("coupon", coupon)
        self.emit("coupon.created", coupon)
        return self.render(coupon)

    def _fresh(self, coupon: dict[str, Any]) -> dict[str, Any]:
        """``valid`` as of now: not past ``redeem_by``, not at ``max_redemptions``."""
        coupon["valid"] = not coupon.get("_deleted") and (
            coupon["redeem_by"] is None or self.now() <= coupon["redeem_by"]) and (
            coupon["max_redemptions"] is None or coupon["times_redeemed"] < coupon["max_redemptions"])
        return coupon

    def retrieve_coupon(self, obj_id: str) -> dict[str, Any]:
        return self.render(self._fresh(self.get("coupon", obj_id)))

    def update_coupon(self, obj_id: str, params: Params) -> dict[str, Any]:
        # Amounts, duration and limits are immutable: unknown parameters on update.
        check_known(params, ("metadata", "name", "currency_options"))
        coupon = self.get("coupon", obj_id)
        changes: dict[str, Any] = {}
        if "name" in params:
            changes["name"] = params["name"] or None
        if "metadata" in params:
            changes["metadata"] = merge_metadata(coupon["metadata"], params["metadata"])
        return self.render(self._update("coupon", self._fresh(coupon), changes))

    def delete_coupon(self, obj_id: str) -> dict[str, Any]:
        """Deleting stops new redemptions; discounts already made keep working (Stripe's rule)."""
        coupon = self.get("coupon", obj_id)
        coupon["_deleted"] = True
        self.emit("coupon.deleted", coupon)
        return {"id": obj_id, "object": "coupon", "deleted": True}

    def list_coupons(self, params: Params) -> dict[str, Any]:
        for coupon in self.live("coupon"):
            self._fresh(coupon)
        return self.list_kind("coupon", params, "/v1/coupons")

    # ------------------------------------------------------------------ promotion codes

    def create_promotion_code(self, params: Params) -> dict[str, Any]:
        check_known(params, PROMOTION_PARAMS)
        promotion = params.get("promotion")
        if not isinstance(promotion, dict) or not promotion.get("type"):
            raise invalid("Missing required param: promotion.", "promotion", code="parameter_missing")
        if promotion.get("type") != "coupon":
            raise invalid("Invalid promotion[type]: must be coupon", "promotion[type]")
        coupon_id = str(promotion.get("coupon") or "")
        coupon = self.table("coupon").get(coupon_id)
        if coupon is None or coupon.get("_deleted"):
            raise no_such("coupon", coupon_id, "promotion[coupon]")
        code = str(params.get("code") or self.ids("").lstrip("_"))
        if not all(c.isalnum() or c == "-" for c in code):
            raise invalid("code may contain only letters, digits and dashes.", "code")
        if any(p["code"].casefold() == code.casefold() and p["active"] for p in self.live("promotion_code")):
            raise invalid(f"A promotion code with code {code} already exists.", "code",
                          code="resource_already_exists")
        expires = as_int(params, "expires_at")
        if expires is not None and coupon["redeem_by"] is not None and expires > coupon["redeem_by"]:
            raise invalid("expires_at cannot be after the coupon's redeem_by.", "expires_at")
        max_red = as_int(params, "max_redemptions")
        if max_red is not None and coupon["max_redemptions"] is not None and max_red > coupon["max_redemptions"]:
            raise invalid("max_redemptions cannot be greater than the coupon's max_redemptions.",
                          "max_redemptions")
        customer = str(params.get("customer") or "") or None
        if customer:
            self.get("customer", customer, "customer")
        raw_rest = params.get("restrictions")
        rest: dict[str, Any] = raw_rest if isinstance(raw_rest, dict) else {}
        restrictions = {"currency_options": {},
                        "first_time_transaction": bool(as_bool(rest, "first_time_transaction", False)),
                        "minimum_amount": as_int(rest, "minimum_amount"),
                        "minimum_amount_currency": str(rest.get("minimum_amount_currency") or "").lower() or None}
        if (restrictions["minimum_amount"] is None) != (restrictions["minimum_amount_currency"] is None):
            raise invalid("minimum_amount and minimum_amount_currency go together.",
                          "restrictions[minimum_amount_currency]")
        promo = self.base("promo", "promotion_code", active=as_bool(params, "active", True), code=code,
                          customer=customer, customer_account=None, expires_at=expires,
                          max_redemptions=max_red, metadata=merge_metadata({}, params.get("metadata")),
                          promotion={"coupon": coupon_id, "type": "coupon"}, restrictions=restrictions,
                          times_redeemed=0)
        self._store("promotion_code", promo)
        self.emit("promotion_code.created", promo)
        return self.render(promo)

    def update_promotion_code(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("active", "metadata", "restrictions"))
        promo = self.get("promotion_code", obj_id)
        changes: dict[str, Any] = {}
        if "active" in params:
            active = as_bool(params, "active")
            coupon = self._fresh(self.table("coupon")[promo["promotion"]["coupon"]])
            if active and not promo["active"] and not coupon["valid"]:
                raise invalid("This promotion code cannot be reactivated: its coupon is no longer valid.",
                              "active")
            changes["active"] = active
        if "metadata" in params:
            changes["metadata"] = merge_metadata(promo["metadata"], params["metadata"])
        return self.render(self._update("promotion_code", promo, changes))

    def list_promotion_codes(self, params: Params) -> dict[str, Any]:
        return self.list_kind("promotion_code", params, "/v1/promotion_codes",
                              ("code", "coupon", "customer", "active"))

    # ------------------------------------------------------------------ redeeming

    def redeem(self, specs: Any, param: str, *, customer: str, currency: str, invoice: str | None = None,
               invoice_item: str | None = None, subscription: str | None = None,
               reusable: Sequence[str] = ()) -> list[str]:
        """``discounts=[…]`` into Discount ids, each coupon and promotion code checked as Stripe
        checks it (unknown: 400 ``resource_missing``; expired, used up, inactive, another
        customer's, another currency's: 400). ``discount`` reuses one of ``reusable`` (the
        object's or its ancestors' own discounts)."""
        if specs == "":
            return []
        ids: list[str] = []
        for n, spec in enumerate(as_list(specs)):
            where = f"{param}[{n}]"
            if not isinstance(spec, dict) or sum(1 for k in ("coupon", "promotion_code", "discount")
                                                 if spec.get(k)) != 1:
                raise invalid("Each discount takes exactly one of coupon, promotion_code or discount.", where)
            if spec.get("discount"):
                found = str(spec["discount"])
                if found not in reusable:
                    raise no_such("discount", found, f"{where}[discount]")
                ids.append(found)
                continue
            promo: dict[str, Any] | None = None
            if spec.get("promotion_code"):
                promo = self._usable_promotion(str(spec["promotion_code"]), f"{where}[promotion_code]", customer)
                coupon_id = promo["promotion"]["coupon"]
            else:
                coupon_id = str(spec["coupon"])
            coupon = self.table("coupon").get(coupon_id)
            if coupon is None or coupon.get("_deleted"):
                raise no_such("coupon", coupon_id, f"{where}[coupon]")
            if not self._fresh(coupon)["valid"]:
                raise invalid(f"Coupon {coupon_id} is no longer valid.", f"{where}[coupon]",
                              code="coupon_expired")
            if coupon["amount_off"] is not None and coupon["currency"] != currency and \
                    currency not in (coupon.get("currency_options") or {}):
                raise invalid(f"The coupon {coupon_id} is in {coupon['currency']}; it cannot be applied "
                              f"to an amount in {currency}.", f"{where}[coupon]")
            now = self.now()
            end = None
            if coupon["duration"] == "repeating":
                end = now + int(coupon["duration_in_months"]) * 30 * 86400  # Stripe: months from start
            discount = self.base("di", "discount", checkout_session=None, customer=customer,
                                 customer_account=None, end=end, invoice=invoice, invoice_item=invoice_item,
                                 promotion_code=promo["id"] if promo else None,
                                 source={"coupon": coupon_id, "type": "coupon"}, start=now,
                                 subscription=subscription, subscription_item=None)
            self._store("discount", discount)
            coupon["times_redeemed"] += 1
            self._fresh(coupon)
            if promo is not None:
                promo["times_redeemed"] += 1
            ids.append(discount["id"])
        if len(set(ids)) != len(ids):
            raise invalid("The same discount cannot be applied twice.", param)
        return ids

    def _usable_promotion(self, promo_id: str, param: str, customer: str) -> dict[str, Any]:
        promo = self.table("promotion_code").get(promo_id)
        if promo is None:
            raise no_such("promotion code", promo_id, param)
        if not promo["active"] or (promo["expires_at"] is not None and self.now() > promo["expires_at"]) or (
                promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]):
            raise invalid(f"This promotion code cannot be redeemed: {promo['code']} is inactive, expired "
                          "or used up.", param)
        if promo["customer"] and promo["customer"] != customer:
            raise invalid(f"This promotion code cannot be redeemed by customer {customer}.", param)
        return promo

    def coupon_of(self, discount_id: str) -> dict[str, Any]:
        """The coupon a discount was redeemed from (kept when the coupon is deleted)."""
        discount = self.table("discount")[discount_id]
        return self.table("coupon")[discount["source"]["coupon"]]

    # ------------------------------------------------------------------ the invoice's discount step

    def discount_lines(self, lines: Sequence[dict[str, Any]], invoice_discounts: Sequence[str],
                       currency: str) -> None:
        """Set each line's ``discount_amounts``: its own discounts first, then the invoice's,
        each on what the ones before it left (see the module docstring for the rounding)."""
        left = [line["amount"] if line["discountable"] else 0 for line in lines]
        amounts: list[list[dict[str, Any]]] = [[] for _ in lines]

        def apply(discount_id: str, eligible: list[int]) -> None:
            coupon = self.coupon_of(discount_id)
            products = (coupon.get("applies_to") or {}).get("products")
            chosen = [n for n in eligible if products is None or _product(lines[n]) in products]
            shares = _shares(coupon, currency, [left[n] for n in chosen])
            for n, share in zip(chosen, shares, strict=True):
                left[n] -= share
                amounts[n].append({"amount": share, "discount": discount_id})

        for n, line in enumerate(lines):
            if line["discountable"]:
                for discount_id in line["discounts"]:
                    apply(discount_id, [n])
        discountable = [n for n, line in enumerate(lines) if line["discountable"]]
        for discount_id in invoice_discounts:
            apply(discount_id, discountable)
        for line, found in zip(lines, amounts, strict=True):
            line["discount_amounts"] = found

    def cycle_discounts(self, owner: dict[str, Any], period_start: int) -> list[str]:
        """The subscription's discounts that apply to a cycle starting at ``period_start``; a
        ``once`` coupon is spent by the first invoice and leaves the subscription."""
        active = [d for d in owner["discounts"]
                  if self.table("discount")[d]["end"] is None or self.table("discount")[d]["end"] > period_start]
        owner["discounts"] = [d for d in active if self.coupon_of(d)["duration"] != "once"]
        return active


def _product(line: Mapping[str, Any]) -> str | None:
    pricing = line.get("pricing") or {}
    return (pricing.get("price_details") or {}).get("product")


def _shares(coupon: Mapping[str, Any], currency: str, left: list[int]) -> list[int]:
    if coupon["_pct"] is not None:
        pct = Decimal(coupon["_pct"])
        return [min(round_half_up(Decimal(amount) * pct / 100), amount) for amount in left]
    off = coupon["amount_off"] if coupon["currency"] == currency else \
        int(coupon["currency_options"][currency]["amount_off"])
    pool = sum(left)
    if pool <= 0:
        return [0 for _ in left]
    off = min(off, pool)
    shares = [off * amount // pool for amount in left]
    order = sorted(range(len(left)), key=lambda n: (-(off * left[n] % pool), n))
    for n in order[: off - sum(shares)]:
        shares[n] += 1
    return shares


__all__ = ["CouponsMixin", "no_such"]
