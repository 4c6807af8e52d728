"""The Stripe emulator's payouts: the balance, manual payouts, automatic payouts swept by a
control call, and the balance-transaction list with its ``payout`` filter.

Stripe facts kept: ``GET /v1/balance_transactions?payout=po_…`` lists the transactions an
*automatic* payout settled, with the payout's own (type ``payout``) transaction among them; for a
manual payout Stripe cannot say which transactions it paid out and refuses the filter. A payout
moves the balance the moment it is created (its ``payout`` balance transaction), and is
``pending`` -> ``in_transit`` -> ``paid`` (or ``failed``, which puts the money back with a
``payout_failure`` transaction).

Emulator choices (not Stripe facts): one settlement currency (USD, as ``payments``); balance
transactions are available at once; an automatic payout exists only when a test asks for one:

    POST /__emulator/payout          {"currency": "usd", "paid": true, "advance_to_arrival": false}
        sweeps every available transaction not yet paid out into one automatic payout (stamping
        each with the payout's id) and, with ``paid``, marks it paid (``payout.paid``); with
        ``advance_to_arrival`` the clock moves to the arrival date first.
    POST /__emulator/payout/{id}/fail   the bank returned it: ``payout.failed``, money back.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL
from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import (
    StripeAPIError,
    as_bool,
    as_int,
    check_known,
    created_filter,
    invalid,
    merge_metadata,
    paginate,
)

SETTLEMENT = "usd"
DAY = 86400


class PayoutsMixin(StripeStore):
    """Balance, payouts and balance-transaction listing."""

    # ------------------------------------------------------------------ balance

    def _unpaid(self, currency: str) -> list[dict[str, Any]]:
        """Available transactions no payout has settled yet (oldest first)."""
        return [t for t in reversed(self.live("balance_transaction"))
                if t["currency"] == currency and t["type"] not in ("payout", "payout_failure")
                and not t.get("_payout") and t["status"] == "available"]

    def balance(self) -> dict[str, Any]:
        txns = self.live("balance_transaction")
        available = sum(t["net"] for t in txns if t["status"] == "available")
        pending = sum(t["net"] for t in txns if t["status"] == "pending")
        return {"object": "balance", "livemode": False,
                "available": [{"amount": available, "currency": SETTLEMENT, "source_types": {"card": available}}],
                "pending": [{"amount": pending, "currency": SETTLEMENT, "source_types": {"card": pending}}]}

    # ------------------------------------------------------------------ payouts

    def _payout(self, amount: int, currency: str, *, automatic: bool, params: Params) -> dict[str, Any]:
        now = self.now()
        po_id, txn_id = self.ids("po"), self.ids("txn")
        arrival = (now // DAY + 1) * DAY  # the next day's midnight (UTC), as a bank date
        payout = self.base("po", "payout", id=po_id, amount=amount, application_fee=None,
                           application_fee_amount=None, arrival_date=arrival, automatic=automatic,
                           balance_transaction=txn_id, currency=currency,
                           description=params.get("description") or ("STRIPE PAYOUT" if automatic else None),
                           destination="ba_emulated", failure_balance_transaction=None,
                           failure_code=None, failure_message=None,
                           metadata=merge_metadata({}, params.get("metadata")),
                           method=str(params.get("method") or "standard"), original_payout=None,
                           reconciliation_status="completed" if automatic else "not_applicable",
                           reversed_by=None, source_type="card",
                           statement_descriptor=params.get("statement_descriptor") or None,
                           status="pending", type="bank_account")
        txn = self.base("txn", "balance_transaction", id=txn_id, amount=-amount, available_on=now,
                        balance_type="payments", currency=currency, description="STRIPE PAYOUT",
                        exchange_rate=None, fee=0, fee_details=[], net=-amount,
                        reporting_category="payout", source=po_id, status="available", type="payout",
                        _payout=po_id if automatic else None)
        self._store("balance_transaction", txn)
        self._store("payout", payout)
        self.emit("payout.created", payout)
        return payout

    def create_payout(self, params: Params) -> dict[str, Any]:
        check_known(params, ("amount", "currency", "description", "metadata", "method",
                             "statement_descriptor", "destination", "source_type"))
        amount = as_int(params, "amount")
        if amount is None:
            raise invalid("Missing required param: amount.", "amount", code="parameter_missing")
        currency = str(params.get("currency") or "").lower()
        if not currency:
            raise invalid("Missing required param: currency.", "currency", code="parameter_missing")
        if amount <= 0:
            raise invalid("Invalid positive integer", "amount")
        available = self.balance()["available"][0]["amount"] if currency == SETTLEMENT else 0
        if amount > available:
            raise StripeAPIError(400, "You have insufficient funds in your Stripe account for this "
                                 "transfer.", code="balance_insufficient")
        return self._payout(amount, currency, automatic=False, params=params)

    def list_payouts(self, params: Params) -> dict[str, Any]:
        check = created_filter(params)
        arrival = created_filter(params, "arrival_date")
        status = params.get("status")
        items = [p for p in self.live("payout")
                 if check(p) and arrival(p) and (not status or p["status"] == status)]
        envelope = paginate(items, params, "/v1/payouts")
        envelope["data"] = [self.render(o) for o in envelope["data"]]
        return envelope

    def sweep_payout(self, currency: str = SETTLEMENT) -> dict[str, Any]:
        """An automatic payout of every available transaction not yet paid out."""
        swept = self._unpaid(currency)
        amount = sum(t["net"] for t in swept)
        if amount <= 0:
            raise invalid(f"nothing to pay out in {currency} (available {amount})")
        payout = self._payout(amount, currency, automatic=True, params={})
        for txn in swept:
            txn["_payout"] = payout["id"]
        return payout

    def settle_payout(self, payout_id: str, *, advance: bool = False) -> dict[str, Any]:
        payout = self.get("payout", payout_id)
        if advance and self.now() < payout["arrival_date"]:
            self.clock.advance(payout["arrival_date"] - self.now())
        self._update("payout", payout, {"status": "in_transit"})
        self._update("payout", payout, {"status": "paid"}, "payout.paid")
        return payout

    def fail_payout(self, payout_id: str) -> dict[str, Any]:
        """The bank returned the payout: the money is back in the balance."""
        payout = self.get("payout", payout_id)
        if payout["status"] == "failed":
            return payout
        txn = self.base("txn", "balance_transaction", amount=payout["amount"], available_on=self.now(),
                        balance_type="payments", currency=payout["currency"],
                        description="STRIPE PAYOUT FAILURE", exchange_rate=None, fee=0, fee_details=[],
                        net=payout["amount"], reporting_category="payout_reversal", source=payout["id"],
                        status="available", type="payout_failure")
        self._store("balance_transaction", txn)
        self._update("payout", payout, {"status": "failed", "failure_balance_transaction": txn["id"],
                                        "failure_code": "account_closed",
                                        "failure_message": "The bank account has been closed."},
                     "payout.failed")
        return payout

    # ------------------------------------------------------------------ balance transactions

    def list_balance_transactions(self, params: Params) -> dict[str, Any]:
        check_known(params, ("created", "currency", "ending_before", "limit", "payout", "source",
                             "starting_after", "type"))
        check = created_filter(params)
        payout_id = params.get("payout")
        if payout_id:
            payout = self.get("payout", str(payout_id))
            if not payout["automatic"]:
                raise invalid("Balance transaction history can only be filtered on automatic "
                              "transfers, not manual.", "payout")
        wanted = {k: str(params[k]).lower() for k in ("currency", "source", "type") if params.get(k)}

        def listed(txn: dict[str, Any]) -> bool:
            return (check(txn) and (not payout_id or txn.get("_payout") == payout_id)
                    and all(str(txn.get(k)).lower() == v for k, v in wanted.items()))
        items = [t for t in self.live("balance_transaction") if listed(t)]
        envelope = paginate(items, params, "/v1/balance_transactions")
        envelope["data"] = [self.render(o) for o in envelope["data"]]
        return envelope

    # ------------------------------------------------------------------ routes

    def add_payout_routes(self, router: web.UrlDispatcher, route: Any) -> None:
        route(router, "GET", "/v1/balance", lambda p, m: self.balance())
        route(router, "POST", "/v1/payouts", lambda p, m: self.render(self.create_payout(p)))
        route(router, "GET", "/v1/payouts", lambda p, m: self.list_payouts(p))
        route(router, "GET", "/v1/payouts/{id}", lambda p, m: self.render(self.get("payout", m["id"])))
        router.add_post(CONTROL + "payout", self._control_payout)
        router.add_post(CONTROL + "payout/{id}/fail", self._control_fail_payout)

    async def _control_payout(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            payout = self.sweep_payout(str(body.get("currency") or SETTLEMENT).lower())
            if as_bool(body, "paid") is not False:
                self.settle_payout(payout["id"], advance=bool(body.get("advance_to_arrival")))
        except StripeAPIError as exc:
            return exc.response()
        return web.json_response(self.render(payout))

    async def _control_fail_payout(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.render(self.fail_payout(request.match_info["id"])))
        except StripeAPIError as exc:
            return exc.response()
