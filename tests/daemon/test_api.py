"""The admin API: token checks, status equal to ``hub status --json``, findings, resync, outbox,
usage events, jobs, and its OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from state.audit import AuditFilter
from sync.audit import list_actions
from sync.queries import gather_status
from sync.usage import USAGE
from sync.web.api import OPENAPI
from sync.web.app import create_app
from tests.daemon.conftest import ADMIN_TOKEN, Env, auth, build_config, daemon

Client = TestClient[Any, Any]
ROUTES = [("GET", "/api/status"), ("GET", "/api/runs"), ("GET", "/api/findings"), ("GET", "/api/findings/x"),
          ("POST", "/api/findings/x/ack"), ("POST", "/api/resync"), ("GET", "/api/outbox"),
          ("POST", "/api/outbox/1/retry"), ("POST", "/api/outbox/1/drop"), ("POST", "/api/usage"),
          ("GET", "/api/jobs"), ("POST", "/api/jobs/inbox/run")]


def _finding(env: Env, kind: str = "mismatch", **extra: Any) -> str:
    values: dict[str, Any] = {"fingerprint": f"fp-{kind}-{len(extra)}", "kind": kind, "entity": "customer",
                              "system": "quickbooks", "canonical_id": None, "external_ids": ["58"],
                              "fields": {"email": {"hub": "a@x.test", "quickbooks": "b@x.test"}},
                              "detail": "email differs", "run_id": None, **extra}
    with env.store.transaction() as tx:
        finding_id, _ = tx.upsert_finding(**values)
    return finding_id


async def test_missing_and_wrong_tokens_are_refused(env: Env, client: Client) -> None:
    daemon(client).throttle.limit = len(ROUTES) + 1  # one wrong token per route; the throttle is tested apart
    for method, path in ROUTES:
        missing = await client.request(method, path)
        assert missing.status == 401, path
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await client.request(method, path, headers=auth(ADMIN_TOKEN[:-1] + "x"))
        assert wrong.status == 403, path
        basic = await client.request(method, path, headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
        assert basic.status == 401, path
    assert env.inbox() == []


async def test_no_token_configured_turns_the_api_off(env: Env) -> None:
    config = build_config(env.config.state_url, dict(env.config.connections), token=None)
    async with TestClient(TestServer(create_app(config, env.hub, start_scheduler=False))) as c:
        for method, path in ROUTES:
            response = await c.request(method, path, headers=auth())
            assert response.status == 404
            assert "admin API is off" in (await response.json())["error"]
        assert (await c.get("/api/openapi.json")).status == 200


async def test_status_matches_gather_status(env: Env, client: Client) -> None:
    await daemon(client).jobs.run_now("sync:stripe:customer")
    response = await client.get("/api/status", headers=auth())
    assert response.status == 200
    data = await response.json()
    expected = json.loads(json.dumps(gather_status(env.store, env.config), default=lambda v: v.isoformat()))
    assert {k: data[k] for k in expected} == expected
    assert data["jobs"]["sync:stripe:customer"]["outcome"] == "ok"
    runs = await (await client.get("/api/runs?kind=sync", headers=auth())).json()
    assert [r["kind"] for r in runs["runs"]] == ["sync"]


async def test_findings_list_show_ack(env: Env, client: Client) -> None:
    finding_id = _finding(env)
    listed = await (await client.get("/api/findings?kind=mismatch&status=open", headers=auth())).json()
    assert [f["id"] for f in listed["findings"]] == [finding_id]
    assert (await client.get("/api/findings?kind=bogus", headers=auth())).status == 400
    shown = await (await client.get(f"/api/findings/{finding_id[:8]}", headers=auth())).json()
    assert shown["fields"]["email"] == {"hub": "a@x.test", "quickbooks": "b@x.test"}
    # finance's view of it (issue 21, item 1): each system's value, the record in QuickBooks' app
    assert shown["about"]["values"]["rows"] == [{"field": "email", "values": {"hub": "a@x.test",
                                                                              "quickbooks": "b@x.test"}}]
    assert shown["about"]["links"] == {"quickbooks": "https://app.qbo.intuit.com/app/customerdetail?nameId=58"}
    assert listed["findings"][0]["about"]["links"] == shown["about"]["links"]
    assert (await client.get("/api/findings/nope", headers=auth())).status == 404
    acked = await (await client.post(f"/api/findings/{finding_id}/ack", headers=auth())).json()
    assert acked["status"] == "acknowledged"
    with env.store.transaction() as tx:
        assert tx.get_finding(finding_id).status == "acknowledged"


async def test_resync_finding_dry_run_then_keep(env: Env, client: Client) -> None:
    await daemon(client).jobs.run_now("sync:stripe:customer")
    with env.store.transaction() as tx:
        canonical = next(tx.entities_of("customer"), None)
    assert canonical is None  # no Stripe customers yet: make one, sync it
    env.stripe_emulator.seed_objects({"customers": [{"name": "Dupe Co", "email": "d@x.test"}]})
    await daemon(client).jobs.run_now("sync:stripe:customer")
    await daemon(client).jobs.run_now("outbox")  # pushes to the ledgers
    with env.store.transaction() as tx:
        stored = next(tx.entities_of("customer"))
        link = tx.link_for(stored.id, "quickbooks", "customer")
    assert link is not None
    finding_id = _finding(env, "duplicate", canonical_id=stored.id, external_ids=[link.external_id, "999"])
    missing_keep = await client.post("/api/resync", json={"finding": finding_id}, headers=auth())
    assert missing_keep.status == 409 and "--keep" in (await missing_keep.json())["error"]
    preview = await client.post("/api/resync", json={"finding": finding_id, "keep": link.external_id,
                                                     "dry_run": True}, headers=auth())
    plan = await preview.json()
    assert preview.status == 200 and plan["dry_run"] is True and "link hub customer" in plan["actions"][0]
    with env.store.transaction() as tx:
        assert tx.get_finding(finding_id).status == "open"
    done = await client.post("/api/resync", json={"finding": finding_id, "keep": link.external_id}, headers=auth())
    assert done.status == 200 and (await done.json())["dry_run"] is False
    with env.store.transaction() as tx:
        assert tx.get_finding(finding_id).status == "resolved"
    bad = await client.post("/api/resync", json={"entity": "customer"}, headers=auth())
    assert bad.status == 400
    record = await client.post("/api/resync", json={"connection": "stripe", "entity": "customer",
                                                    "external_id": "cus_missing", "dry_run": True}, headers=auth())
    assert record.status == 200 and (await record.json())["dry_run"] is True


async def test_outbox_list_retry_drop(env: Env, client: Client) -> None:
    with env.store.transaction() as tx:
        tx.enqueue("c1", "customer", "quickbooks", "upsert", "key-1", "h1")
        tx.enqueue("c2", "customer", "xero", "upsert", "key-2", "h2")
        items = tx.list_outbox()
        tx.dead_outbox(items[0].id, "rejected by quickbooks: bad name")
    listed = await (await client.get("/api/outbox?status=dead", headers=auth())).json()
    assert [i["last_error"] for i in listed["items"]] == ["rejected by quickbooks: bad name"]
    assert listed["depth"] == {"dead": 1, "pending": 1}
    retried = await client.post(f"/api/outbox/{items[0].id}/retry", headers=auth())
    assert retried.status == 200
    unsaid = await client.post(f"/api/outbox/{items[1].id}/drop", headers=auth())
    assert unsaid.status == 400 and "reason" in (await unsaid.json())["error"]  # a drop says why
    dropped = await client.post(f"/api/outbox/{items[1].id}/drop", json={"reason": "sent by hand"}, headers=auth())
    assert dropped.status == 200
    assert (await client.post(f"/api/outbox/{items[1].id}/drop", json={"reason": "again"},
                              headers=auth())).status == 404
    assert (await client.post("/api/outbox/abc/retry", headers=auth())).status == 400
    with env.store.transaction() as tx:
        assert tx.outbox_depth() == {"pending": 1, "dropped": 1}
        said = {e.action: (e.actor, e.target_id, e.before, e.after, e.reason) for e in list_actions(
            tx, AuditFilter(target_kind="outbox"))}
    assert said == {"outbox.retry": ("api:admin", str(items[0].id), {"status": "dead"}, {"status": "pending"}, None),
                    "outbox.drop": ("api:admin", str(items[1].id), {"status": "pending"}, {"status": "dropped"},
                                    "sent by hand")}


async def test_usage_events_are_validated_and_stored_once(env: Env, client: Client) -> None:
    event = {"event_id": "use-1", "event_name": "api_calls", "customer": "cus_123", "value": 42}
    first = await client.post("/api/usage", json=event, headers=auth())
    assert first.status == 202 and (await first.json())["stored"] is True
    second = await client.post("/api/usage", json=event, headers=auth())
    assert second.status == 200 and (await second.json())["duplicate"] is True
    for bad in ({**event, "value": -1}, {**event, "value": 1.5}, {**event, "event_id": ""},
                {**event, "timestamp": "yesterday"}, [event]):
        response = await client.post("/api/usage", json=bad, headers=auth())
        assert response.status == 400, bad
    bad_json = await client.post("/api/usage", data=b"{", headers=auth())
    assert bad_json.status == 400
    rows = env.inbox()
    assert [(r["system"], r["event_id"], r["payload"]["value"]) for r in rows] == [(USAGE, "use-1", "42")]


async def test_jobs_listed_and_run_now(env: Env, client: Client) -> None:
    listed = await (await client.get("/api/jobs", headers=auth())).json()
    ids = {j["id"] for j in listed["jobs"]}
    assert {"outbox", "inbox", "tokens", "diff:customer", "sync:stripe:customer",
            "sync:quickbooks:customer", "sync:xero:invoice"} <= ids
    ran = await client.post("/api/jobs/outbox/run", headers=auth())
    assert ran.status == 200 and (await ran.json())["outcome"] == "ok"
    assert (await client.post("/api/jobs/nope/run", headers=auth())).status == 404


async def test_openapi_document_describes_every_route(client: Client) -> None:
    from openapi_spec_validator import validate

    response = await client.get("/api/openapi.json")
    spec = await response.json()
    assert spec == json.loads(json.dumps(OPENAPI))
    validate(spec)
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for method, path in ROUTES:
        template = path.replace("/x", "/{id}").replace("/1/", "/{id}/").replace("/inbox/", "/{id}/")
        assert (method, template) in documented, template
