"""Fidelity: every response the connector receives from the emulator validates against Stripe's
own OpenAPI spec (``shared/specs/stripe/spec3.json``), and the check covers every endpoint the
connector calls.

Errors are validated too: on a documented operation against its ``default`` (the ``error``
schema), and an answer to a path or method the spec does not have (the emulator's 404) against
the ``error`` schema itself.

Stripe's spec puts ``nullable: true`` beside ``anyOf``/``enum`` (which OpenAPI 3.0 validators do
not apply to those keywords), so a null branch is added before validating.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import stripe
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from connectors.base import Outbound
from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.streams import STREAMS
from connectors.stripe.writes import UsageEvent
from tests.connectors.stripe.helpers import company, drain

SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "stripe" / "spec3.json"
if not SPEC.exists():  # the checkout may live elsewhere; the shared folder sits beside it
    SPEC = Path("/work/shared/specs/stripe/spec3.json")

# Every (method, route) the connector's reads, writes, lookups and usage calls use.
CONNECTOR_ENDPOINTS = {
    ("GET", "/v1/customers"), ("GET", "/v1/products"), ("GET", "/v1/prices"),
    ("GET", "/v1/subscriptions"), ("GET", "/v1/invoices"), ("GET", "/v1/payment_intents"),
    ("GET", "/v1/refunds"), ("GET", "/v1/credit_notes"), ("GET", "/v1/events"),
    ("GET", "/v1/credit_notes/{id}/lines"),
    ("GET", "/v1/payment_intents/{id}"), ("GET", "/v1/refunds/{id}"), ("GET", "/v1/tax_rates/{id}"),
    ("GET", "/v1/invoices/{id}/lines"), ("GET", "/v1/prices/{id}"), ("GET", "/v1/subscriptions/{id}"),
    ("GET", "/v1/invoices/{id}"), ("GET", "/v1/invoice_payments"),
    ("GET", "/v1/customers/search"), ("GET", "/v1/products/search"), ("GET", "/v1/prices/search"),
    ("GET", "/v1/subscriptions/search"), ("GET", "/v1/invoices/search"),
    ("POST", "/v1/customers"), ("POST", "/v1/customers/{id}"), ("DELETE", "/v1/customers/{id}"),
    ("POST", "/v1/products"), ("POST", "/v1/products/{id}"),
    ("POST", "/v1/prices"), ("POST", "/v1/prices/{id}"),
    ("POST", "/v1/subscriptions"), ("POST", "/v1/subscriptions/{id}"), ("DELETE", "/v1/subscriptions/{id}"),
    ("POST", "/v1/invoices"), ("POST", "/v1/invoices/{id}"), ("POST", "/v1/invoiceitems"),
    ("POST", "/v1/invoices/{id}/finalize"), ("POST", "/v1/invoices/{id}/void"), ("DELETE", "/v1/invoices/{id}"),
    ("POST", "/v1/billing/meter_events"),
}


def _add_null_branches(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("nullable") is True:
            if "anyOf" in node:
                node["anyOf"].append({"type": "string", "nullable": True, "enum": [None]})
            if "enum" in node and None not in node["enum"]:
                node["enum"].append(None)
        for value in node.values():
            _add_null_branches(value)
    elif isinstance(node, list):
        for value in node:
            _add_null_branches(value)


@functools.cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    _add_null_branches(spec)
    return spec


@pytest.fixture(scope="session")
def stripe_openapi() -> OpenAPI:
    return OpenAPI.from_dict(_spec())


@pytest.fixture(scope="session")
def error_schema() -> OAS30Validator:
    """The spec's ``error`` schema, for answers to paths the spec does not have."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:stripe-spec", Resource.from_contents(_spec(), default_specification=DRAFT4))
    return OAS30Validator({"$ref": "urn:stripe-spec#/components/schemas/error"}, registry=registry)


