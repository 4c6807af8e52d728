"""/healthz, /readyz, /metrics (parsed by the Prometheus client) and redacted JSON logs."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sync.logs import REDACTED, configure_logging
from tests.daemon.conftest import ADMIN_TOKEN, Env, daemon

Client = TestClient[Any, Any]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_healthz_and_readyz(env: Env, client: Client) -> None:
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["connections"] == {
        "quickbooks": "ok", "stripe": "ok", "xero": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json()) == {"ready": True, "problems": [], "degraded": []}
    with env.store.transaction() as tx:
        tx.set_connection_state("xero", "needs_reauth", reason="refresh token refused")
    # one vendor needing re-authorisation does not make the process unready (issue 21, item 6):
    # pulling the pod would stop every other connection's webhooks
    still = await client.get("/readyz")
    assert still.status == 200
    assert (await still.json()) == {"ready": True, "problems": [], "degraded": ["xero: needs_reauth"]}
    assert (await (await client.get("/healthz")).json())["connections"]["xero"] == "needs_reauth"
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples[("billhub_connection_status", (("connection", "xero"), ("status", "needs_reauth")))] == 1
    assert samples[("billhub_connection_status", (("connection", "stripe"), ("status", "ok")))] == 1
    daemon(client).jobs.stopping.set()
    stopping = await client.get("/readyz")
    assert stopping.status == 503 and (await stopping.json())["problems"] == ["stopping"]


async def test_metrics_parse_and_count(env: Env, client: Client) -> None:
    env.stripe_emulator.seed_objects({"customers": [{"name": f"M{i}", "email": f"m{i}@x.test"} for i in range(3)]})
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")
    await jobs.run_now("outbox")
    with env.store.transaction() as tx:
        tx.upsert_finding(fingerprint="f1", kind="orphan", entity="customer", system="xero", canonical_id=None,
                          external_ids=["x"], fields={}, detail="", run_id=None)
        tx.set_connection_state("quickbooks", "paused", reason="rate budget",
                                paused_until=env.clock.now.replace(year=2027))
    await jobs.run_now("sync:quickbooks:customer")
    env.clock.advance(seconds=90)
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples = _samples(await response.text())
    assert samples[("billhub_records_total", (("connection", "stripe"), ("entity", "customer"),
                                              ("outcome", "read"), ("system", "stripe")))] == 3
    assert samples[("billhub_records_total", (("connection", "quickbooks"), ("entity", "customer"),
                                              ("outcome", "written"), ("system", "quickbooks")))] == 3
    assert samples[("billhub_open_findings", (("kind", "orphan"),))] == 1
    assert samples[("billhub_open_findings", (("kind", "missing"),))] == 0
    assert samples[("billhub_outbox_items", (("status", "done"),))] == 6
    assert samples[("billhub_dead_letters", ())] == 0
    assert samples[("billhub_sync_lag_seconds", (("connection", "stripe"), ("stream", "customer")))] == 90
    assert samples[("billhub_connection_paused", (("connection", "quickbooks"),))] == 1
    assert samples[("billhub_connection_paused", (("connection", "stripe"),))] == 0
    assert samples[("billhub_jobs_total", (("job", "sync"), ("outcome", "skipped")))] == 1
    assert ("billhub_api_retry_waits_total", (("connection", "xero"), ("system", "xero"))) in samples
    assert any(name == "billhub_token_expiry_timestamp_seconds" for name, _ in samples)


def test_logs_are_json_and_redact_secrets_and_bearer_tokens() -> None:
    stream = io.StringIO()
    handler = configure_logging(["sk_test_supersecret", ADMIN_TOKEN], stream=stream)
    try:
        log = logging.getLogger("billhub.test")
        log.warning("calling with %s", "sk_test_supersecret", extra={"connection": "stripe",
                                                                     "header": f"Bearer {ADMIN_TOKEN}"})
        try:
            raise RuntimeError("Authorization: Bearer eyJhbGciOi.abc-def_ghi")
        except RuntimeError:
            log.exception("boom")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == f"calling with {REDACTED}" and lines[0]["connection"] == "stripe"
    assert lines[0]["header"] == f"Bearer {REDACTED}" and lines[0]["level"] == "warning"
    text = stream.getvalue()
    assert "supersecret" not in text and ADMIN_TOKEN not in text and "eyJhbGciOi" not in text
    assert "RuntimeError" in lines[1]["exception"]
