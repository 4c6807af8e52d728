"""The Stripe emulator's payment methods: cards, attached to and detached from customers, listed
under ``/v1/payment_methods`` and ``/v1/customers/{id}/payment_methods``.

Stripe facts kept (docs "Testing", the PaymentMethod object): test mode has fixed payment methods
(``pm_card_visa``, ``pm_card_mastercard``, ``pm_card_chargeDeclined``, ``pm_card_createDispute`` …)
and card tokens (``tok_visa`` …); a test payment method used or attached becomes a new
PaymentMethod of its own (``pm_…``), as Stripe clones it; a payment method belongs to at most one
customer (attaching one another customer holds is a 400); attach and detach emit
``payment_method.attached`` / ``payment_method.detached``.
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import (
    StripeAPIError,
    check_known,
    invalid,
    merge_metadata,
    missing,
    paginate,
)

# Stripe's test cards (docs.stripe.com/testing): brand, last4, funding, and what happens when used
TEST_CARDS: dict[str, tuple[str, str, str]] = {
    "visa": ("visa", "4242", "credit"), "visa_debit": ("visa", "5556", "debit"),
    "mastercard": ("mastercard", "4444", "credit"), "amex": ("amex", "8431", "credit"),
    "chargeDeclined": ("visa", "0002", "credit"), "visa_chargeDeclined": ("visa", "0002", "credit"),
    "createDispute": ("visa", "0259", "credit"),
}
DECLINES = frozenset({"chargeDeclined", "visa_chargeDeclined"})
DISPUTES = frozenset({"createDispute"})


def card_of(token: str) -> str | None:
    """The test card a fixed test id names (``pm_card_visa``, ``tok_visa``), or None."""
    for prefix in ("pm_card_", "tok_"):
        if token.startswith(prefix) and token[len(prefix):] in TEST_CARDS:
            return token[len(prefix):]
    return None


def card_fields(card: str) -> dict[str, Any]:
    """The ``card`` of a PaymentMethod for a test card."""
    brand, last4, funding = TEST_CARDS[card]
    return {"brand": brand, "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                       "cvc_check": "pass"},
            "country": "US", "display_brand": brand, "exp_month": 12, "exp_year": 2034,
            "fingerprint": f"emu{card[:13]}", "funding": funding, "generated_from": None,
            "last4": last4, "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated", "three_d_secure_usage": {"supported": True},
            "wallet": None}


class PaymentMethodsMixin(StripeStore):
    """Card payment methods and their customers."""

    def _new_payment_method(self, card: str, *, customer: str | None = None, metadata: Any = None,
                            billing_details: Any = None) -> dict[str, Any]:
        details: dict[str, Any] = billing_details if isinstance(billing_details, dict) else {}
        address: dict[str, Any] = details["address"] if isinstance(details.get("address"), dict) else {}
        pm = self.base(
            "pm", "payment_method", allow_redisplay="unspecified",
            billing_details={"address": {k: address.get(k) or None for k in
                                         ("city", "country", "line1", "line2", "postal_code", "state")},
                             "email": details.get("email") or None, "name": details.get("name") or None,
                             "phone": details.get("phone") or None, "tax_id": None},
            card=card_fields(card),
            customer=customer, customer_account=None, metadata=merge_metadata({}, metadata),
            radar_options={}, type="card", _test_card=card)
        return self._store("payment_method", pm)

    def payment_method(self, pm_id: str, param: str = "payment_method") -> dict[str, Any]:
        """A payment method by id; a fixed test id (``pm_card_visa``) gives a new one, as Stripe does."""
        card = card_of(pm_id)
        if card is not None and pm_id.startswith("pm_"):
            return self._new_payment_method(card)
        pm = self.table("payment_method").get(pm_id)
        if pm is None:
            raise missing("PaymentMethod", pm_id, param)
        return pm

    def create_payment_method(self, params: Params) -> dict[str, Any]:
        check_known(params, ("type", "card", "billing_details", "metadata", "customer", "payment_method",
                             "allow_redisplay"))
        if (params.get("type") or "card") != "card":
            raise invalid(f"The emulator makes card payment methods only, not {params.get('type')}.", "type")
        card_params: dict[str, Any] = params["card"] if isinstance(params.get("card"), dict) else {}
        token = str(card_params.get("token") or "")
        card = card_of(token) if token.startswith("tok_") else None
        if card is None:
            # Stripe refuses raw card numbers from most integrations; a token is what clients send
            raise invalid("Provide card[token] with a test token (tok_visa, tok_mastercard, …).", "card[token]")
        return self.render(self._new_payment_method(card, metadata=params.get("metadata"),
                                                    billing_details=params.get("billing_details")))

    def update_payment_method(self, pm_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("billing_details", "metadata", "allow_redisplay"))
        pm = self.payment_method(pm_id)
        changes: dict[str, Any] = {}
        if "metadata" in params:
            changes["metadata"] = merge_metadata(pm["metadata"], params["metadata"])
        if params.get("allow_redisplay"):
            changes["allow_redisplay"] = params["allow_redisplay"]
        return self.render(self._update("payment_method", pm, changes))

    def attach_payment_method(self, pm_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("customer", "customer_account"))
        if not params.get("customer"):
            raise invalid("Missing required param: customer.", "customer", code="parameter_missing")
        cus = self.get("customer", str(params["customer"]), "customer")
        pm = self.payment_method(pm_id)
        if pm["customer"] == cus["id"]:
            return self.render(pm)
        if pm["customer"]:
            raise StripeAPIError(400, "The payment method you provided has already been attached to a "
                                 "customer.", code="payment_method_unexpected_state", param="payment_method")
        pm["customer"] = cus["id"]
        self.emit("payment_method.attached", pm)
        return self.render(pm)

    def detach_payment_method(self, pm_id: str) -> dict[str, Any]:
        pm = self.payment_method(pm_id)
        if not pm["customer"]:
            raise StripeAPIError(400, "The payment method you provided is not attached to a customer so "
                                 "detachment is impossible.", code="payment_method_unexpected_state",
                                 param="payment_method")
        previous = {"customer": pm["customer"]}
        pm["customer"] = None
        self.emit("payment_method.detached", pm, previous)
        return self.render(pm)

    def list_payment_methods(self, params: Params, customer: str | None = None) -> dict[str, Any]:
        allowed = ("ending_before", "limit", "starting_after", "type", "allow_redisplay")
        check_known(params, allowed if customer else allowed + ("customer", "customer_account"))
        if customer:
            self.get("customer", customer, "customer")
        owner = customer or params.get("customer")
        kind, redisplay = params.get("type"), params.get("allow_redisplay")
        items = [pm for pm in self.live("payment_method")
                 if (not owner or pm["customer"] == owner) and (not kind or pm["type"] == kind)
                 and (not redisplay or pm["allow_redisplay"] == redisplay)]
        url = f"/v1/customers/{customer}/payment_methods" if customer else "/v1/payment_methods"
        envelope = paginate(items, params, url)
        envelope["data"] = [self.render(pm) for pm in envelope["data"]]
        return envelope

    def customer_payment_method(self, customer: str, pm_id: str) -> dict[str, Any]:
        self.get("customer", customer, "customer")
        pm = self.table("payment_method").get(pm_id)
        if pm is None or pm["customer"] != customer:
            raise missing("PaymentMethod", pm_id, "payment_method")
        return self.render(pm)

    def add_payment_method_routes(self, router: Any, route: Any) -> None:
        route(router, "POST", "/v1/payment_methods", lambda p, m: self.create_payment_method(p))
        route(router, "GET", "/v1/payment_methods", lambda p, m: self.list_payment_methods(p))
        route(router, "GET", "/v1/payment_methods/{id}", lambda p, m: self.render(self.payment_method(m["id"], "id")))
        route(router, "POST", "/v1/payment_methods/{id}", lambda p, m: self.update_payment_method(m["id"], p))
        route(router, "POST", "/v1/payment_methods/{id}/attach", lambda p, m: self.attach_payment_method(m["id"], p))
        route(router, "POST", "/v1/payment_methods/{id}/detach", lambda p, m: self.detach_payment_method(m["id"]))
        route(router, "GET", "/v1/customers/{id}/payment_methods",
              lambda p, m: self.list_payment_methods(p, customer=m["id"]))
        route(router, "GET", "/v1/customers/{id}/payment_methods/{pm}",
              lambda p, m: self.customer_payment_method(m["id"], m["pm"]))