def _validate(api: OpenAPI, exchanges: list[dict[str, Any]],
              error_schema: OAS30Validator | None = None) -> list[str]:
    problems = []
    for ex in exchanges:
        request = MockRequest("https://api.stripe.com", ex["method"], ex["path"],
                              args=dict(parse_qsl(ex["query"])), content_type="application/x-www-form-urlencoded")
        response = MockResponse(json.dumps(ex["body"]).encode(), status_code=ex["status"])
        try:
            api.validate_response(request, response)
        except PathError as exc:  # no such path or method in the spec: only an error may answer
            if error_schema is None or ex["status"] < 400:
                problems.append(f"{ex['method']} {ex['template']} {ex['status']}: {exc}")
                continue
            problems += [f"{ex['method']} {ex['template']} {ex['status']}: {e.message[:400]}"
                         for e in error_schema.iter_errors(ex["body"])]
        except Exception as exc:  # collect every mismatch, then fail once with all of them
            detail = getattr(exc.__cause__, "schema_errors", None) or [exc]
            problems.append(f"{ex['method']} {ex['template']} {ex['status']}: "
                            + "; ".join(str(getattr(d, 'message', d))[:400] for d in detail))
    return problems


def _drive_connector(emulator: StripeEmulator, connector: StripeConnector,
                     raw: stripe.StripeClient) -> None:
    """Exercise every read, write, lookup and usage path of the connector."""
    refs = company(emulator)["refs"]
    sub = raw.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}],
                                              "default_tax_rates": [refs["vat"]]})
    emulator.seed_objects({"invoices": [
        {"customer": refs["kaisha"], "currency": "jpy", "status": "paid",
         "items": [{"price": refs["setup_jpy"], "quantity": 2}]},
        {"customer": refs["gmbh"], "currency": "eur", "status": "open", "default_tax_rates": [refs["vat"]],
         "items": [{"amount": 100 + n, "description": f"Line {n}"} for n in range(12)]}]})
    pi = emulator.live("payment_intent")[0]
    refund = emulator.create_refund({"payment_intent": pi["id"], "amount": 100})
    paid = next(i for i in emulator.live("invoice") if i["status"] == "paid")
    emulator.create_credit_note({"invoice": paid["id"], "lines": [
        {"type": "custom_line_item", "unit_amount": 50, "quantity": 1, "description": "Goodwill"}],
        "out_of_band_amount": 50})
    # a credit note of 12 lines: 10 embedded, the rest read from its lines list
    gmbh_invoice = next(i for i in emulator.live("invoice") if i["customer"] == refs["gmbh"])
    emulator.create_credit_note({"invoice": gmbh_invoice["id"], "lines": [
        {"type": "invoice_line_item", "invoice_line_item": line["id"], "amount": 10}
        for line in gmbh_invoice["_lines"]]})
    emulator.record_exchanges = True
    cursors = {}
    for entity_type in STREAMS:
        drain(connector.fetch_all(entity_type))
        _records, cursors[entity_type] = drain(connector.fetch_changes(entity_type, None))
    emulator.clock.advance(3600)
    raw.v1.subscriptions.update(sub.id, params={"metadata": {"touched": "1"}})
    emulator.create_refund({"payment_intent": pi["id"], "amount": 50})
    emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd", "status": "paid",
                                         "items": [{"amount": 700, "description": "Late"}]}]})
    for entity_type in STREAMS:
        drain(connector.fetch_changes(entity_type, cursors[entity_type]))
    assert refund["id"]
    # writes of every kind, with lookups on a retried attempt
    def out(entity_type: str, hub: str, payload: dict[str, Any], **kw: Any) -> Outbound:
        return Outbound(entity_type, hub, payload, idempotency_key=f"spec-{hub}-{len(kw)}", **kw)
    (cus,) = connector.upsert("customer", [out("customer", "h-c", {"name": "Spec", "email": "s@x.test"})])
    connector.upsert("customer", [out("customer", "h-c", {"name": "Spec 2"}, external_id=cus.external_id)])
    assert connector.lookup("customer", "h-c") is not None
    (prod,) = connector.upsert("product", [out("product", "h-p", {"name": "Spec"}, attempt=2)])
    connector.upsert("product", [out("product", "h-p", {"name": "Spec+"}, external_id=prod.external_id)])
    price_payload = {"product": prod.external_id, "currency": "usd", "unit_amount": 900,
                     "recurring": {"interval": "month"}}
    (price,) = connector.upsert("price", [out("price", "h-pr", price_payload, attempt=2)])
    connector.upsert("price", [out("price", "h-pr", {**price_payload, "unit_amount": 950},
                                   external_id=price.external_id)])
    sub_payload = {"customer": cus.external_id, "items": [{"price": refs["basic_m"]}]}
    (new_sub,) = connector.upsert("subscription", [out("subscription", "h-s", sub_payload, attempt=2)])
    connector.upsert("subscription", [out("subscription", "h-s", {**sub_payload, "items": [{"price": refs["pro_m"]}]},
                                          external_id=new_sub.external_id)])
    connector.upsert("subscription", [out("subscription", "h-s", sub_payload, external_id=new_sub.external_id,
                                          operation="delete")])
    inv_payload = {"customer": cus.external_id, "currency": "usd", "collection_method": "send_invoice",
                   "days_until_due": 14, "lines": [{"amount": 1200, "currency": "usd", "description": "One-off"}]}
    (inv,) = connector.upsert("invoice", [out("invoice", "h-i", inv_payload, attempt=2)])
    connector.upsert("invoice", [out("invoice", "h-i", {"description": "memo"}, external_id=inv.external_id)])
    connector.upsert("invoice", [out("invoice", "h-i", {}, external_id=inv.external_id, operation="void")])
    draft_payload = {**inv_payload, "finalize": False}
    (draft,) = connector.upsert("invoice", [out("invoice", "h-d", draft_payload)])
    connector.upsert("invoice", [out("invoice", "h-d", {}, external_id=draft.external_id, operation="delete")])
    connector.upsert("customer", [dataclasses.replace(out("customer", "h-c", {}, external_id=cus.external_id),
                                                      operation="delete")])
    raw.v1.billing.meters.create(params={"display_name": "Calls", "event_name": "calls",
                                         "default_aggregation": {"formula": "sum"}})
    usage = [UsageEvent("spec-usage-1", "calls", refs["acme"], 3)]
    connector.record_usage(usage)
    emulator.idempotency.clear()
    connector.record_usage(usage)  # duplicate identifier: the error envelope is validated too


