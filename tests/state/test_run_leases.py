"""A run left "running" by a process that died is closed as aborted at the next run start;
a live process's run (its lease renewed) is untouched. SQLite and PostgreSQL, pinned clock."""

from __future__ import annotations

from state.runs import RUN_LEASE
from state.store import StateStore
from sync.config import Config
from sync.queries import gather_status
from sync.run_lease import renew
from tests.conftest import FrozenClock

NO_CONNECTIONS = Config(path=None, state_url="", encryption_key=None, connections={})


def _statuses(store: StateStore) -> dict[str, str]:
    data = gather_status(store, NO_CONNECTIONS)
    return {r["id"]: r["status"] for r in data["runs"]}


def test_a_dead_owners_run_is_aborted_and_a_live_ones_is_not(store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        dead = tx.start_run("sync", "stripe")
        live = tx.start_run("diff", "customer")
    # The live process keeps renewing; the dead one stopped when it was killed.
    for _ in range(3):
        clock.advance(seconds=RUN_LEASE.total_seconds() / 2)
        renew(store, live)
    assert _statuses(store) == {dead: "running", live: "running"}  # nothing closes a run but a start
    with store.transaction() as tx:
        fresh = tx.start_run("sync", "stripe")
    statuses = _statuses(store)
    assert statuses == {dead: "aborted", live: "running", fresh: "running"}
    (row,) = [r for r in gather_status(store, NO_CONNECTIONS)["runs"] if r["id"] == dead]
    assert row["finished_at"] == clock.now and "aborted" in row["error"]


def test_a_run_within_its_lease_is_not_aborted_and_a_finished_one_stays(store: StateStore,
                                                                       clock: FrozenClock) -> None:
    with store.transaction() as tx:
        recent = tx.start_run("sync")
        done = tx.start_run("sync")
        tx.finish_run(done, "ok", {})
    clock.advance(seconds=RUN_LEASE.total_seconds() - 1)
    with store.transaction() as tx:
        assert tx.abort_abandoned_runs() == 0
    clock.advance(seconds=2)
    with store.transaction() as tx:
        assert tx.abort_abandoned_runs() == 1
    assert _statuses(store) == {recent: "aborted", done: "ok"}
