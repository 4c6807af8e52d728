"""The bookkeeping of one diff run, for the scheduled diff of entities (``sync/diff.py``) and the
diff of one record on demand (``sync/diff_record.py``): the run row, its lease (a killed
process's run is closed as aborted), and its outcome — failed on an error, partial when a part
could not be compared, with the counts of what it found."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from state.store import StateStore
from sync.findings import DiffResult
from sync.run_lease import run_lease


@contextmanager
def diff_run(store: StateStore, clock: Callable[[], datetime], scope: str) -> Iterator[DiffResult]:
    """A diff run over ``scope`` ("invoice", "customer,invoice", "invoice:<id>"): the body fills
    the result it is given; the run is finished with it however the body ends."""
    with store.transaction() as tx:
        run_id = tx.start_run("diff", scope)
    result = DiffResult(run_id, clock())
    status = "ok"
    try:
        with run_lease(store, run_id):
            yield result
    except Exception as exc:
        status = "failed"
        result.errors.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if status == "ok" and result.errors:
            status = "partial"
        result.finished_at = clock()
        with store.transaction() as tx:
            tx.finish_run(run_id, status, {**result.summary, "new": result.new, "resolved": result.resolved},
                          "; ".join(result.errors) or None)


__all__ = ["diff_run"]