def test_every_connector_endpoint_answers_in_stripes_documented_shape(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    _drive_connector(emulator, connector, raw_client)
    exchanges = list(emulator.exchanges)
    covered = {(ex["method"], ex["template"]) for ex in exchanges}
    assert CONNECTOR_ENDPOINTS <= covered, f"not exercised: {sorted(CONNECTOR_ENDPOINTS - covered)}"
    assert any(ex["status"] >= 400 for ex in exchanges)
    problems = _validate(stripe_openapi, exchanges)
    assert not problems, "\n".join(problems[:20])


def test_other_emulated_endpoints_match_the_spec(
        stripe_openapi: OpenAPI, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd", "status": "paid",
                                         "items": [{"amount": 4000, "description": "Seats"}]}]})
    emulator.record_exchanges = True
    pi = raw_client.v1.payment_intents.list().data[0]
    charge = raw_client.v1.charges.retrieve(str(pi.latest_charge))
    raw_client.v1.charges.list()
    raw_client.v1.balance_transactions.retrieve(str(charge.balance_transaction))
    raw_client.v1.balance_transactions.list()
    refund = raw_client.v1.refunds.create(params={"charge": charge.id, "amount": 1000})
    invoice = raw_client.v1.invoices.list(params={"status": "paid"}).data[0]
    note = raw_client.v1.credit_notes.create(params={"invoice": invoice.id, "lines": [
        {"type": "invoice_line_item", "invoice_line_item": invoice.lines.data[0].id, "amount": 500}],
        "out_of_band_amount": 500})
    raw_client.v1.credit_notes.void_credit_note(note.id)
    raw_client.v1.tax_rates.list()
    raw_client.v1.tax_rates.create(params={"display_name": "Sales tax", "percentage": 7.25, "inclusive": False})
    endpoint = raw_client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/x",
                                                              "enabled_events": ["invoice.paid"]})
    raw_client.v1.webhook_endpoints.list()
    raw_client.v1.webhook_endpoints.delete(endpoint.id)
    meter = raw_client.v1.billing.meters.create(params={"display_name": "Seats", "event_name": "seats",
                                                        "default_aggregation": {"formula": "last"}})
    raw_client.v1.billing.meters.list()
    raw_client.v1.billing.meter_events.create(params={"event_name": "seats", "identifier": "m1",
                                                      "payload": {"stripe_customer_id": refs["acme"], "value": "4"}})
    raw_client.v1.billing.meters.event_summaries.list(meter.id, params={
        "customer": refs["acme"], "start_time": 0, "end_time": emulator.clock.timestamp() + 60})
    raw_client.v1.events.retrieve(emulator.events[-1]["id"])
    raw_client.v1.invoice_items.list()
    manual = raw_client.v1.invoices.create(params={"customer": refs["acme"], "auto_advance": False})
    raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "invoice": manual.id,
                                               "amount": 2000, "quantity": 2})
    paid = raw_client.v1.invoices.pay(manual.id, params={"paid_out_of_band": True})
    assert paid.status == "paid" and paid.amount_paid == 2000  # amount is the item total
    open_inv = emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd",
                                                    "items": [{"amount": 10, "description": "x"}]}]})
    raw_client.v1.invoices.mark_uncollectible(open_inv["created"]["invoices"][0])
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.customers.retrieve("cus_missing")
    assert refund.status == "succeeded"
    problems = _validate(stripe_openapi, list(emulator.exchanges))
    assert not problems, "\n".join(problems[:20])


