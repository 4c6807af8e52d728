"""The Stripe emulator's disputes and transfers: money that leaves the balance other than by a
refund or a payout.

Stripe facts kept (docs "Disputes", "Testing", the Dispute and Transfer objects): a dispute is
opened by the cardholder's bank, never through the API: in test mode a payment with
``pm_card_createDispute`` is disputed at once (``fraudulent``, ``needs_response``). The disputed
amount and a dispute fee leave the balance (an ``adjustment`` balance transaction, reporting
category ``dispute``), the charge says ``disputed``, and ``charge.dispute.created`` and
``charge.dispute.funds_withdrawn`` are sent; closing it (``POST /v1/disputes/{id}/close``)
accepts the loss. A transfer to a connected account debits the balance (a ``transfer`` balance
transaction) and is refused beyond what is available.

Emulator choices (not Stripe facts): the dispute fee is 15.00 USD; evidence is due 7 days after
the dispute opens; a transfer's ``destination`` only has to look like an account id
(``acct_…``). Control calls for what only a bank decides:

    POST /__emulator/dispute  {"charge": "ch_…", "reason": "product_not_received"}   opens one
    POST /__emulator/dispute  {"dispute": "du_…", "status": "won" | "lost"}          decides one
        (won: the disputed amount comes back, ``charge.dispute.funds_reinstated``; the fee not)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL
from connectors.stripe.emulator.money import round_half_up
from connectors.stripe.emulator.payouts import SETTLEMENT, PayoutsMixin
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import (
    StripeAPIError,
    as_int,
    check_known,
    created_filter,
    invalid,
    merge_metadata,
    paginate,
)

DISPUTE_FEE = 1500
EVIDENCE_DAYS = 7
EVIDENCE_FIELDS = (
    "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
    "cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name",
    "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation",
    "duplicate_charge_explanation", "duplicate_charge_id", "product_description", "receipt",
    "refund_policy", "refund_policy_disclosure", "refund_refusal_explanation", "service_date",
    "service_documentation", "shipping_address", "shipping_carrier", "shipping_date",
    "shipping_documentation", "shipping_tracking_number", "uncategorized_file", "uncategorized_text")


class DisputesMixin(PayoutsMixin):
    """Disputes on charges, and transfers out of the balance."""

    # ------------------------------------------------------------------ disputes

    def _adjust(self, amount: int, fee: int, source: str, description: str | None, category: str,
                type_: str = "adjustment") -> dict[str, Any]:
        """A balance transaction moving ``amount`` (settlement currency) and charging ``fee``."""
        fee_details = ([{"amount": fee, "application": None, "currency": SETTLEMENT,
                         "description": "Dispute fee", "type": "stripe_fee"}] if fee else [])
        txn = self.base("txn", "balance_transaction", amount=amount, available_on=self.now(),
                        balance_type="payments", currency=SETTLEMENT, description=description,
                        exchange_rate=None, fee=fee, fee_details=fee_details, net=amount - fee,
                        reporting_category=category, source=source, status="available", type=type_)
        return self._store("balance_transaction", txn)

    def open_dispute(self, charge_id: str, reason: str = "fraudulent") -> dict[str, Any]:
        ch = self.get("charge", charge_id, "charge")
        if ch.get("disputed"):
            raise invalid(f"Charge {charge_id} is already disputed.", "charge")
        if not ch.get("captured") or not ch.get("balance_transaction"):
            raise invalid(f"Charge {charge_id} moved no money to dispute.", "charge")
        paid = self.table("balance_transaction")[ch["balance_transaction"]]
        du_id = self.ids("du")
        # the disputed amount in the settlement currency, in the proportion the charge settled
        settled = round_half_up(Decimal(paid["amount"]) * (ch["amount"] - ch["amount_refunded"]) / ch["amount"])
        txn = self._adjust(-settled, DISPUTE_FEE, du_id, f"Chargeback withdrawal for {ch['id']}", "dispute")
        card = (ch.get("payment_method_details") or {}).get("card") or {}
        dispute = self.base(
            "du", "dispute", id=du_id, amount=ch["amount"] - ch["amount_refunded"], balance_transactions=[txn],
            charge=ch["id"], currency=ch["currency"], enhanced_eligibility_types=[],
            evidence={**{name: None for name in EVIDENCE_FIELDS}, "enhanced_evidence": {}},
            evidence_details={"due_by": self.now() + EVIDENCE_DAYS * 86400, "enhanced_eligibility": {},
                              "has_evidence": False, "past_due": False, "submission_count": 0},
            is_charge_refundable=False, metadata={}, payment_intent=ch.get("payment_intent"),
            payment_method_details={"type": "card", "card": {
                "brand": card.get("brand") or "visa", "case_type": "chargeback",
                "network": card.get("brand") or "visa", "network_reason_code": "10.4"}},
            reason=reason, status="needs_response")
        self._store("dispute", dispute)
        ch["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        self.emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def decide_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        dispute = self.get("dispute", dispute_id)
        if status not in ("won", "lost"):
            raise invalid(f"A dispute is decided won or lost, not {status}.", "status")
        if dispute["status"] in ("won", "lost"):
            raise invalid(f"Dispute {dispute_id} is already closed ({dispute['status']}).")
        previous = {"status": dispute["status"]}
        dispute["status"] = status
        if status == "won":
            withdrawn = dispute["balance_transactions"][0]
            txn = self._adjust(-withdrawn["amount"], 0, dispute_id,
                               f"Chargeback reversal for {dispute['charge']}", "dispute_reversal")
            dispute["balance_transactions"] = [*dispute["balance_transactions"], txn]
            self.emit("charge.dispute.funds_reinstated", dispute)
        self.emit("charge.dispute.closed", dispute, previous)
        return dispute

    def update_dispute(self, dispute_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("evidence", "metadata", "submit"))
        dispute = self.get("dispute", dispute_id)
        if dispute["status"] in ("won", "lost"):
            raise invalid("This dispute is already closed, and can no longer be updated.")
        previous: dict[str, Any] = {}
        if isinstance(params.get("evidence"), dict):
            previous["evidence"] = dict(dispute["evidence"])
            for name, value in params["evidence"].items():
                if name in EVIDENCE_FIELDS:
                    dispute["evidence"][name] = value or None
            dispute["evidence_details"]["has_evidence"] = True
        if "metadata" in params:
            previous["metadata"] = dict(dispute["metadata"])
            dispute["metadata"] = merge_metadata(dispute["metadata"], params["metadata"])
        if str(params.get("submit") or "").lower() == "true":
            previous["status"] = dispute["status"]
            dispute["status"] = "under_review"
            dispute["evidence_details"]["submission_count"] += 1
        if previous:
            self.emit("charge.dispute.updated", dispute, previous)
        return self.render(dispute)

    def close_dispute(self, dispute_id: str) -> dict[str, Any]:
        """Accepting the dispute: it is lost, the money stays with the cardholder."""
        dispute = self.get("dispute", dispute_id)
        if dispute["status"] == "lost":
            return self.render(dispute)
        return self.render(self.decide_dispute(dispute_id, "lost"))

    def list_disputes(self, params: Params) -> dict[str, Any]:
        check_known(params, ("charge", "created", "ending_before", "limit", "payment_intent", "starting_after"))
        check = created_filter(params)
        wanted = {k: str(params[k]) for k in ("charge", "payment_intent") if params.get(k)}
        items = [d for d in self.live("dispute") if check(d) and all(d.get(k) == v for k, v in wanted.items())]
        envelope = paginate(items, params, "/v1/disputes")
        envelope["data"] = [self.render(d) for d in envelope["data"]]
        return envelope

    # ------------------------------------------------------------------ transfers

    def create_transfer(self, params: Params) -> dict[str, Any]:
        check_known(params, ("amount", "currency", "description", "destination", "metadata",
                             "source_transaction", "source_type", "transfer_group"))
        amount = as_int(params, "amount")
        currency = str(params.get("currency") or "").lower()
        destination = str(params.get("destination") or "")
        for name, value in (("amount", amount), ("currency", currency), ("destination", destination)):
            if value in (None, ""):
                raise invalid(f"Missing required param: {name}.", name, code="parameter_missing")
        assert amount is not None
        if not destination.startswith("acct_"):
            raise invalid(f"No such destination: '{destination}'", "destination", code="resource_missing")
        if amount <= 0:
            raise invalid("Invalid positive integer", "amount")
        available = self.balance()["available"][0]["amount"] if currency == SETTLEMENT else 0
        if amount > available:
            raise StripeAPIError(400, "You have insufficient available funds in your Stripe account.",
                                 code="balance_insufficient")
        tr_id = self.ids("tr")
        txn = self._adjust(-amount, 0, tr_id, params.get("description") or None, "transfer", "transfer")
        transfer = self.base(
            "tr", "transfer", id=tr_id, amount=amount, amount_reversed=0, balance_transaction=txn["id"],
            currency=currency, description=params.get("description") or None, destination=destination,
            destination_payment=self.ids("py"), metadata=merge_metadata({}, params.get("metadata")),
            reversals={"object": "list", "data": [], "has_more": False, "url": f"/v1/transfers/{tr_id}/reversals"},
            reversed=False, source_transaction=params.get("source_transaction") or None,
            source_type=str(params.get("source_type") or "card"),
            transfer_group=params.get("transfer_group") or None)
        self._store("transfer", transfer)
        self.emit("transfer.created", transfer)
        return self.render(transfer)

    def list_transfers(self, params: Params) -> dict[str, Any]:
        check_known(params, ("created", "destination", "ending_before", "limit", "starting_after", "transfer_group"))
        check = created_filter(params)
        wanted = {k: str(params[k]) for k in ("destination", "transfer_group") if params.get(k)}
        items = [t for t in self.live("transfer") if check(t) and all(t.get(k) == v for k, v in wanted.items())]
        envelope = paginate(items, params, "/v1/transfers")
        envelope["data"] = [self.render(t) for t in envelope["data"]]
        return envelope

    def update_transfer(self, tr_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("description", "metadata"))
        transfer = self.get("transfer", tr_id)
        changes: dict[str, Any] = {}
        if "description" in params:
            changes["description"] = params["description"] or None
        if "metadata" in params:
            changes["metadata"] = merge_metadata(transfer["metadata"], params["metadata"])
        return self.render(self._update("transfer", transfer, changes))

    # ------------------------------------------------------------------ routes

    def add_dispute_routes(self, router: web.UrlDispatcher, route: Any) -> None:
        route(router, "GET", "/v1/disputes", lambda p, m: self.list_disputes(p))
        route(router, "GET", "/v1/disputes/{id}", lambda p, m: self.render(self.get("dispute", m["id"])))
        route(router, "POST", "/v1/disputes/{id}", lambda p, m: self.update_dispute(m["id"], p))
        route(router, "POST", "/v1/disputes/{id}/close", lambda p, m: self.close_dispute(m["id"]))
        route(router, "POST", "/v1/transfers", lambda p, m: self.create_transfer(p))
        route(router, "GET", "/v1/transfers", lambda p, m: self.list_transfers(p))
        route(router, "GET", "/v1/transfers/{id}", lambda p, m: self.render(self.get("transfer", m["id"])))
        route(router, "POST", "/v1/transfers/{id}", lambda p, m: self.update_transfer(m["id"], p))
        router.add_post(CONTROL + "dispute", self._control_dispute)

    async def _control_dispute(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            if body.get("dispute"):
                dispute = self.decide_dispute(str(body["dispute"]), str(body.get("status") or ""))
            else:
                dispute = self.open_dispute(str(body.get("charge") or ""), str(body.get("reason") or "fraudulent"))
        except StripeAPIError as exc:
            return exc.response()
        return web.json_response(self.render(dispute))
