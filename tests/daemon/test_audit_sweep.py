"""Every route that changes something writes an audit entry. The routes are read from the running
app: each non-GET route (each value of a constrained step, e.g. /findings/{id}/ack and /resync)
is either done here, by an admin, and must leave its entry — or is listed in NOT_AUDITED with
why. A new route fails this test until it is one or the other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from sync.users import add_user
from tests.daemon.conftest import Env, Planted, auth, plant_findings
from tests.daemon.test_roles import _writes, login_as

Client = TestClient[Any, Any]

NOT_AUDITED = {
    "/login": "signs a person in; no hub state changes",
    "/logout": "signs a person out; no hub state changes",
    "/webhooks/x1": "a vendor's event, proved by its signature and kept once in the inbox",
    "/webhooks/x1/x1": "a vendor's event, proved by its signature and kept once in the inbox",
    "/api/usage": "a usage event an application sends, kept once by its event id: the event is its own record",
    "/findings/x1/preview": "a dry run: nothing changes",
    "/records/x1/resync": "the preview of a record's resync: nothing changes",
    "/resync/range/preview": "a dry run: nothing changes",
    "/resync/finding/preview": "a dry run: nothing changes",
    "/findings/bulk/keep/choose": "shows the ticked findings' candidates to choose from: nothing changes",
    "/findings/bulk/keep/preview": "a dry run: nothing changes",
}


@dataclass
class Ctx:
    env: Env
    client: Client
    csrf: str
    token: str
    planted: Planted
    mismatch: str
    orphans: list[str]
    dead: list[int]

    async def form(self, path: str, **fields: Any) -> Any:
        return await self.client.post(path, data={"csrf": self.csrf, **fields}, allow_redirects=False)

    async def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.client.post(path, headers=auth(self.token), json=body or {})


Recipe = Callable[[Ctx], Awaitable[Any]]
# concrete path (as _writes names it) -> (the audit action it must write, how to do it for real)
RECIPES: dict[str, tuple[str, Recipe]] = {
    # in this order: a repair re-checks its record, resolving the record's other findings
    "/resync/finding/run": ("resync.finding", lambda c: c.form("/resync/finding/run", finding=c.planted.duplicate,
                                                               keep=c.planted.quickbooks_id)),
    "/findings/x1/resync": ("resync.finding", lambda c: c.form(f"/findings/{c.mismatch}/resync")),
    "/findings/x1/ack": ("finding.ack", lambda c: c.form(f"/findings/{c.planted.orphan}/ack", comment="test")),
    "/findings/bulk": ("finding.ack", lambda c: c.form("/findings/bulk", action="ack", id=c.orphans[0],
                                                       comment="seen")),
    "/findings/bulk/keep/run": ("resync.finding", lambda c: c.form("/findings/bulk/keep/run", id=c.planted.orphan,
                                                                   **{f"keep:{c.planted.orphan}": "x1"})),
    "/outbox/x1/retry": ("outbox.retry", lambda c: c.form(f"/outbox/{c.dead[0]}/retry")),
    "/outbox/x1/drop": ("outbox.drop", lambda c: c.form(f"/outbox/{c.dead[1]}/drop", reason="typed by hand")),
    "/review/x1/approve": ("review.approve", lambda c: c.form("/review/xero/approve")),
    "/jobs/x1/run": ("job.run_now", lambda c: c.form("/jobs/outbox/run")),
    "/records/x1/run": ("resync.record", lambda c: c.form(f"/records/{c.planted.customer_id}/run")),
    "/records/x1/diff": ("diff.record", lambda c: c.form(f"/records/{c.planted.customer_id}/diff")),
    "/resync/range/run": ("resync.range", lambda c: c.form("/resync/range/run", entity="customer",
                                                           since="2026-10-01")),
    "/diff": ("diff.entity", lambda c: c.form("/diff", entity="customer")),
    "/api/findings/x1/ack": ("finding.ack", lambda c: c.api(f"/api/findings/{c.orphans[1]}/ack", {"comment": "known"})),
    "/api/resync": ("resync.range", lambda c: c.api("/api/resync", {"entity": "customer", "since": "2026-10-01"})),
    "/api/outbox/x1/retry": ("outbox.retry", lambda c: c.api(f"/api/outbox/{c.dead[2]}/retry")),
    "/api/outbox/x1/drop": ("outbox.drop", lambda c: c.api(f"/api/outbox/{c.dead[3]}/drop", {"reason": "gone"})),
    "/api/jobs/x1/run": ("job.run_now", lambda c: c.api("/api/jobs/outbox/run")),
    "/users": ("user.add", lambda c: c.form("/users", name="rita", role="read-only")),
    "/users/x1/role": ("user.role", lambda c: c.form("/users/rita/role", role="operator")),
    "/users/x1/reset": ("user.reset", lambda c: c.form("/users/rita/reset")),
    "/users/x1/disable": ("user.disable", lambda c: c.form("/users/rita/disable", reason="left")),
}


async def _setup(env: Env, client: Client) -> Ctx:
    planted = await plant_findings(env, client, "Sweep Co")
    with env.store.transaction() as tx:
        mismatch, _ = tx.upsert_finding(fingerprint="m", kind="mismatch", entity="customer", system="quickbooks",
                                        canonical_id=planted.customer_id, external_ids=[planted.quickbooks_id],
                                        fields={"name": {"hub": "Sweep Co", "quickbooks": "Sweep Co Ltd"}},
                                        detail="", run_id=None)
        orphans = [tx.upsert_finding(fingerprint=f"o{n}", kind="orphan", entity="customer", system="xero",
                                     canonical_id=None, external_ids=[f"x-{n}"], fields={}, detail="",
                                     run_id=None)[0] for n in range(2)]
        dead = []
        for n in range(4):
            tx.enqueue(planted.customer_id, "customer", "xero", "upsert", f"k-dead-{n}", "h")
            item = next(i for i in tx.list_outbox("pending") if i.idempotency_key == f"k-dead-{n}")
            tx.dead_outbox(item.id, "rejected by xero")
            dead.append(item.id)
    env.hub.engine.review_connections = {"xero"}
    token = add_user(env.store, "ada", "admin", "cli:test")  # an admin may do every route
    csrf = await login_as(client, "ada", token)
    return Ctx(env, client, csrf, token, planted, mismatch, orphans, dead)


async def test_every_state_changing_route_writes_an_audit_entry(env: Env, client: Client) -> None:
    paths = {path for _method, _route, path in _writes(client)}
    assert paths - NOT_AUDITED.keys() == RECIPES.keys(), "a route is neither audited here nor listed in NOT_AUDITED"
    ctx = await _setup(env, client)
    missing = []
    for path, (action, recipe) in RECIPES.items():
        with env.store.transaction() as tx:
            seen = tx.count_audit()
        answer = await recipe(ctx)
        with env.store.transaction() as tx:
            new = tx.list_audit(limit=tx.count_audit() - seen) if tx.count_audit() > seen else []
        actions = [(e.action, e.actor) for e in new]
        if (action, "api:ada" if path.startswith("/api/") else "console:ada") not in actions:
            missing.append((path, answer.status, actions, (await answer.text())[:200]))
    assert missing == [], "\n".join(map(str, missing))
