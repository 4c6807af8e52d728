"""The audit log on SQLite and PostgreSQL: appended, filtered, tied to its record, and never
changed or deleted — the database itself refuses (a trigger), not only the store's API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from state.audit import AuditFilter
from state.errors import StateError
from state.store import StateStore
from sync.audit import REDACTED, audit_for_record, cli_actor, record_action
from tests.conftest import FrozenClock, make_store


def _finding(store: StateStore, canonical_id: str = "c-1") -> str:
    with store.transaction() as tx:
        run = tx.start_run("diff")
        tx.upsert_finding(fingerprint="fp-1", kind="mismatch", entity="customer", system="stripe",
                          canonical_id=canonical_id, external_ids=["cus_1"],
                          fields={"name": {"hub": "A", "stripe": "B"}}, detail="", run_id=run)
        (finding,) = tx.list_findings()
        return finding.id


def test_an_action_is_kept_with_its_actor_time_states_reason_and_record(store: StateStore,
                                                                        clock: FrozenClock) -> None:
    finding_id = _finding(store)
    with store.transaction() as tx:
        entry_id = record_action(tx, "console:alice", "finding.ack", "finding", finding_id,
                                 before={"status": "open"}, after={"status": "acknowledged",
                                                                   "amount": Decimal("99.95")},
                                 reason="  known: the customer renamed it  ")
    with store.transaction() as tx:
        (entry,) = tx.list_audit()
        timeline = audit_for_record(tx, "c-1")
    assert entry.id == entry_id and entry.at == clock.now
    assert (entry.actor, entry.action, entry.target_kind, entry.target_id) == \
        ("console:alice", "finding.ack", "finding", finding_id)
    assert entry.before == {"status": "open"}
    assert entry.after == {"status": "acknowledged", "amount": Decimal("99.95")}  # exact, not a float
    assert entry.reason == "known: the customer renamed it"
    assert entry.canonical_id == "c-1"  # the finding's record, looked up
    assert [e.id for e in timeline] == [entry_id]


def test_floats_are_refused_and_secrets_redacted(store: StateStore) -> None:
    with store.transaction() as tx:
        with pytest.raises(TypeError):
            record_action(tx, "cli:root", "connection.connect", "connection", "xero", after={"ratio": 0.5})
        record_action(tx, "cli:root", "connection.connect", "connection", "xero",
                      after={"refresh_token": "RT-secret", "nested": [{"client_secret": "S"}], "tenant": "T1"})
    with store.transaction() as tx:
        (entry,) = tx.list_audit()
    assert entry.after == {"refresh_token": REDACTED, "nested": [{"client_secret": REDACTED}], "tenant": "T1"}


def test_filters_by_actor_action_target_and_time_newest_first(store: StateStore, clock: FrozenClock) -> None:
    start = clock.now
    with store.transaction() as tx:
        record_action(tx, "console:alice", "finding.ack", "finding", "f1")
        clock.advance(minutes=1)
        record_action(tx, "api:alice", "outbox.drop", "outbox", "7", reason="vendor refuses it")
        clock.advance(minutes=1)
        record_action(tx, "cli:bob", "outbox.retry", "outbox", "8")
        record_action(tx, "cli:bob", "resync.record", "record", "c-9")
    with store.transaction() as tx:
        assert [e.target_id for e in tx.list_audit()] == ["c-9", "8", "7", "f1"]
        assert [e.actor for e in tx.list_audit(AuditFilter(actor="alice"))] == ["api:alice", "console:alice"]
        assert [e.actor for e in tx.list_audit(AuditFilter(actor="cli:bob"))] == ["cli:bob", "cli:bob"]
        assert [e.action for e in tx.list_audit(AuditFilter(action="outbox"))] == ["outbox.retry", "outbox.drop"]
        assert [e.target_id for e in tx.list_audit(AuditFilter(target_kind="outbox", target_id="7"))] == ["7"]
        window = AuditFilter(since=start + timedelta(minutes=1), until=start + timedelta(minutes=2))
        assert [e.target_id for e in tx.list_audit(window)] == ["7"]
        assert tx.count_audit(AuditFilter(actor="bob")) == 2
        assert [e.target_id for e in tx.list_audit(limit=2, offset=1)] == ["8", "7"]
        assert [e.canonical_id for e in tx.audit_of_record("c-9")] == ["c-9"]
        assert tx.list_audit(AuditFilter(actor="%")) == []  # a LIKE wildcard is a plain character


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"])
def test_the_database_refuses_to_change_or_delete_an_entry(store: StateStore, statement: str) -> None:
    with store.transaction() as tx:
        record_action(tx, cli_actor(), "finding.ack", "finding", "f1", reason="why")
    with pytest.raises(StateError, match="append-only"), store.transaction() as tx:
        tx.conn.execute(text(statement))
    with store.transaction() as tx:
        (entry,) = tx.list_audit()
    assert entry.actor.startswith("cli:") and entry.reason == "why"


def test_the_store_offers_no_way_to_change_an_entry() -> None:
    from state.audit import AuditMixin

    verbs = [name for name in vars(AuditMixin) if not name.startswith("_")]
    assert sorted(verbs) == ["append_audit", "audit_of_record", "count_audit", "list_audit", "record_of_target"]


@pytest.mark.postgres
def test_postgres_refuses_to_truncate_the_log(pg_schema_url: str) -> None:
    store = make_store(pg_schema_url)
    try:
        with store.transaction() as tx:
            record_action(tx, "cli:root", "user.add", "user", "rita")
        with pytest.raises(StateError, match="append-only"), store.transaction() as tx:
            tx.conn.execute(text("TRUNCATE audit_log"))
        with store.transaction() as tx:
            assert tx.count_audit() == 1
    finally:
        store.dispose()
