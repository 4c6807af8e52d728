"""The run history is indexed where every run start and every status page looks (issue 22: the
tenants bench found rows read per connection growing with the connections — each run start's
close of abandoned runs and each "newest runs" read scanned every run ever made)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from state.store import StateStore


def test_the_migrations_make_the_run_indexes_on_both_databases(store: StateStore) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes("runs")}
    assert indexes["ix_runs_status"] == ["status"]
    assert indexes["ix_runs_kind_started"] == ["kind", "started_at"]
    assert indexes["ix_runs_started"] == ["started_at"]


def test_closing_abandoned_runs_and_reading_the_newest_use_them(sqlite_store: StateStore) -> None:
    with sqlite_store.transaction() as tx:
        for _ in range(50):
            tx.finish_run(tx.start_run("sync", "stripe:invoice"), "ok", {})
    with sqlite_store.engine.connect() as conn:
        closing = " ".join(str(row[-1]) for row in conn.execute(text(
            "EXPLAIN QUERY PLAN UPDATE runs SET status = 'aborted' WHERE status = 'running'")))
        newest = " ".join(str(row[-1]) for row in conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE kind = 'sync' ORDER BY started_at DESC LIMIT 10")))
        status_page = " ".join(str(row[-1]) for row in conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT id FROM runs ORDER BY started_at DESC LIMIT 10")))
    assert "ix_runs_status" in closing, closing
    assert "ix_runs_kind_started" in newest and "TEMP B-TREE" not in newest, newest
    assert "ix_runs_started" in status_page and "TEMP B-TREE" not in status_page, status_page
