"""The state store, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from mapping.model import Customer
from state import schema
from state.errors import LinkConflict, NotFound
from state.store import StateStore
from tests.conftest import FrozenClock, fresh_pg_schema, make_store, schema_head


def customers(n: int, suffix: str = "") -> list[Customer]:
    return [Customer(f"00000000-0000-0000-0000-{i:012d}", name=f"Customer {i}{suffix}",
                     email=f"c{i}@example.com") for i in range(n)]


def test_upserting_the_same_batch_twice_reports_unchanged_and_writes_no_history(store: StateStore) -> None:
    batch = customers(20)
    with store.transaction() as tx:
        assert tx.upsert_entities(batch, "stripe") == ["added"] * 20
    with store.transaction() as tx:
        history_before = tx.count_history()
        assert tx.upsert_entities(batch, "stripe") == ["unchanged"] * 20
        assert tx.count_history() == history_before == 20


def test_a_changed_record_is_reported_changed_with_its_field_diff(store: StateStore) -> None:
    (original,) = customers(1)
    with store.transaction() as tx:
        tx.upsert_entity(original, "stripe")
    renamed = Customer(original.id, name="Renamed", email=original.email)
    with store.transaction() as tx:
        assert tx.upsert_entity(renamed, "salesforce") == "changed"
        history = tx.history_of(original.id)
        stored = tx.get_entity(original.id)
    assert [h["action"] for h in history] == ["added", "changed"]
    assert history[-1]["changes"] == {"name": ["Customer 0", "Renamed"]}
    assert stored is not None and stored.version == 2 and stored.entity() == renamed


def test_any_permutation_of_a_batch_ends_in_the_same_state(tmp_path: object) -> None:
    first, second = customers(12), customers(12, " v2")[:6]
    states = []
    for seed in range(4):
        s = make_store(f"sqlite:///{tmp_path}/perm{seed}.db")
        rng = random.Random(seed)
        a, b = first[:], second[:]
        rng.shuffle(a)
        rng.shuffle(b)
        with s.transaction() as tx:
            tx.upsert_entities(a, "stripe")
            tx.upsert_entities(b, "stripe")
        with s.transaction() as tx:
            states.append(sorted((e.id, e.content_hash, e.version) for e in tx.entities_of("customer")))
        s.dispose()
    assert all(state == states[0] for state in states)


def test_links_are_found_in_both_directions(store: StateStore) -> None:
    (c,) = customers(1)
    with store.transaction() as tx:
        tx.upsert_entity(c, "stripe")
        tx.link(c.id, "stripe", "customer", "cus_1", seen_hash="h1")
        tx.link(c.id, "quickbooks", "customer", "58")
        tx.link(c.id, "stripe", "customer", "cus_1", pushed_hash="h2")  # idempotent, updates hashes
    with store.transaction() as tx:
        assert tx.canonical_for("quickbooks", "customer", "58") == c.id
        link = tx.link_for(c.id, "stripe", "customer")
        assert link is not None and (link.external_id, link.last_seen_hash, link.last_pushed_hash) == ("cus_1", "h1", "h2")
        assert {(lk.system, lk.external_id) for lk in tx.links_of(c.id)} == {("stripe", "cus_1"), ("quickbooks", "58")}


def test_linking_an_external_record_to_a_second_entity_is_a_domain_error(store: StateStore) -> None:
    a, b = customers(2)
    with store.transaction() as tx:
        tx.upsert_entities([a, b], "stripe")
        tx.link(a.id, "xero", "customer", "X-1")
        with pytest.raises(LinkConflict, match="already linked"):
            tx.link(b.id, "xero", "customer", "X-1")
        with pytest.raises(LinkConflict):
            tx.link(a.id, "xero", "customer", "X-2")  # a already has a Xero contact
        tx.link(a.id, "xero", "customer", "X-2", replace=True)
        assert tx.canonical_for("xero", "customer", "X-2") == a.id
        assert tx.canonical_for("xero", "customer", "X-1") is None


@pytest.mark.postgres
def test_concurrent_links_of_one_external_record_leave_exactly_one(pg_schema_url: str) -> None:
    s = make_store(pg_schema_url)
    a, b = customers(2)
    with s.transaction() as tx:
        tx.upsert_entities([a, b], "stripe")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def link(entity: Customer) -> None:
        try:
            with s.transaction() as tx:
                tx.conn.execute(text("SELECT 1"))
                barrier.wait(5)
                tx.link(entity.id, "quickbooks", "customer", "58")
            outcomes[entity.id] = "won"
        except LinkConflict:
            outcomes[entity.id] = "conflict"

    for _ in range(5):
        with s.transaction() as tx:
            tx.conn.execute(schema.links.delete())
        outcomes.clear()
        threads = [threading.Thread(target=link, args=(e,)) for e in (a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(10)
        assert sorted(outcomes.values()) == ["conflict", "won"]
        with s.transaction() as tx:
            rows = tx.conn.execute(select(schema.links)).all()
        assert len(rows) == 1 and outcomes[rows[0].canonical_id] == "won"
    s.dispose()


@pytest.mark.postgres
def test_a_link_another_process_made_after_this_transaction_looked_is_the_same_link(pg_schema_url: str) -> None:
    """Inside ``remembering`` a transaction answers from what it read earlier; when another
    process made the very same link meanwhile (a webhook and a change feed carry one record), the
    write finds it and updates it instead of reporting a conflict."""
    s = make_store(pg_schema_url)
    (a,) = customers(1)
    with s.transaction() as tx:
        tx.upsert_entities([a], "stripe")
    with s.transaction() as tx, tx.remembering():
        tx.prefetch_links("stripe", "customer", ["cus_1"])
        assert tx.canonical_for("stripe", "customer", "cus_1") is None  # remembered as absent
        with s.transaction() as other:  # another process, committed meanwhile
            other.link(a.id, "stripe", "customer", "cus_1", remote_version="1")
        tx.link(a.id, "stripe", "customer", "cus_1", remote_version="2")
        b = Customer("00000000-0000-0000-0000-00000000000b", name="Other", email="other@example.com")
        tx.upsert_entities([b], "stripe")
        with pytest.raises(LinkConflict):  # a different hub record still conflicts
            tx.link(b.id, "stripe", "customer", "cus_1")
    with s.transaction() as tx:
        link = tx.link_for(a.id, "stripe", "customer")
    assert link is not None and link.external_id == "cus_1" and link.remote_version == "2"
    s.dispose()


def test_cursors_advance_with_their_transaction_only(store: StateStore) -> None:
    with store.transaction() as tx:
        tx.set_cursor("stripe", "customer", "c1")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.set_cursor("stripe", "customer", "c2")
        raise RuntimeError("crash before commit")
    with store.transaction() as tx:
        assert tx.get_cursor("stripe", "customer") == "c1"
        tx.set_cursor("stripe", "customer", "c3")
        assert tx.get_cursor("stripe", "customer") == "c3"


def test_inbox_stores_an_event_once(store: StateStore) -> None:
    with store.transaction() as tx:
        assert tx.add_inbox("stripe", "evt_1", {"id": "evt_1"}, "customer.created") is True
        assert tx.add_inbox("stripe", "evt_1", {"id": "evt_1"}, "customer.created") is False
        assert tx.add_inbox("xero", "evt_1", {}) is True
        assert tx.count_inbox() == 2
        claimed = tx.claim_inbox(10)
        assert {c.event_id for c in claimed} == {"evt_1"} and len(claimed) == 2
        tx.finish_inbox(claimed[0].id)
        assert tx.count_inbox("processed") == 1


def test_an_event_that_failed_for_now_is_claimed_again_after_its_wait(store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        tx.add_inbox("usage", "u1", {"value": "1"})
        (item,) = tx.claim_inbox(10)
        tx.finish_inbox(item.id, error="RetryableError: stripe: 503", retry_in=30)
        assert tx.claim_inbox(10) == []  # waiting: not handed out before its time
    clock.advance(seconds=31)
    with store.transaction() as tx:
        (again,) = tx.claim_inbox(10)
        assert again.event_id == "u1" and again.attempts == 2
        tx.finish_inbox(again.id, error="InvalidError: refused")  # for good
    clock.advance(hours=2)
    with store.transaction() as tx:
        assert tx.claim_inbox(10) == [] and tx.count_inbox("failed") == 1


def test_inbox_retry_waits_double_and_give_up_on_invalid_or_after_the_last_attempt() -> None:
    from connectors.base import InvalidError, RetryableError
    from sync.inbox_retry import MAX_ATTEMPTS
    from sync.inbox_retry import retry_in as jittered

    def retry_in(attempts: int, error: BaseException) -> float | None:
        return jittered(attempts, error, random=lambda: 1.0)  # the top of the jitter's window

    passing = RetryableError("503", system="stripe")
    assert [retry_in(n, passing) for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_in(MAX_ATTEMPTS - 1, passing) == 1920  # about an hour of tries in all
    assert retry_in(MAX_ATTEMPTS, passing) is None
    assert retry_in(1, InvalidError("bad", system="stripe")) is None
    assert retry_in(1, LookupError("customer not in Stripe yet")) == 30


def test_outbox_lifecycle_claim_fail_dead_retry_drop(store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        assert tx.enqueue("c1", "customer", "xero", "upsert", "k1", "h1")
        assert not tx.enqueue("c1", "customer", "xero", "upsert", "k1", "h1")  # same key: deduplicated
        tx.enqueue("c2", "customer", "xero", "upsert", "k2", "h2")
    with store.transaction() as tx:
        claimed = tx.claim_outbox(10)
        assert [c.idempotency_key for c in claimed] == ["k1", "k2"] and all(c.attempts == 1 for c in claimed)
        assert tx.claim_outbox(10) == []  # leased
        tx.fail_outbox(claimed[0].id, "503", retry_at=clock.now + timedelta(seconds=30))
        tx.dead_outbox(claimed[1].id, "invalid tax code")
    with store.transaction() as tx:
        assert tx.claim_outbox(10) == []
    clock.advance(seconds=31)
    with store.transaction() as tx:
        (again,) = tx.claim_outbox(10)
        assert again.attempts == 2
        tx.complete_outbox(again.id, "X-9")
        assert tx.outbox_depth() == {"done": 1, "dead": 1}
        dead = tx.list_outbox("dead")[0]
        assert dead.last_error == "invalid tax code"
        tx.retry_outbox(dead.id)
        tx.drop_outbox(dead.id)
        assert tx.outbox_depth() == {"done": 1, "dropped": 1}
        with pytest.raises(NotFound):
            tx.drop_outbox(99999)


def test_an_expired_lease_returns_a_claimed_item_to_the_queue(store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        tx.enqueue("c1", "customer", "xero", "upsert", "k1", "h1")
        assert len(tx.claim_outbox(10, lease_seconds=60)) == 1
    clock.advance(seconds=61)
    with store.transaction() as tx:
        assert [i.idempotency_key for i in tx.claim_outbox(10)] == ["k1"]


def test_one_write_per_record_and_target_is_in_flight_at_a_time(store: StateStore, clock: FrozenClock) -> None:
    """A webhook and a change feed can queue two writes of one record (different content); sent
    together, both would create it in the target."""
    with store.transaction() as tx:
        tx.enqueue("p1", "payment", "xero", "upsert", "from-webhook", "h1")
        tx.enqueue("p2", "payment", "xero", "upsert", "other-record", "h2")
        tx.enqueue("p1", "payment", "xero", "upsert", "from-feed", "h3")
        tx.enqueue("p1", "payment", "quickbooks", "upsert", "to-another-target", "h1")
    with store.transaction() as tx:
        assert [i.idempotency_key for i in tx.claim_outbox(10)] == ["from-webhook", "other-record",
                                                                    "to-another-target"]
    with store.transaction() as tx:
        assert tx.claim_outbox(10) == []  # p1's first write to xero is still in flight
        first = [i for i in tx.list_outbox("in_flight") if i.idempotency_key == "from-webhook"][0]
        tx.complete_outbox(first.id, "PAY-1")
    with store.transaction() as tx:
        assert [i.idempotency_key for i in tx.claim_outbox(10)] == ["from-feed"]


def test_findings_are_upserted_by_fingerprint_and_resolved_when_unseen(store: StateStore) -> None:
    kwargs: dict[str, Any] = dict(kind="duplicate", entity="customer", system="quickbooks", canonical_id=None,
                  external_ids=["58", "61"], fields={}, detail="two customers")
    with store.transaction() as tx:
        run1 = tx.start_run("diff")
        fid, new = tx.upsert_finding(fingerprint="fp1", run_id=run1, **kwargs)
        assert new
        fid2, new2 = tx.upsert_finding(fingerprint="fp1", run_id=run1, **kwargs)
        assert (fid2, new2) == (fid, False)
        assert tx.ack_finding(fid[:8]).status == "acknowledged"
        run2 = tx.start_run("diff")
        assert tx.resolve_unseen_findings(run2, entity="customer") == 1
        assert tx.get_finding(fid).status == "resolved"
        _, reopened = tx.upsert_finding(fingerprint="fp1", run_id=run2, **kwargs)
        assert reopened and tx.get_finding(fid).status == "open"


def test_credentials_are_encrypted_at_rest(store: StateStore) -> None:
    secret = {"refresh_token": "RT-very-secret-123", "access_token": "AT-xyz"}
    with store.transaction() as tx:
        tx.save_credentials("xero", secret)
        tx.save_credentials("xero", {**secret, "refresh_token": "RT-rotated-456"})
    with store.transaction() as tx:
        raw = tx.conn.execute(select(schema.credentials.c.ciphertext)).scalar_one()
        assert "RT-" not in raw and "AT-xyz" not in raw
        loaded = tx.load_credentials("xero", for_update=True)
        assert loaded is not None and loaded["refresh_token"] == "RT-rotated-456"
        assert tx.load_credentials("nobody") is None


@pytest.mark.postgres
def test_the_first_refresh_is_serialised_before_any_token_is_stored(pg_schema_url: str) -> None:
    """Two processes refreshing a connection that has no stored tokens yet: the second must wait
    for the first and then see its tokens (a row lock alone would lock nothing and let both
    spend the configured refresh token, which QuickBooks refuses the second time)."""
    s = make_store(pg_schema_url)
    seen: dict[str, Any] = {}

    def second_refresher() -> None:
        with s.transaction() as tx:
            seen["creds"] = tx.load_credentials("quickbooks", for_update=True)

    def second_is_waiting() -> bool:
        with s.engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%pg_advisory_xact_lock%'")).scalar())

    try:
        with s.transaction() as tx:
            assert tx.load_credentials("quickbooks", for_update=True) is None
            thread = threading.Thread(target=second_refresher)
            thread.start()
            deadline = time.monotonic() + 30
            while not second_is_waiting():  # a condition, polled: the second is queued behind us
                assert time.monotonic() < deadline, "the second refresher never waited for the first"
                time.sleep(0.02)
            tx.save_credentials("quickbooks", {"refresh_token": "RT-rotated"})
        thread.join(30)
        assert seen["creds"] == {"refresh_token": "RT-rotated"}
    finally:
        s.dispose()


def test_key_rotation_re_encrypts_with_the_new_key(tmp_path: object) -> None:
    from state.crypto import Cipher, generate_key

    old, new = generate_key(), generate_key()
    url = f"sqlite:///{tmp_path}/rot.db"
    s = StateStore(url, cipher=Cipher(old))
    s.init()
    with s.transaction() as tx:
        tx.save_credentials("qbo", {"refresh_token": "RT-1"})
    s.dispose()
    rotated = StateStore(url, cipher=Cipher(f"{new},{old}"))
    with rotated.transaction() as tx:
        assert tx.rotate_credentials() == 1
    rotated.dispose()
    only_new = StateStore(url, cipher=Cipher(new))
    with only_new.transaction() as tx:
        assert tx.load_credentials("qbo") == {"refresh_token": "RT-1"}
    only_new.dispose()


def test_init_is_idempotent_and_matches_the_declared_schema(store: StateStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert store.init() == store.init() == schema_head()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == [], f"migrations and state/schema.py disagree: {diff}"


def test_a_deferred_item_does_not_spend_an_attempt(store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        tx.enqueue("c1", "invoice", "xero", "upsert", "k1", "h1")
    for _ in range(3):
        with store.transaction() as tx:
            (item,) = tx.claim_outbox(10)
            assert item.attempts == 1
            tx.defer_outbox(item.id, "waiting for customer c0", clock.now)
    with store.transaction() as tx:
        (pending,) = tx.list_outbox("pending")
        assert pending.attempts == 0 and pending.last_error == "waiting for customer c0"


@pytest.mark.postgres
def test_hubs_in_two_schemas_of_one_database_never_hold_each_others_locks(pg_url: str) -> None:
    with fresh_pg_schema(pg_url) as one_url, fresh_pg_schema(pg_url) as other_url:
        one, other = make_store(one_url), make_store(other_url)
        try:
            with one.stream_lock("sync", "stripe", "customer") as mine:
                with other.stream_lock("sync", "stripe", "customer") as theirs:
                    assert mine and theirs  # advisory locks are database-wide: the schema is in the key
            with one.transaction() as tx, other.transaction() as tx2:
                tx.load_credentials("quickbooks", for_update=True)
                tx2.conn.execute(text("SET LOCAL lock_timeout = '5s'"))  # a shared key: an error, not a hang
                tx2.load_credentials("quickbooks", for_update=True)
        finally:
            one.dispose()
            other.dispose()


def test_a_stream_lock_is_held_by_one_holder_at_a_time(store: StateStore) -> None:
    with store.stream_lock("sync", "stripe", "customer") as first:
        assert first
        with store.stream_lock("sync", "stripe", "customer") as second:
            assert not second  # PostgreSQL: another session; SQLite: another caller in-process
        with store.stream_lock("sync", "stripe", "invoice") as other_stream:
            assert other_stream
    with store.stream_lock("sync", "stripe", "customer") as again:
        assert again


def test_natural_keys_follow_every_write_and_hold_no_plain_values(store: StateStore) -> None:
    """First contact finds hub records by email, number or name through ``natural_keys``."""
    acme = Customer("c1", name="Acme  Inc", email="Billing@Acme.test")
    with store.transaction() as tx:
        tx.upsert_entities([acme, Customer("c2", name="Other", email="other@example.com")], "stripe")
        assert tx.entities_with_key("customer", "email", " billing@acme.TEST ") == ["c1"]
        assert tx.entities_with_key("customer", "name", "acme inc") == ["c1"]
        assert tx.entities_with_key("invoice", "email", "billing@acme.test") == []
        stored = [tuple(r) for r in tx.conn.execute(select(schema.natural_keys))]
        assert stored and not any("acme" in str(value).lower() for row in stored for value in row)
        tx.upsert_entity(Customer("c1", name="Acme Inc", email="ap@acme.test"), "stripe")  # changed
        assert tx.entities_with_key("customer", "email", "billing@acme.test") == []
        assert tx.entities_with_key("customer", "email", "ap@acme.test") == ["c1"]
        tx.upsert_entities([Customer("c3", name="Bulk Co", email="ap@acme.test")], "stripe")
        assert tx.entities_with_key("customer", "email", "ap@acme.test") == ["c1", "c3"]
        tx.upsert_entity(Customer("c3", name="Bulk Co", email="ap@acme.test"), "stripe", deleted=True)
        assert tx.entities_with_key("customer", "email", "ap@acme.test") == ["c1"]
        tx.drop_natural_keys("c1")
        assert tx.entities_with_key("customer", "name", "acme inc") == []


def test_the_natural_keys_migration_indexes_the_entities_already_stored(tmp_path: object) -> None:
    from alembic import command
    from alembic.config import Config

    from state.store import MIGRATIONS

    store = make_store(f"sqlite:///{tmp_path}/old.db")
    with store.transaction() as tx:
        tx.upsert_entities([Customer("c1", name="Acme", email="a@acme.test"),
                            Customer("c2", name="Gone", email="g@acme.test")], "stripe")
        tx.upsert_entity(Customer("c2", name="Gone", email="g@acme.test"), "stripe", deleted=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")  # a hub from before natural_keys, with entities
    assert store.init() == schema_head()
    with store.transaction() as tx:
        assert tx.entities_with_key("customer", "email", "a@acme.test") == ["c1"]
        assert tx.entities_with_key("customer", "email", "g@acme.test") == []  # deleted: not indexed
    store.dispose()


def test_placeholder_holders_are_taken_once(store: StateStore) -> None:
    customer, product = ("stripe", "customer", "cus_1"), ("stripe", "product", "prod_1")
    with store.transaction() as tx:
        tx.note_placeholders("inv-1", {"p-cus": customer, "p-prod": product})
        tx.note_placeholders("inv-1", {"p-cus": customer})  # noted again on a re-read: still one row
        tx.note_placeholders("inv-2", {"p-cus": customer})
    with store.transaction() as tx:
        assert tx.placeholder_record("p-cus") == customer and tx.placeholder_record("p-none") is None
        assert tx.take_placeholder_holders(["p-cus", "p-none"]) == {"p-cus": ["inv-1", "inv-2"]}
    with store.transaction() as tx:
        assert tx.take_placeholder_holders(["p-cus"]) == {}  # taken: forgotten
        assert tx.placeholder_record("p-cus") is None
        assert tx.take_placeholder_holders(["p-prod"]) == {"p-prod": ["inv-1"]}
