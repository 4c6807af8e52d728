"""Emulator wire behaviour the connector relies on: requestid replay, batch limits and per-item
faults, real throttles answered with the XML 429, stale tokens inside a batch."""

from __future__ import annotations

import json

import pytest

from connectors.base import InvalidError, Outbound, RateLimited
from mapping.model import Customer
from mapping.quickbooks import customer_from_canonical
from tests.connectors.quickbooks.conftest import QboEnv


def test_repeated_requestid_returns_the_original_answer_and_changes_nothing(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    body = json.dumps({"DisplayName": "Replay Ltd"})
    first = connector.client.call(lambda qb: qb.create_object("Customer", body, request_id="rq-1"))
    second = connector.client.call(lambda qb: qb.create_object("Customer", body, request_id="rq-1"))
    assert first == second
    assert len(qbo_env.table("Customer")) == 1


def test_batch_over_thirty_items_is_refused(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    body = json.dumps({"BatchItemRequest": [{"bId": str(i), "operation": "create", "Customer": {"DisplayName": f"B{i}"}}
                                            for i in range(31)]})
    with pytest.raises(InvalidError, match="30"):
        connector.client.call(lambda qb: qb.batch_operation(body))
    assert not qbo_env.table("Customer")


def test_one_bad_item_in_a_batch_fails_alone(qbo_env: QboEnv) -> None:
    (customer,) = qbo_env.seed(Customer=[{"DisplayName": "Buyer"}])["Customer"]
    connector = qbo_env.connector()
    line = [{"DetailType": "SalesItemLineDetail", "Amount": "5.00", "SalesItemLineDetail": {}}]
    items = [Outbound("invoice", f"h{i}", {"CustomerRef": {"value": ref}, "Line": line}, idempotency_key=f"k{i}")
             for i, ref in enumerate([customer, "999", customer])]
    results = connector.upsert("invoice", items)
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, InvalidError) and "2500" in str(results[1].error)
    assert len(qbo_env.table("Invoice")) == 2


def test_stale_synctoken_inside_a_batch_is_reread_and_reapplied(qbo_env: QboEnv) -> None:
    a, b = qbo_env.seed(Customer=[{"DisplayName": "A"}, {"DisplayName": "B"}])["Customer"]
    connector = qbo_env.connector()
    qbo_env.on_loop(lambda: qbo_env.emulator.edit(qbo_env.realm, "Customer", b, {"CompanyName": "Moved"}))
    items = [Outbound("customer", f"c{ext}", customer_from_canonical(Customer(id="x", name=name, email=f"{name}@x.example")),
                      idempotency_key=f"k{ext}", external_id=ext, remote_version="0")
             for ext, name in ((a, "A"), (b, "B"))]
    results = connector.upsert("customer", items)
    assert all(r.ok for r in results), [r.error for r in results]
    assert qbo_env.table("Customer")[b]["PrimaryEmailAddr"] == {"Address": "B@x.example"}
    assert qbo_env.table("Customer")[b]["CompanyName"] == "Moved"


def test_real_throttle_answers_xml_429_and_the_connector_gives_up_with_rate_limited(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector(config={"max_attempts": 3})
    connector.policy.max_attempts = 3
    qbo_env.emulator.throttle.per_minute = 2
    connector.lookup("customer", "one")
    connector.lookup("customer", "two")
    with pytest.raises(RateLimited) as err:
        connector.lookup("customer", "three")
    assert err.value.retry_after == 60.0
    throttled = [r for r in qbo_env.emulator.stats.requests if r["status"] == 429]
    assert len(throttled) == 3
    assert qbo_env.emulator.stats.faults_injected["throttle"] == 3
