"""The emulator refuses what Stripe refuses, in Stripe's JSON error envelope: unknown paths and
methods (404), unknown parameters and expansions (400, ``param`` and ``code``), missing or bad
keys (401); it takes HTTP Basic auth, filters customers by exact email, and fills the fields
Stripe includes only when expanded (``customer.sources``, ``charge.refunds``).

Through the official SDK where it can form the request, raw HTTP where it cannot (a path the SDK
has no method for, Basic auth, a key-less call).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe

from connectors.emulation import RunningEmulator
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.emulator.gen_params import DEFAULT_SPEC, build, route_key
from connectors.stripe.emulator.store import API_VERSION
from connectors.stripe.emulator.strict import TABLE, check_request, operation
from connectors.stripe.emulator.wire import StripeAPIError
from tests.connectors.stripe.conftest import API_KEY
from tests.connectors.stripe.helpers import company

UNRECOGNIZED_TAIL = " Please see https://stripe.com/docs or we can help at https://support.stripe.com/."


# Routes served for older API versions only, which the current spec no longer has (so nothing
# checks their parameters): usage records went with 2025-03-31.basil.
LEGACY_ROUTES = {"GET /v1/subscription_items/{}/usage_record_summaries"}


def _error(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    assert response.headers.get("Request-Id", "").startswith("req_")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


def _bad(params: dict[str, Any]) -> Any:
    """Parameters the SDK's types refuse, sent as they are (what a caller's typo does)."""
    return params


def _raw(running: RunningEmulator, method: str, path: str, *, key: str | None = API_KEY,
         **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.request(method, running.base_url + path, headers=headers, timeout=10, **kwargs)


# ------------------------------------------------------------------ 404 and 405: the envelope


def test_an_unknown_path_is_stripes_json_404(running_stripe: RunningEmulator, emulator: StripeEmulator,
                                             raw_client: stripe.StripeClient) -> None:
    error = _error(response := _raw(running_stripe, "GET", "/v1/foo"))
    assert response.status_code == 404
    assert error == {"type": "invalid_request_error",
                     "message": "Unrecognized request URL (GET: /v1/foo)." + UNRECOGNIZED_TAIL}
    with pytest.raises(stripe.InvalidRequestError) as raised:  # the SDK reads it as Stripe's
        raw_client.raw_request("get", "/v1/foo")
    assert raised.value.http_status == 404
    assert raised.value.user_message == "Unrecognized request URL (GET: /v1/foo)." + UNRECOGNIZED_TAIL


def test_a_method_a_path_does_not_take_is_a_404_too(running_stripe: RunningEmulator, emulator: StripeEmulator,
                                                    raw_client: stripe.StripeClient) -> None:
    price = company(emulator)["refs"]["basic_m"]
    response = _raw(running_stripe, "DELETE", f"/v1/prices/{price}")
    assert response.status_code == 404  # not aiohttp's plain-text 405
    assert _error(response)["message"] == f"Unrecognized request URL (DELETE: /v1/prices/{price})." + UNRECOGNIZED_TAIL
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.raw_request("post", "/v1/charges/ch_nope/void")
    assert raised.value.http_status == 404
    assert "(POST: /v1/charges/ch_nope/void)" in str(raised.value.user_message)


def test_a_trailing_slash_gets_stripes_hint(running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    response = _raw(running_stripe, "GET", "/v1/customers/")
    assert response.status_code == 404
    message = _error(response)["message"]
    assert message.startswith("Unrecognized request URL (GET: /v1/customers/). If you are trying to list "
                              "objects, remove the trailing slash.")


def test_the_key_is_checked_before_the_path(running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    response = _raw(running_stripe, "GET", "/v1/foo", key=None)
    assert response.status_code == 401
    assert _error(response)["message"].startswith("You did not provide an API key.")


# ------------------------------------------------------------------ 401 and Basic auth


def test_no_key_and_a_bad_key_are_401_envelopes(running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    missing = _raw(running_stripe, "GET", "/v1/customers", key=None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Basic realm="Stripe"'
    assert _error(missing)["type"] == "invalid_request_error"
    bad = _raw(running_stripe, "GET", "/v1/customers", key="sk_live_notmine1234")
    assert bad.status_code == 401
    assert _error(bad) == {"type": "invalid_request_error", "code": "api_key_invalid",
                           "doc_url": "https://stripe.com/docs/error-codes/api-key-invalid",
                           "message": "Invalid API Key provided: sk_live_****1234"}
    bad_client = stripe.StripeClient("sk_live_notmine1234", base_addresses={"api": running_stripe.base_url},
                                     max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        bad_client.v1.customers.list()


def test_http_basic_auth_with_the_key_as_user_name(running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    company(emulator)
    listed = requests.get(f"{running_stripe.base_url}/v1/customers", auth=(API_KEY, ""), timeout=10)
    assert listed.status_code == 200
    assert len(listed.json()["data"]) == 3
    created = requests.post(f"{running_stripe.base_url}/v1/customers", auth=(API_KEY, ""),
                            data={"name": "Basic Ltd"}, timeout=10)
    assert created.status_code == 200 and created.json()["name"] == "Basic Ltd"
    wrong = requests.get(f"{running_stripe.base_url}/v1/customers", auth=("sk_live_wrong0000", ""), timeout=10)
    assert wrong.status_code == 401 and _error(wrong)["code"] == "api_key_invalid"
    empty = requests.get(f"{running_stripe.base_url}/v1/customers", auth=("", ""), timeout=10)
    assert empty.status_code == 401 and "did not provide an API key" in _error(empty)["message"]


# ------------------------------------------------------------------ 400: parameters


def test_an_unknown_parameter_is_400_parameter_unknown(raw_client: stripe.StripeClient,
                                                       emulator: StripeEmulator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.customers.create(params=_bad({"name": "X", "nmae": "typo"}))
    error = raised.value
    assert error.http_status == 400
    assert (error.code, error.param) == ("parameter_unknown", "nmae")
    assert error.user_message == "Received unknown parameter: nmae"
    assert isinstance(error.json_body, dict)
    assert error.json_body["error"]["doc_url"] == "https://stripe.com/docs/error-codes/parameter-unknown"
    assert not emulator.live("customer")  # refused before anything was made


def test_unknown_keys_of_object_and_array_parameters(raw_client: stripe.StripeClient,
                                                     emulator: StripeEmulator) -> None:
    refs = company(emulator)["refs"]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.customers.create(params=_bad({"address": {"line1": "1 Road", "planet": "Mars"}}))
    assert (raised.value.code, raised.value.param) == ("parameter_unknown", "address[planet]")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.subscriptions.create(params=_bad({"customer": refs["acme"], "items": [
            {"price": refs["basic_m"]}, {"price": refs["pro_m"], "qty": 2}]}))
    assert raised.value.param == "items[1][qty]"
    # metadata keys are the caller's own: any key goes
    made = raw_client.v1.customers.create(params={"name": "Meta", "metadata": {"anything_at_all": "1"}})
    assert made.to_dict()["metadata"] == {"anything_at_all": "1"}


def test_an_unknown_query_parameter_on_a_read(raw_client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.customers.list(params=_bad({"status": "active"}))
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (400, "parameter_unknown", "status")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.customers.list(params=_bad({"created": {"after": 5}}))
    assert raised.value.param == "created[after]"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.customers.list(params=_bad({"limit": "ten"}))
    assert (raised.value.code, raised.value.param) == ("parameter_invalid_integer", "limit")
    assert raised.value.user_message == "Invalid integer: ten"


def test_a_refused_request_keeps_no_idempotent_result(raw_client: stripe.StripeClient,
                                                      emulator: StripeEmulator) -> None:
    """Stripe saves a result only once the endpoint began; a parameter it refused did not."""
    options: stripe.RequestOptions = {"idempotency_key": "strict-retry-1"}
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.customers.create(params=_bad({"name": "Once", "colour": "red"}), options=options)
    made = raw_client.v1.customers.create(params={"name": "Once"}, options=options)
    assert made.name == "Once"
    assert [c["id"] for c in emulator.live("customer")] == [made.id]


def test_type_and_types_together_are_refused(raw_client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    company(emulator)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.events.list(params={"type": "customer.created", "types": ["customer.updated"]})
    assert raised.value.http_status == 400
    assert raised.value.code == "parameters_exclusive"
    assert raised.value.user_message == "You may only specify one of these parameters: type, types."
    assert len(raw_client.v1.events.list(params={"types": ["customer.created"]}).data) == 3
    assert len(raw_client.v1.events.list(params={"type": "customer.*"}).data) == 3


# ------------------------------------------------------------------ the email filter


def test_customers_list_filters_by_exact_email(raw_client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    company(emulator)
    upper = raw_client.v1.customers.create(params={"name": "Upper", "email": "Billing@Acme.test"})
    found = raw_client.v1.customers.list(params={"email": "billing@acme.test"}).data
    assert [c.name for c in found] == ["Acme Inc"]  # "a case-sensitive filter" (the spec)
    assert [c.id for c in raw_client.v1.customers.list(params={"email": "Billing@Acme.test"}).data] == [upper.id]
    assert raw_client.v1.customers.list(params={"email": "nobody@acme.test"}).data == []
    assert len(raw_client.v1.customers.list().data) == 4


# ------------------------------------------------------------------ expansions


def test_an_unknown_expansion_is_400(raw_client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    cus = company(emulator)["refs"]["acme"]
    for path, params in ((f"/v1/customers/{cus}", ["metadata"]), ("/v1/customers", ["customer"]),
                         ("/v1/customers", ["data.foo"]), (f"/v1/customers/{cus}", ["sources.data.foo"])):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            raw_client.raw_request("get", path, expand=params)
        assert raised.value.http_status == 400
        assert raised.value.user_message == f"This property cannot be expanded ({params[0]})."
        assert raised.value.code is None
    with pytest.raises(stripe.InvalidRequestError) as raised:
        raw_client.v1.subscriptions.list(params={"expand": ["data.items.data.price.product"]})
    assert raised.value.code == "property_expansion_max_depth"
    assert raised.value.user_message == ("You cannot expand more than 4 levels of a property. "
                                         "Property: data.items.data.price.product")


def test_customer_sources_and_subscriptions_are_includable(raw_client: stripe.StripeClient,
                                                           emulator: StripeEmulator) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]})
    plain = raw_client.v1.customers.retrieve(refs["acme"]).to_dict()
    assert "sources" not in plain and "subscriptions" not in plain
    full = raw_client.v1.customers.retrieve(refs["acme"], params={
        "expand": ["sources", "subscriptions", "tax_ids"]}).to_dict()
    assert full["sources"] == {"object": "list", "data": [], "has_more": False,
                               "url": f"/v1/customers/{refs['acme']}/sources"}
    assert [s["id"] for s in full["subscriptions"]["data"]] == [sub.id]
    assert full["subscriptions"]["url"] == f"/v1/customers/{refs['acme']}/subscriptions"
    assert full["tax_ids"]["data"] == []
    listed = raw_client.v1.customers.list(params={"expand": ["data.sources"]}).to_dict()["data"]
    assert len(listed) == 3 and all(c["sources"]["object"] == "list" for c in listed)


def test_charge_refunds_expand_with_their_balance_transactions(raw_client: stripe.StripeClient,
                                                               emulator: StripeEmulator) -> None:
    refs = company(emulator)["refs"]
    emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd", "status": "paid",
                                         "items": [{"amount": 5000, "description": "Seats"}]}]})
    charge = emulator.live("charge")[0]
    first = raw_client.v1.refunds.create(params={"charge": charge["id"], "amount": 1000})
    second = raw_client.v1.refunds.create(params={"charge": charge["id"], "amount": 500})
    assert "refunds" not in raw_client.v1.charges.retrieve(charge["id"]).to_dict()
    got = raw_client.v1.charges.retrieve(charge["id"], params={
        "expand": ["refunds.data.balance_transaction", "customer", "payment_intent"]}).to_dict()
    assert [r["id"] for r in got["refunds"]["data"]] == [second.id, first.id]  # newest first
    assert got["refunds"]["url"] == f"/v1/charges/{charge['id']}/refunds"
    assert got["refunds"]["data"][0]["balance_transaction"]["amount"] < 0
    assert got["customer"]["id"] == refs["acme"] and got["payment_intent"]["object"] == "payment_intent"
    listed = raw_client.v1.charges.list(params={"expand": ["data.refunds"]}).to_dict()["data"]
    assert [len(c["refunds"]["data"]) for c in listed] == [2]


def test_every_expandable_id_the_emulator_holds_is_expanded(raw_client: stripe.StripeClient,
                                                            emulator: StripeEmulator) -> None:
    refs = company(emulator)["refs"]
    emulator.seed_objects({"invoices": [{"customer": refs["gmbh"], "currency": "eur", "status": "paid",
                                         "default_tax_rates": [refs["vat"]],
                                         "items": [{"amount": 1000, "description": "Work"}]}]})
    invoice = raw_client.v1.invoices.list(params={
        "expand": ["data.customer", "data.default_tax_rates"]}).to_dict()["data"][0]
    assert invoice["customer"]["name"] == "Beispiel GmbH"
    assert invoice["default_tax_rates"][0]["display_name"] == "VAT"
    pi = raw_client.v1.payment_intents.list(params={
        "expand": ["data.latest_charge.balance_transaction"]}).to_dict()["data"][0]
    assert pi["latest_charge"]["balance_transaction"]["object"] == "balance_transaction"
    price = raw_client.v1.prices.retrieve(refs["basic_m"], params={"expand": ["product"]}).to_dict()
    assert price["product"]["name"] == "Basic"


def test_a_request_in_an_older_version_is_not_held_to_the_current_spec(emulator: StripeEmulator) -> None:
    """Before 2025-03-31 an invoice's charge and payment_intent could be expanded; the spec (one
    version) does not say so, so only requests in the spec's version or later are checked."""
    resource = next(r.resource for r in emulator.app.router.routes()
                    if r.method == "GET" and r.resource is not None and r.resource.canonical == "/v1/invoices/{id}")
    old = {"expand": ["payment_intent", "charge"]}
    check_request("GET", resource, old, "2024-06-20")
    check_request("GET", resource, {"expand": ["customer"]}, API_VERSION)
    with pytest.raises(StripeAPIError) as raised:
        check_request("GET", resource, old, API_VERSION)
    assert raised.value.message == "This property cannot be expanded (payment_intent)."


# ------------------------------------------------------------------ the table


def test_every_route_the_emulator_serves_is_in_the_spec_table(emulator: StripeEmulator) -> None:
    served = [(route.method, route.resource.canonical) for route in emulator.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/v1/")]
    assert len(served) > 50
    missing = {route_key(m, t) for m, t in served if operation(m, t) is None}
    assert missing <= LEGACY_ROUTES, f"not in params.json: {sorted(missing - LEGACY_ROUTES)}"


@pytest.mark.skipif(not DEFAULT_SPEC.exists(), reason="the vendored spec is not beside this checkout")
def test_the_checked_in_table_is_the_generators_output() -> None:
    """params.json must be regenerated (python -m connectors.stripe.emulator.gen_params) when
    the spec changes: a stale table would refuse or pass the wrong parameters."""
    fresh = build(json.loads(DEFAULT_SPEC.read_text(encoding="utf-8")))
    assert json.loads(TABLE.read_text(encoding="utf-8")) == fresh
    assert route_key("get", "/v1/customers/{customer}") == route_key("GET", "/v1/customers/{id}")
