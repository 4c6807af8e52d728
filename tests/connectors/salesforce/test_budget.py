"""The daily API budget: tracked from Sforce-Limit-Info; scheduled reads pause above the share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.base import Outbound, QuotaExhausted
from tests.connectors.salesforce.conftest import Built, SfEnv, drain


def test_at_80_percent_of_the_daily_allocation_scheduled_reads_stop_and_status_says_why(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf.emulator.insert("Account", {"Name": "Acme"})
    built = make_connector()
    conn = built.connector
    conn.learn()  # first contact (the org's describes) before the usage is set
    sf.emulator.allocation = 1000
    sf.emulator.set_api_used(798)

    _, cursor = drain(conn.fetch_changes("customer", None))  # this call is number 799
    assert conn.health().reason is None
    drain(conn.fetch_changes("customer", cursor))  # 800/1000: now at the budget share
    assert (conn.client.api_used, conn.client.api_total) == (800, 1000)

    calls_before = sum(sf.emulator.stats.calls.values())
    with pytest.raises(QuotaExhausted) as caught:
        drain(conn.fetch_changes("customer", cursor))

    assert "800/1000" in str(caught.value) and "80%" in str(caught.value)
    assert sum(sf.emulator.stats.calls.values()) == calls_before  # stopped before calling
    with built.store.transaction() as tx:
        state = tx.connection_state("salesforce")
    assert state is not None and state["status"] == "paused" and "API budget" in state["reason"]
    health = conn.health()
    assert health.reason is not None and "800/1000" in health.reason
    assert health.budget["api_used"] == 800
    # Hub-triggered work other than scheduled reads still runs (and is counted).
    (result,) = conn.upsert("customer", [Outbound("customer", "c-1", {"Name": "Hub"}, idempotency_key="k")])
    assert result.ok

    # Usage falls once the rolling 24 h window moves on; the probe notices and reads resume.
    sf.emulator.clock.advance(24 * 3600 + 1)  # (the session expired too: one 401, one refresh)
    records, _ = drain(conn.fetch_changes("customer", cursor))
    assert [r["status"] for r in sf.emulator.stats.requests if "/limits" in r["path"]] == [401, 200]
    assert [r.data["Name"] for r in records] == ["Hub"]
    with built.store.transaction() as tx:
        resumed = tx.connection_state("salesforce")
    assert resumed is not None and resumed["status"] == "ok" and conn.health().reason is None


def test_while_paused_usage_is_re_read_at_most_once_per_probe_interval(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    conn = make_connector(budget_probe_seconds=300).connector
    conn.learn()
    sf.emulator.allocation = 100
    sf.emulator.set_api_used(95)
    drain(conn.fetch_all("customer"))
    for _ in range(3):
        with pytest.raises(QuotaExhausted):
            drain(conn.fetch_changes("customer", None))
    assert sf.emulator.stats.calls.get("GET limits", 0) == 0
    sf.emulator.clock.advance(301)
    with pytest.raises(QuotaExhausted):
        drain(conn.fetch_changes("customer", None))
    assert sf.emulator.stats.calls["GET limits"] == 1


def test_a_spent_allocation_is_quota_exhausted_not_retried(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    sf.emulator.allocation = 10
    sf.emulator.set_api_used(10)
    built = make_connector()

    with pytest.raises(QuotaExhausted) as caught:
        drain(built.connector.fetch_all("customer"))

    assert "REQUEST_LIMIT_EXCEEDED" in str(caught.value)
    assert built.policy.waits == []
    assert [r["status"] for r in sf.emulator.stats.requests if r["path"].startswith("/services/data")] == [403]
