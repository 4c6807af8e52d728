"""Keeping a run's lease while its process works on it.

A run row says ``running`` only while its lease holds (``state/runs.py``); a thread renews it on
its own schedule, so one long page or a slow vendor call never lets a live run look abandoned,
and a killed process simply stops renewing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from state.errors import StateError
from state.runs import RUN_LEASE
from state.store import StateStore

log = logging.getLogger("billhub.runs")

# Renew at a fifth of the lease: several renewals may fail (a busy SQLite file) before it lapses.
RENEW_EVERY = RUN_LEASE.total_seconds() / 5


def renew(store: StateStore, run_id: str) -> None:
    """One renewal; a failure is logged and the next one tries again."""
    try:
        with store.transaction() as tx:
            tx.renew_run(run_id)
    except StateError as exc:
        log.warning("could not renew the run's lease", extra={"run": run_id, "error": str(exc)})


@contextmanager
def run_lease(store: StateStore, run_id: str, every: float = RENEW_EVERY) -> Iterator[None]:
    """Renew ``run_id``'s lease every ``every`` seconds until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            renew(store, run_id)

    thread = threading.Thread(target=beat, name=f"run-lease-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