def test_error_answers_match_the_spec(stripe_openapi: OpenAPI, error_schema: OAS30Validator,
                                      running_stripe: RunningEmulator, emulator: StripeEmulator,
                                      raw_client: stripe.StripeClient) -> None:
    """Every kind of error the emulator gives, in the spec's ``error`` envelope."""
    refs = company(emulator)["refs"]
    emulator.record_exchanges = True
    base = running_stripe.base_url
    requests.get(f"{base}/v1/customers", timeout=10)  # 401: no key
    requests.get(f"{base}/v1/customers", headers={"Authorization": "Bearer sk_live_x1234"}, timeout=10)
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("get", "/v1/foo", {}),  # 404: no such path
        ("delete", f"/v1/prices/{refs['basic_m']}", {}),  # 404: no such method
        ("post", "/v1/customers", {"nmae": "typo"}),  # 400 parameter_unknown
        ("post", "/v1/customers", {"address": {"planet": "Mars"}}),  # 400 parameter_unknown, nested
        ("get", f"/v1/customers/{refs['acme']}", {"expand": ["metadata"]}),  # 400 cannot be expanded
        ("get", "/v1/subscriptions", {"expand": ["data.items.data.price.product"]}),  # 400 depth
        ("get", "/v1/customers", {"limit": "ten"}),  # 400 parameter_invalid_integer
        ("get", "/v1/events", {"type": "a", "types": ["b"]}),  # 400 parameters_exclusive
        ("get", "/v1/customers/cus_missing", {}),  # 404 resource_missing
        ("post", "/v1/products", {}),  # 400 parameter_missing
    ]
    for method, path, params in calls:
        with pytest.raises(stripe.StripeError):
            raw_client.raw_request(method, path, **params)
    options: stripe.RequestOptions = {"idempotency_key": "fidelity-errors"}
    raw_client.v1.customers.create(params={"name": "A"}, options=options)
    with pytest.raises(stripe.IdempotencyError):  # 400 idempotency_error
        raw_client.v1.customers.create(params={"name": "B"}, options=options)
    emulator.rate_limit = 0
    with pytest.raises(stripe.RateLimitError):  # 429 rate_limit
        raw_client.v1.customers.list()
    emulator.rate_limit = 100_000
    errors = [ex for ex in emulator.exchanges if ex["status"] >= 400]
    assert {ex["status"] for ex in errors} == {400, 401, 404, 429}
    assert len(errors) == 2 + len(calls) + 2
    assert any(ex["body"]["error"].get("code") == "parameter_unknown" for ex in errors)
    problems = _validate(stripe_openapi, errors, error_schema)
    assert not problems, "\n".join(problems[:20])
