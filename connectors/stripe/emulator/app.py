"""A stateful Stripe emulator the official ``stripe`` SDK talks to unchanged.

Speaks Stripe's wire protocol: form-encoded bracket parameters, ``expand[]``, the list envelope
(newest first, ``starting_after``/``ending_before``), search, the error envelope (for every error,
unknown paths and methods included), requests held to the parameters and expansions Stripe's
spec gives each operation (``strict.py``), Bearer or Basic auth, idempotent
replays (``Idempotent-Replayed: true``; different parameters -> 400 ``idempotency_error``),
events for every mutation (with ``previous_attributes``), signed webhook deliveries with retries,
a 25 req/s rate limit answered with 429 ``rate_limit``, and billing maths (tax rates inclusive
and exclusive, proration for mid-cycle changes, renewals when the clock is advanced).

Emulator-specific choices (documented because they are not Stripe facts):
- the account settles in USD; charges in other currencies get a balance transaction converted at
  the fixed ``FX_TO_USD`` rates, with fee = 2.9 % + 30 cents of the settled amount;
- which payment paid which invoice is an Invoice Payment (``invoice_payments.py``, made when a
  payment is first attempted); ``payment_details.order_reference`` is left to the business;
- a meter event whose ``identifier`` was already used is answered 400 ``resource_already_exists``.

Control surface (besides the shared ``/__emulator/`` routes):
- ``POST /__emulator/seed`` ``{"tax_rates": [...], "customers": [...], "products": [...],
  "prices": [...], "coupons": [...], "promotion_codes": [...], "meters": [...], "subscriptions": [...], "invoices": [...], "refunds": [...],
  "credit_notes": [...]}`` - each object as its create call's parameters (JSON), optionally with
  ``"ref": "name"``; later objects may reference earlier ones as ``"@name"``. Invoices take
  ``"items": [{"price": …, "quantity": …} | {"amount": …, "description": …}]`` and a target
  ``"status"`` (draft/open/paid/void/uncollectible). Returns the created ids per kind and by ref.
- ``POST /__emulator/clock`` additionally renews subscriptions whose period ended and makes the
  payment retries due (``collection.py``).
- ``POST /__emulator/rate_limit`` ``{"per_second": 100}``.
- ``GET /__emulator/deliveries`` - webhook delivery attempts.
- ``GET``/``POST /__emulator/api_version`` ``{"version": "2022-11-15"}`` - the account's default
  API version (``versions.py``).
- ``GET``/``POST /__emulator/realism`` (and the ``realism=Realism(...)`` constructor option)
  ``{"search_lag_seconds": 60, "idempotency_ttl_seconds": 86400,
  "credit_note_lines_inline": 10}`` - Stripe's weaker guarantees, switched (``realism.py``): search
  lags writes by that many seconds (default 0), idempotency keys are forgotten after 24 h (``null``:
  kept), a credit note embeds its first 10 lines (``null``: all), the rest via
  ``/v1/credit_notes/{id}/lines``.
- ``POST /__emulator/dispute`` - a bank opens or decides a dispute (``disputes.py``).

Constructor options: ``rate_limit`` (requests/s, default 25), ``api_keys`` (accepted keys; by
default any ``sk_test_…``), ``endpoint_secret`` (one fixed ``whsec_…`` for every webhook endpoint,
so a demo config can name it up front), ``clock`` (an ``EmulatorClock``), ``account_version``
(the account's default API version, default ``API_VERSION``: requests without ``Stripe-Version``
and every event are rendered in it, ``versions.py``), ``restricted_keys`` (``rk_test_…`` keys and
the permissions each lacks, answered 403 as Stripe does, ``keys.py``).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL, Emulator, EmulatorClock
from connectors.stripe.emulator.accounts import AccountsMixin
from connectors.stripe.emulator.catalog import CatalogMixin
from connectors.stripe.emulator.credit_notes import CreditNotesMixin
from connectors.stripe.emulator.empty_lists import EmptyListsMixin
from connectors.stripe.emulator.events import EventsMixin
from connectors.stripe.emulator.includes import IncludesMixin
from connectors.stripe.emulator.invoice_payments import InvoicePaymentsMixin
from connectors.stripe.emulator.keys import RestrictedKeysMixin
from connectors.stripe.emulator.meters import MetersMixin
from connectors.stripe.emulator.more import MoreEndpointsMixin
from connectors.stripe.emulator.payouts import PayoutsMixin
from connectors.stripe.emulator.plans import PlansMixin
from connectors.stripe.emulator.realism import Realism
from connectors.stripe.emulator.store import API_VERSION, Params
from connectors.stripe.emulator.strict import api_key_from, check_request, unrecognized_url
from connectors.stripe.emulator.subscriptions import SubscriptionsMixin
from connectors.stripe.emulator.versions import VersionsMixin, checked_version
from connectors.stripe.emulator.wire import StripeAPIError, as_list, decode_form, fingerprint, invalid

log = logging.getLogger(__name__)

HandlerFn = Callable[[Params, dict[str, str]], Any]


class StripeEmulator(VersionsMixin, RestrictedKeysMixin, MoreEndpointsMixin, PayoutsMixin, InvoicePaymentsMixin, SubscriptionsMixin, CreditNotesMixin, MetersMixin, EventsMixin, IncludesMixin,
                     EmptyListsMixin, AccountsMixin, PlansMixin, CatalogMixin, Emulator):
    system = "stripe"

    def __init__(self, clock: EmulatorClock | None = None, *, rate_limit: float = 25.0,
                 api_keys: set[str] | None = None,
                 rate_clock: Callable[[], float] = time.monotonic,
                 webhook_retry_delay: float = 0.05, webhook_attempts: int = 3,
                 realism: Realism | None = None, endpoint_secret: str | None = None, account_version: str = API_VERSION,
                 restricted_keys: Mapping[str, Collection[str]] | None = None) -> None:
        self.default_account_version = checked_version(account_version)
        self.restricted_keys = dict(restricted_keys or {})
        self.realism = realism or Realism()  # before the state: reset_state reads it
        self.endpoint_secret = endpoint_secret
        self.rate_limit = rate_limit
        self.api_keys = api_keys  # None: any "sk_test_…" key is accepted
        self.rate_clock = rate_clock
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_attempts = webhook_attempts
        self.record_exchanges = False
        self.exchanges: list[dict[str, Any]] = []
        super().__init__(clock)
        self.app.on_cleanup.append(self.close_deliveries)

    # ------------------------------------------------------------------ HTTP plumbing

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return StripeAPIError(status, message, type_="api_error").response()

    def rate_limit_response(self, retry_after: float) -> web.StreamResponse:
        return StripeAPIError(
            429, "Request rate limit exceeded. You can learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.", code="rate_limit",
            headers={"Retry-After": str(int(retry_after) if retry_after == int(retry_after)
                                        else retry_after)}).response()

    def _api_key(self, request: web.Request) -> str:
        key = api_key_from(request.headers.get("Authorization", ""))  # Bearer, or Basic with key:
        if not key:
            raise StripeAPIError(401, "You did not provide an API key. You need to provide your API "
                                 "key in the Authorization header, using Bearer auth.",
                                 headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        ok = key in self.api_keys if self.api_keys is not None else key.startswith("sk_test_")
        ok = ok or self.is_restricted_key(key)
        if not ok:
            raise StripeAPIError(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}",
                                 code="api_key_invalid", headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        return key

    async def serve(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A path or method no route serves: Stripe's JSON 404, after the key check as Stripe
        does (aiohttp's own answer would be a plain-text 404 or 405)."""
        if request.match_info.http_exception is None:
            response: web.StreamResponse = await handler(request)
            return response
        headers = {"Request-Id": self.ids("req"), "Stripe-Version": API_VERSION}
        try:
            self._api_key(request)
            error = unrecognized_url(request.method, request.path)
        except StripeAPIError as exc:
            error = exc
        headers.update(error.headers)
        self._log_exchange(request, {}, error.status, error.body())
        return web.json_response(error.body(), status=error.status, headers=headers)

    def _rate_check(self) -> None:
        second = int(self.rate_clock())
        start, count = self._rate_window
        count = count + 1 if start == second else 1
        self._rate_window = (second, count)
        if count > self.rate_limit:
            raise StripeAPIError(429, "Request rate limit exceeded. You can learn more about rate "
                                 "limits here https://stripe.com/docs/rate-limits.",
                                 code="rate_limit", headers={"Retry-After": "1"})

    def route(self, router: web.UrlDispatcher, method: str, path: str, fn: HandlerFn) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            request_id = self.ids("req")
            headers = {"Request-Id": request_id, "Stripe-Version": self.account_version}
            key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
            params: Params = {}
            api_key, fp = "", ""
            try:
                api_key = self._api_key(request)
                self.check_permission(api_key, request.method, request.path)
                self.check_stripe_account(request.headers.get("Stripe-Account"))  # accounts.py
                version = headers["Stripe-Version"] = self.request_version(request.headers)
                self._rate_check()
                params = decode_form(request.query_string)
                params.update(decode_form(await request.text()))
                # What the spec says the operation takes (400 otherwise); a request refused here
                # never ran, so its key keeps no result (``fp`` stays empty).
                check_request(request.method, request.match_info.route.resource, params,
                              headers["Stripe-Version"])
                fp = fingerprint(request.method, request.path, params)
                if key:
                    cached = self.idempotency.get((api_key, key))
                    if cached is not None:
                        if cached[0] != fp:
                            raise StripeAPIError(
                                400, "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other than "
                                f"'{key}' if you meant to execute a different request.",
                                type_="idempotency_error")
                        self._log_exchange(request, params, cached[1], cached[2])
                        return web.json_response(cached[2], status=cached[1],
                                                 headers={**headers, "Idempotent-Replayed": "true"})
                self.request_api_version = version  # what a default depends on (invoices.py)
                try:
                    status, body = 200, fn(params, dict(request.match_info))
                finally:
                    self.request_api_version = None
                # Stored in the newest shape: rendered in the request's version (versions.py), so
                # an expansion may name a field only that version has (``data.plan.tiers``); what
                # the expansions rendered is converted too (a converted part is left as it is)
                body = self.in_version(body, version)
                expand = as_list(params.get("expand"))
                for path_ in expand:
                    body = self._expand(body, str(path_).split("."))
                if expand:
                    body = self.in_version(body, version)
            except StripeAPIError as exc:
                status, body = exc.status, exc.body()
                headers.update(exc.headers)
            except Exception:  # a bug in the emulator: Stripe's generic 500
                log.exception("stripe emulator handler failed")
                status, body = 500, StripeAPIError(500, "An unknown error occurred",
                                                   type_="api_error").body()
            if key and api_key and fp and status not in (401, 429):
                self.idempotency[(api_key, key)] = (fp, status, body)
            self._log_exchange(request, params, status, body)
            return web.json_response(body, status=status, headers=headers)

        router.add_route(method, path, handler)

    def _log_exchange(self, request: web.Request, params: Params, status: int, body: Any) -> None:
        if self.record_exchanges:
            resource = request.match_info.route.resource
            template = resource.canonical if resource is not None else request.path
            self.exchanges.append({"method": request.method, "path": request.path,
                                   "template": template, "query": request.query_string,
                                   "params": params, "status": status, "body": copy.deepcopy(body)})

    def _expand(self, node: Any, segs: list[str]) -> Any:
        if not segs:
            return node
        if isinstance(node, list):
            return [self._expand(item, segs) for item in node]
        included = self.includable(node, segs[0]) if isinstance(node, dict) else None
        if included is not None:  # includable, not stored (customer.sources, charge.refunds ...)
            return {**node, segs[0]: self._expand(included, segs[1:])}
        if not isinstance(node, dict) or segs[0] not in node:
            return node
        value = node[segs[0]]
        if isinstance(value, str):
            target = self.find(value)
            if target is not None:
                value = self.render(target)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            found = [self.find(v) for v in value]  # ``expand[]=discounts``: a list of ids
            value = [self.render(t) if t is not None else v for t, v in zip(found, value, strict=True)]
        node = dict(node)
        node[segs[0]] = self._expand(value, segs[1:])
        return node

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        r = self.route
        r(router, "POST", "/v1/customers", lambda p, m: self.create_customer(p))
        r(router, "GET", "/v1/customers", lambda p, m: self.list_kind("customer", p, "/v1/customers", exact=("email",)))
        r(router, "GET", "/v1/customers/search", lambda p, m: self.search("customer", p, "/v1/customers/search"))
        r(router, "GET", "/v1/customers/{id}", lambda p, m: self.retrieve_customer(m["id"]))
        r(router, "POST", "/v1/customers/{id}", lambda p, m: self.update_customer(m["id"], p))
        r(router, "DELETE", "/v1/customers/{id}", lambda p, m: self.delete_customer(m["id"]))
        r(router, "POST", "/v1/customers/{id}/tax_ids", lambda p, m: self.create_tax_id(m["id"], p))
        r(router, "GET", "/v1/customers/{id}/tax_ids", lambda p, m: self.customer_tax_ids(m["id"]))
        r(router, "GET", "/v1/customers/{id}/tax_ids/{tax_id}", lambda p, m: self.render(self.customer_tax_id(m["id"], m["tax_id"])))
        r(router, "DELETE", "/v1/customers/{id}/tax_ids/{tax_id}", lambda p, m: self.delete_tax_id(m["id"], m["tax_id"]))
        r(router, "POST", "/v1/products", lambda p, m: self.create_product(p))
        r(router, "GET", "/v1/products", lambda p, m: self.list_kind("product", p, "/v1/products", ("active",)))
        r(router, "GET", "/v1/products/search", lambda p, m: self.search("product", p, "/v1/products/search"))
        r(router, "GET", "/v1/products/{id}", lambda p, m: self.render(self.get("product", m["id"])))
        r(router, "POST", "/v1/products/{id}", lambda p, m: self.update_product(m["id"], p))
        r(router, "DELETE", "/v1/products/{id}", lambda p, m: self.delete_product(m["id"]))
        r(router, "POST", "/v1/prices", lambda p, m: self.create_price(p))
        r(router, "GET", "/v1/prices", lambda p, m: self.list_kind("price", p, "/v1/prices", ("active", "product", "currency", "type")))
        r(router, "GET", "/v1/prices/search", lambda p, m: self.search("price", p, "/v1/prices/search"))
        r(router, "GET", "/v1/prices/{id}", lambda p, m: self.render(self.get("price", m["id"])))
        r(router, "POST", "/v1/prices/{id}", lambda p, m: self.update_price(m["id"], p))
        r(router, "POST", "/v1/tax_rates", lambda p, m: self.create_tax_rate(p))
        r(router, "GET", "/v1/tax_rates", lambda p, m: self.list_kind("tax_rate", p, "/v1/tax_rates", ("active", "inclusive")))
        r(router, "GET", "/v1/tax_rates/{id}", lambda p, m: self.render(self.get("tax_rate", m["id"])))
        r(router, "POST", "/v1/coupons", lambda p, m: self.create_coupon(p))
        r(router, "GET", "/v1/coupons", lambda p, m: self.list_coupons(p))
        r(router, "GET", "/v1/coupons/{id}", lambda p, m: self.retrieve_coupon(m["id"]))
        r(router, "POST", "/v1/coupons/{id}", lambda p, m: self.update_coupon(m["id"], p))
        r(router, "DELETE", "/v1/coupons/{id}", lambda p, m: self.delete_coupon(m["id"]))
        r(router, "POST", "/v1/promotion_codes", lambda p, m: self.create_promotion_code(p))
        r(router, "GET", "/v1/promotion_codes", lambda p, m: self.list_promotion_codes(p))
        r(router, "GET", "/v1/promotion_codes/{id}", lambda p, m: self.render(self.get("promotion_code", m["id"])))
        r(router, "POST", "/v1/promotion_codes/{id}", lambda p, m: self.update_promotion_code(m["id"], p))
        r(router, "POST", "/v1/subscriptions", lambda p, m: self.create_subscription(p))
        r(router, "GET", "/v1/subscriptions", lambda p, m: self.list_subscriptions(p))
        r(router, "GET", "/v1/subscriptions/search", lambda p, m: self.search("subscription", p, "/v1/subscriptions/search"))
        r(router, "GET", "/v1/subscriptions/{id}", lambda p, m: self.render(self.get("subscription", m["id"])))
        r(router, "POST", "/v1/subscriptions/{id}", lambda p, m: self.update_subscription(m["id"], p))
        r(router, "DELETE", "/v1/subscriptions/{id}", lambda p, m: self.cancel_subscription(m["id"], p))
        r(router, "POST", "/v1/invoices", lambda p, m: self.create_invoice(p))
        r(router, "GET", "/v1/invoices", lambda p, m: self.list_kind("invoice", p, "/v1/invoices", ("status", "customer", "subscription", "collection_method")))
        r(router, "GET", "/v1/invoices/search", lambda p, m: self.search("invoice", p, "/v1/invoices/search"))
        r(router, "GET", "/v1/invoices/{id}", lambda p, m: self.render(self.get("invoice", m["id"])))
        r(router, "POST", "/v1/invoices/{id}", lambda p, m: self.update_invoice(m["id"], p))
        r(router, "DELETE", "/v1/invoices/{id}", lambda p, m: self.delete_invoice(m["id"]))
        r(router, "GET", "/v1/invoices/{id}/lines", lambda p, m: self.invoice_lines(m["id"], p))
        r(router, "POST", "/v1/invoices/{id}/finalize", lambda p, m: self.render(self.finalize_invoice(m["id"])))
        r(router, "POST", "/v1/invoices/{id}/pay", lambda p, m: self.render(self.pay_invoice(m["id"], p)))
        r(router, "POST", "/v1/invoices/{id}/void", lambda p, m: self.render(self.transition(m["id"], "void")))
        r(router, "POST", "/v1/invoices/{id}/mark_uncollectible", lambda p, m: self.render(self.transition(m["id"], "uncollectible")))
        r(router, "POST", "/v1/invoiceitems", lambda p, m: self.render(self.create_invoice_item(p)))
        r(router, "GET", "/v1/invoiceitems", lambda p, m: self.list_kind("invoiceitem", p, "/v1/invoiceitems", ("customer", "invoice")))
        r(router, "GET", "/v1/invoiceitems/{id}", lambda p, m: self.render(self.get("invoiceitem", m["id"])))
        r(router, "DELETE", "/v1/invoiceitems/{id}", lambda p, m: self.delete_invoice_item(m["id"]))
        r(router, "GET", "/v1/payment_intents", lambda p, m: self.list_kind("payment_intent", p, "/v1/payment_intents", ("customer",)))
        r(router, "GET", "/v1/payment_intents/search", lambda p, m: self.search("payment_intent", p, "/v1/payment_intents/search"))
        r(router, "GET", "/v1/payment_intents/{id}", lambda p, m: self.render(self.get("payment_intent", m["id"])))
        r(router, "GET", "/v1/charges", lambda p, m: self.list_kind("charge", p, "/v1/charges", ("customer", "payment_intent")))
        r(router, "GET", "/v1/charges/{id}", lambda p, m: self.render(self.get("charge", m["id"])))
        r(router, "POST", "/v1/refunds", lambda p, m: self.render(self.create_refund(p)))
        r(router, "GET", "/v1/refunds", lambda p, m: self.list_kind("refund", p, "/v1/refunds", ("charge", "payment_intent")))
        r(router, "GET", "/v1/refunds/{id}", lambda p, m: self.render(self.get("refund", m["id"])))
        r(router, "POST", "/v1/credit_notes", lambda p, m: self.render(self.create_credit_note(p)))
        r(router, "GET", "/v1/credit_notes", lambda p, m: self.list_kind("credit_note", p, "/v1/credit_notes", ("customer", "invoice")))
        r(router, "GET", "/v1/credit_notes/{id}", lambda p, m: self.render(self.get("credit_note", m["id"])))
        r(router, "POST", "/v1/credit_notes/{id}/void", lambda p, m: self.render(self.void_credit_note(m["id"])))
        r(router, "GET", "/v1/balance_transactions", lambda p, m: self.list_balance_transactions(p))
        r(router, "GET", "/v1/balance_transactions/{id}", lambda p, m: self.render(self.get("balance_transaction", m["id"])))
        r(router, "GET", "/v1/events", lambda p, m: self.list_events(p))
        r(router, "GET", "/v1/events/{id}", lambda p, m: self.retrieve_event(m["id"]))
        r(router, "POST", "/v1/webhook_endpoints", lambda p, m: self.create_webhook_endpoint(p))
        r(router, "GET", "/v1/webhook_endpoints", lambda p, m: self.list_kind("webhook_endpoint", p, "/v1/webhook_endpoints"))
        r(router, "GET", "/v1/webhook_endpoints/{id}", lambda p, m: self.render(self.get("webhook_endpoint", m["id"])))
        r(router, "POST", "/v1/webhook_endpoints/{id}", lambda p, m: self.update_webhook_endpoint(m["id"], p))
        r(router, "DELETE", "/v1/webhook_endpoints/{id}", lambda p, m: self.delete_simple("webhook_endpoint", m["id"]))
        r(router, "POST", "/v1/billing/meters", lambda p, m: self.create_meter(p))
        r(router, "GET", "/v1/billing/meters", lambda p, m: self.list_kind("billing.meter", p, "/v1/billing/meters", ("status",)))
        r(router, "GET", "/v1/billing/meters/{id}", lambda p, m: self.render(self.get("billing.meter", m["id"])))
        r(router, "GET", "/v1/billing/meters/{id}/event_summaries", lambda p, m: self.meter_summaries(m["id"], p))
        r(router, "POST", "/v1/billing/meter_events", lambda p, m: self.create_meter_event(p))
        router.add_post(CONTROL + "rate_limit", self._control_rate_limit)
        router.add_get(CONTROL + "deliveries", self._control_deliveries)
        self.add_version_routes(router)  # GET/POST /__emulator/api_version
        self.add_payout_routes(router, r)  # /v1/balance, /v1/payouts, POST /__emulator/payout
        self.add_more_routes(router, r)  # payment methods, intents, disputes, balance, realism
        self.add_invoice_payment_routes(router, r)  # GET /v1/invoice_payments[/{id}]
        self.add_account_routes(router, r)  # /v1/account, /v1/accounts, /v1/accounts/{id}
        self.add_plan_routes(router, r)  # /v1/plans, /v1/plans/{id}: recurring prices as plans
        self.add_empty_list_routes(router, r)  # kinds the account has none of (Issuing, Checkout ...)

    async def _control_rate_limit(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.rate_limit = float(body.get("per_second", self.rate_limit))
        return web.json_response({"per_second": self.rate_limit})

    async def _control_deliveries(self, request: web.Request) -> web.Response:
        return web.json_response({"deliveries": self.deliveries})

    async def _clock(self, request: web.Request) -> web.Response:
        response = await super()._clock(request)
        renewed = self.renew_subscriptions()  # and the payment retries due (collection.py)
        return web.json_response({"now": self.clock.now().isoformat(), "renewed_invoices": renewed}) \
            if renewed else response

    # ------------------------------------------------------------------ seeding

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.seed_objects(body)

    def seed_objects(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create objects as if through the API (events included); see the module docstring."""
        refs: dict[str, str] = {}
        created: dict[str, list[str]] = {}

        def resolve(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("@"):
                if value[1:] not in refs:
                    raise invalid(f"seed: unknown reference {value}")
                return refs[value[1:]]
            if isinstance(value, list):
                return [resolve(v) for v in value]
            if isinstance(value, dict):
                return {k: resolve(v) for k, v in value.items()}
            return value

        creators: dict[str, Callable[[Params], dict[str, Any]]] = {
            "tax_rates": self.create_tax_rate, "customers": self.create_customer,
            "products": self.create_product, "prices": self.create_price,
            "coupons": self.create_coupon, "promotion_codes": self.create_promotion_code,
            "meters": self.create_meter, "subscriptions": self.create_subscription,
            "invoices": self._seed_invoice, "refunds": self.create_refund,
            "credit_notes": self.create_credit_note,
        }
        try:
            for kind, create in creators.items():
                for spec in body.get(kind) or []:
                    spec = resolve(dict(spec))
                    ref = spec.pop("ref", None)
                    obj = create(spec)
                    created.setdefault(kind, []).append(obj["id"])
                    if ref:
                        refs[str(ref)] = obj["id"]
        except StripeAPIError as exc:
            return {"error": exc.message, "created": created, "refs": refs}
        return {"created": created, "refs": refs}

    def _seed_invoice(self, spec: Params) -> dict[str, Any]:
        items = spec.pop("items", [])
        status = spec.pop("status", "open")
        spec.setdefault("collection_method", "send_invoice")
        if spec["collection_method"] == "send_invoice":
            spec.setdefault("days_until_due", 30)
        inv = self.create_invoice(spec)
        for item in items:
            self.create_invoice_item({**item, "customer": inv["customer"], "invoice": inv["id"]})
        if status != "draft":
            self.finalize_invoice(inv["id"])
        if status == "paid" and self.table("invoice")[inv["id"]]["status"] == "open":
            self.pay_invoice(inv["id"], {"payment_method": "pm_card_visa"})  # seeded as paid by card
        elif status in ("void", "uncollectible"):
            self.transition(inv["id"], status)
        return self.table("invoice")[inv["id"]]

