"""The inbox answers from the store a Stripe event older than the state the hub holds (issue 22,
item 3): no read of Stripe for it, and the right state at the end; a newer event is read again;
events delivered newest first end at the newest state; a change feed's copy older than what the
hub holds is never stored over it. On PostgreSQL the inbox and a change feed run side by side,
in their own lanes, and storing one record at once still makes exactly one write per target.

Stripe's versions are the seconds (Stripe's clock) a state was current at
(``connectors.stripe.versions``); the emulator's clock is pinned and moved by the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select

from connectors.base import Record
from connectors.stripe.connector import StripeConnector
from state import schema
from sync.engine import SyncSummary
from sync.web.app import create_app
from tests.daemon.conftest import Env, daemon, env_per_database, make_env
from tests.daemon.test_webhooks import _stripe_headers

Client = TestClient[Any, Any]

env = pytest.fixture(params=["sqlite", "postgres"])(env_per_database)


def _customer_reads(env: Env) -> int:
    return env.stripe_emulator.stats.calls.get("GET /v1/customers/{id}", 0)


def _stripe(env: Env) -> StripeConnector:
    connector = env.hub.connectors["stripe"]
    assert isinstance(connector, StripeConnector)
    return connector


def _new_email(env: Env, customer: str, email: str) -> dict[str, Any]:
    """A new email (Stripe owns a customer's email) through the SDK 10 s after the emulator's
    last change; returns the customer.updated event."""
    env.stripe_emulator.clock.advance(10)
    _stripe(env).api.call(lambda c: c.v1.customers.update(customer, params={"email": email}))
    return [e for e in env.stripe_emulator.events if e["type"] == "customer.updated"
            and e["data"]["object"]["id"] == customer][-1]


async def _deliver(env: Env, client: Client, *events: dict[str, Any]) -> None:
    for stripe_event in events:
        body = json.dumps(stripe_event).encode()
        response = await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))
        assert response.status == 200, await response.text()


def _email(env: Env, customer: str) -> str:
    with env.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "customer", customer)
        assert canonical is not None
        stored = tx.get_entity(canonical)
    assert stored is not None
    return str(stored.data["email"])


def _seed(env: Env, name: str) -> tuple[str, dict[str, Any]]:
    created = env.stripe_emulator.seed_objects({"customers": [{"name": name, "email": "versions@example.com"}]})
    customer = created["created"]["customers"][0]
    (made,) = [e for e in env.stripe_emulator.events if e["type"] == "customer.created"
               and e["data"]["object"]["id"] == customer]
    return customer, made


async def test_an_event_older_than_the_state_held_is_answered_from_the_store(env: Env, client: Client) -> None:
    customer, created = _seed(env, "Old Name Ltd")
    renamed = _new_email(env, customer, "new@example.com")
    env.stripe_emulator.clock.advance(10)
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")  # the hub holds the renamed customer, read after both
    assert _email(env, customer) == "new@example.com"
    reads = _customer_reads(env)

    await _deliver(env, client, created, renamed)  # late deliveries of what the hub already holds
    outcome = await jobs.run_now("inbox")

    assert outcome["detail"] == "processed 2, failed 0, 2 answered from the store", outcome
    assert _customer_reads(env) == reads  # no read of Stripe for either
    assert [r["status"] for r in env.inbox()] == ["processed", "processed"]
    assert _email(env, customer) == "new@example.com"


async def test_a_newer_event_is_read_again_and_newest_first_delivery_ends_at_the_newest(
        env: Env, client: Client) -> None:
    customer, _created = _seed(env, "First Name Ltd")
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")
    second = _new_email(env, customer, "second@example.com")
    third = _new_email(env, customer, "third@example.com")
    reads = _customer_reads(env)

    await _deliver(env, client, third)  # newer than what the hub holds: read again
    assert (await jobs.run_now("inbox"))["detail"] == "processed 1, failed 0"
    assert _customer_reads(env) == reads + 1
    assert _email(env, customer) == "third@example.com"

    await _deliver(env, client, second)  # delivered after the newer one: older than the state held
    assert (await jobs.run_now("inbox"))["detail"] == "processed 1, failed 0, 1 answered from the store"
    assert _customer_reads(env) == reads + 1
    assert _email(env, customer) == "third@example.com"


async def test_an_event_within_a_second_of_the_state_held_is_read_again(env: Env, client: Client) -> None:
    """Stripe's clocks are whole seconds on many servers: an event of the same second as the
    read the hub holds cannot be ordered against it, so it is read again, never guessed."""
    customer, created = _seed(env, "Same Second Ltd")
    await daemon(client).jobs.run_now("sync:stripe:customer")  # read in the second of the creation
    reads = _customer_reads(env)
    await _deliver(env, client, created)
    assert (await daemon(client).jobs.run_now("inbox"))["detail"] == "processed 1, failed 0"
    assert _customer_reads(env) == reads + 1


def test_a_copy_older_than_the_state_held_is_not_stored_over_it(env: Env) -> None:
    """A change feed's page and a webhook's read can reach ingest in either order: the older
    one, by version, is counted stale and the hub keeps the newer state."""
    customer, _ = _seed(env, "Kept Name Ltd")
    summary = SyncSummary()
    env.hub.engine.pull("stripe", "customer", summary, None)
    with env.store.transaction() as tx:
        link = tx.link_by_external("stripe", "customer", customer)
    assert link is not None and link.remote_version is not None
    held = int(link.remote_version)
    connector = _stripe(env)
    data = {**connector.reader.refetch(Record("customer", customer, {})).data, "email": "stale@example.com"}
    older = Record("customer", customer, data, version=str(held - 2))
    within = Record("customer", customer, {**data, "email": "within@example.com"}, version=str(held - 1))

    with env.store.transaction() as tx:
        env.hub.engine.ingest(tx, connector, [older], summary, None)
    assert summary.stats("stripe", "customer").stale == 1
    assert _email(env, customer) == "versions@example.com"

    with env.store.transaction() as tx:  # not provably older: stored, the version held stays
        env.hub.engine.ingest(tx, connector, [within], summary, None)
    assert _email(env, customer) == "within@example.com"
    with env.store.transaction() as tx:
        kept = tx.link_by_external("stripe", "customer", customer)
    assert kept is not None and kept.remote_version == str(held)


@pytest.fixture
def pg_env(pg_schema_url: str) -> Iterator[Env]:
    with make_env(pg_schema_url) as made:
        yield made


async def test_on_postgres_the_inbox_and_a_change_feed_storing_one_record_at_once_write_it_once(
        pg_env: Env) -> None:
    """The inbox lane and the change-feed lane run at once (a barrier both must reach proves it:
    with one lane it would never open) and store the same renamed customer in the same moment.
    Its link's row makes them take turns: one stores the change, the other finds it stored. One
    history entry, one outbox write per ledger, one update sent to each."""
    env = pg_env
    env.config.schedules["side_by_side_lanes"] = True
    app = create_app(env.config, env.hub, start_scheduler=False, clock=env.clock)
    async with TestClient(TestServer(app)) as client:
        jobs = daemon(client).jobs
        assert jobs.lanes.side_by_side
        customer, _ = _seed(env, "Racing Name Ltd")
        await jobs.run_now("sync:stripe:customer")
        await jobs.run_now("outbox")
        renamed = _new_email(env, customer, "raced@example.com")
        env.stripe_emulator.clock.advance(10)
        await _deliver(env, client, renamed)
        with env.store.transaction() as tx:
            canonical = tx.canonical_for("stripe", "customer", customer)
        assert canonical is not None
        rows_before = _outbox_rows(env, canonical)

        both = threading.Barrier(2, timeout=30)
        met: set[str] = set()

        def meet(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            # each lane waits for the other at the lock of the customer's link: both inside
            # their own transaction with the record read, neither yet stored
            me = threading.current_thread().name
            if "FOR UPDATE" in statement and "FROM links" in statement and me not in met:
                met.add(me)
                both.wait()

        event.listen(env.store.engine, "before_cursor_execute", meet)
        try:
            inbox, feed = await asyncio.gather(jobs.run_now("inbox"), jobs.run_now("sync:stripe:customer"))
        finally:
            event.remove(env.store.engine, "before_cursor_execute", meet)
        assert inbox["outcome"] == "ok" and feed["outcome"] == "ok", (inbox, feed)
        assert len(met) == 2  # both lanes were in their transactions at once
        await jobs.run_now("outbox")

        assert _email(env, customer) == "raced@example.com"
        new_rows = _outbox_rows(env, canonical)[len(rows_before):]
        assert sorted(target for target, _status in new_rows) == ["quickbooks", "xero"]
        assert all(status == "done" for _target, status in new_rows)
        with env.store.engine.connect() as conn:
            changes = conn.execute(select(schema.history.c.action).where(
                schema.history.c.canonical_id == canonical, schema.history.c.action == "changed")).all()
        assert len(changes) == 1


def _outbox_rows(env: Env, canonical: str) -> list[tuple[str, str]]:
    with env.store.engine.connect() as conn:
        rows = conn.execute(select(schema.outbox.c.target, schema.outbox.c.status)
                            .where(schema.outbox.c.canonical_id == canonical).order_by(schema.outbox.c.id))
        return [(str(t), str(s)) for t, s in rows]


async def test_a_quickbooks_read_with_an_older_sync_token_is_not_stored(env: Env, client: Client) -> None:
    """QuickBooks versions are SyncTokens, a counter of the object's changes: a read carrying a
    lower token than the one held is an older state, counted stale, and the token held stays."""
    _seed(env, "Token Ltd")
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")
    await jobs.run_now("outbox")  # the customer is created in QuickBooks; its link holds the token
    connector = env.hub.connectors["quickbooks"]
    (page, *_rest) = list(connector.fetch_all("customer"))
    (record,) = [r for r in page.records if r.data.get("DisplayName") == "Token Ltd"]
    with env.store.transaction() as tx:
        link = tx.link_by_external("quickbooks", "customer", record.external_id)
    assert link is not None and link.remote_version is not None
    held = int(link.remote_version)
    summary = SyncSummary()
    newer = dataclasses.replace(record, version=str(held + 2))
    older = dataclasses.replace(record, version=str(held + 1), data={**record.data, "DisplayName": "Older Ltd"})

    for batch in ([newer], [older]):
        with env.store.transaction() as tx:
            env.hub.engine.ingest(tx, connector, batch, summary, None)

    assert summary.stats("quickbooks", "customer").stale == 1
    with env.store.transaction() as tx:
        kept = tx.link_by_external("quickbooks", "customer", record.external_id)
    assert kept is not None and kept.remote_version == str(held + 2)
