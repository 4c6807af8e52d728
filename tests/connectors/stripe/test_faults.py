"""Faults: lost outcomes, 429 bursts, the emulator's own rate limit, and credential hygiene."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
import requests

from connectors.base import AuthError, Outbound, RetryableError
from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector, build
from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.conftest import API_KEY, Waits, make_config, seed
from tests.connectors.stripe.helpers import drain


def _customer(hub_id: str) -> Outbound:
    return Outbound("customer", hub_id, {"name": "Lost Outcome Ltd", "email": "lost@example.com"},
                    idempotency_key=f"op-{hub_id}")


def _marked(emulator: StripeEmulator, hub_id: str) -> int:
    return sum(1 for c in emulator.live("customer") if c["metadata"].get("hub_id") == hub_id)


@pytest.mark.parametrize("drop_connection", [False, True], ids=["500-after-commit", "dropped-connection"])
def test_apply_then_fail_on_customer_create_leaves_exactly_one_customer(
        emulator: StripeEmulator, connector: StripeConnector, drop_connection: bool) -> None:
    emulator.set_faults(apply_then_fail=1, drop_connection=drop_connection, path_prefix="/v1/customers")
    (result,) = connector.upsert("customer", [_customer("hub-atf")])
    assert result.ok, result.error
    assert _marked(emulator, "hub-atf") == 1
    assert emulator.stats.faults_injected["apply_then_fail"] == 1
    assert emulator.stats.calls["POST /v1/customers"] == 2  # the retry replayed, it did not create


def test_retried_sync_after_unknown_outcome_looks_up_before_creating(
        running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    # One attempt per call: the unknown outcome reaches the engine, which retries with attempt=2.
    waits = Waits(emulator)
    conn = build(make_config(running_stripe.base_url, max_attempts=1), None, sleep=waits,
                 clock=emulator.clock.now)
    try:
        emulator.set_faults(apply_then_fail=1, path_prefix="/v1/customers")
        item = _customer("hub-engine-retry")
        (first,) = conn.upsert("customer", [item])
        assert isinstance(first.error, RetryableError)
        assert _marked(emulator, "hub-engine-retry") == 1  # it did commit
        retry = dataclasses.replace(item, attempt=2, idempotency_key="op-hub-engine-retry-2")
        (second,) = conn.upsert("customer", [retry])
        assert second.ok and not second.created
        assert _marked(emulator, "hub-engine-retry") == 1
        assert emulator.stats.calls["GET /v1/customers/search"] == 1
        assert first.external_id is None and second.external_id == emulator.live("customer")[0]["id"]
    finally:
        conn.close()


def test_429_burst_is_waited_out_and_the_request_log_shows_the_wait(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        waits: Waits) -> None:
    seed(running_stripe, {"customers": [{"name": f"C{i}"} for i in range(250)]})
    emulator.set_faults(burst_429=3, retry_after=2)
    records, _ = drain(connector.fetch_all("customer"))
    assert len({r.external_id for r in records}) == 250
    assert waits.waits[:3] == [2.0, 2.0, 2.0]
    log = [r for r in emulator.stats.requests if r["path"] == "/v1/customers"]
    statuses = [r["status"] for r in log]
    assert statuses == [429, 429, 429, 200, 200, 200]
    times = [datetime.fromisoformat(r["at"]) for r in log]
    for before, after in zip(times[:3], times[1:4], strict=True):
        assert (after - before).total_seconds() >= 2.0, "the next request came before Retry-After"


def test_emulator_rate_limit_answers_429_in_stripes_error_envelope(
        running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    second = [100.0]
    emulator.rate_clock = lambda: second[0]
    requests.post(f"{running_stripe.base_url}/__emulator/rate_limit", json={"per_second": 3},
                  timeout=10).raise_for_status()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    answers = [requests.get(f"{running_stripe.base_url}/v1/customers", headers=headers, timeout=10)
               for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    error = answers[-1].json()["error"]
    assert error["code"] == "rate_limit" and error["type"] == "invalid_request_error"
    second[0] += 1  # a new second: the budget refills
    again = requests.get(f"{running_stripe.base_url}/v1/customers", headers=headers, timeout=10)
    assert again.status_code == 200


def test_sustained_rate_limit_is_survived_by_the_connector(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        waits: Waits) -> None:
    seed(running_stripe, {"customers": [{"name": f"C{i}"} for i in range(30)]})
    emulator.set_faults(burst_429=2, retry_after=1)
    records, _ = drain(connector.fetch_all("customer"))
    assert len(records) == 30 and sum(waits.waits) >= 2.0


def test_refused_api_key_is_an_auth_error_that_never_shows_the_key(
        running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    emulator.api_keys = {API_KEY}
    bad_key = "sk_test_SECRETSECRETSECRET1234"
    conn = build(make_config(running_stripe.base_url, api_key=bad_key), None,
                 sleep=lambda _s: None, clock=emulator.clock.now)
    try:
        with pytest.raises(AuthError) as caught:
            drain(conn.fetch_all("customer"))
        assert caught.value.needs_reauth
        for text in (str(caught.value), repr(caught.value), repr(conn), repr(conn.api)):
            assert "SECRETSECRET" not in text
    finally:
        emulator.api_keys = None
        conn.close()


def test_server_errors_are_retried_and_then_reported_as_retryable(
        emulator: StripeEmulator, connector: StripeConnector, waits: Waits) -> None:
    emulator.set_faults(error_rate=1.0)
    with pytest.raises(RetryableError):
        drain(connector.fetch_all("customer"))
    assert len(waits.waits) == 5  # six attempts, five backoffs
    assert emulator.stats.faults_injected["5xx"] == 6
