"""The cluster's job queue in the hub's PostgreSQL: Procrastinate's connector and its schema.

``hub run --engine procrastinate`` puts the daemon's work on Procrastinate (``sync/cluster/``).
Its tables live beside the hub's, in the same database and search_path, so the one PostgreSQL
the hub already needs is the only thing a cluster of workers shares. This module is the state
layer's part: it turns the hub's SQLAlchemy URL into the connection Procrastinate opens and
creates Procrastinate's schema once, and answers the one question the cluster's sweep asks of the
hub's tables: which connections have writes due (SQL lives in ``state/``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate import PsycopgConnector
from procrastinate.schema import SchemaManager
from sqlalchemy import select
from sqlalchemy.engine import make_url

from state import schema as t
from state.errors import StateError
from state.queues import outbox_due
from state.txbase import TxBase

# Serialises the "does the schema exist, else create it" of workers that start together.
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('billhub:procrastinate-schema'))"
# Procrastinate's own pool, per process: its worker polls, heartbeats and defers through it.
# Small, so that many workers stay inside PostgreSQL's max_connections beside the hub's pool.
POOL_MIN, POOL_MAX = 1, 4


# Many periodic jobs in one statement, each through Procrastinate's own periodic-defer function
# (one job per task, periodic id and tick, whoever defers it). A row whose queueing lock already
# has a waiting job is left out: that job does the work, and the function would raise for it.
# One at a time, a sweep that found 10,000 pushes due spent 15 s in round trips.
DEFER_PERIODIC_MANY = """
SELECT count(procrastinate_defer_periodic_job_v2(d.queue, d.lock, d.queueing_lock, d.task_name, d.priority,
                                                 d.periodic_id, d.defer_timestamp, d.args)) AS deferred
  FROM unnest(%(queues)s::varchar[], %(locks)s::varchar[], %(queueing_locks)s::varchar[], %(task_names)s::varchar[],
              %(priorities)s::int[], %(periodic_ids)s::varchar[], %(timestamps)s::bigint[], %(args)s::jsonb[])
       AS d(queue, lock, queueing_lock, task_name, priority, periodic_id, defer_timestamp, args)
 WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS waiting
                    WHERE waiting.queueing_lock = d.queueing_lock AND waiting.status = 'todo')
"""


@dataclass(frozen=True)
class PeriodicDefer:
    """One periodic job to defer (what ``JobManager.defer_periodic_job`` takes, as data)."""

    queue: str
    task_name: str
    priority: int
    lock: str | None
    queueing_lock: str
    periodic_id: str
    defer_timestamp: int
    args: dict[str, Any]


async def defer_periodic_many(connector: Any, jobs: Sequence[PeriodicDefer]) -> int:
    """Defer ``jobs`` in one statement on ``connector`` (an open Procrastinate async connector);
    how many were new. Raises Procrastinate's UniqueViolation when a job with one of their
    queueing locks was deferred meanwhile by someone else (the statement then defers nothing)."""
    if not jobs:
        return 0
    row = await connector.execute_query_one_async(
        DEFER_PERIODIC_MANY, queues=[j.queue for j in jobs], locks=[j.lock for j in jobs],
        queueing_locks=[j.queueing_lock for j in jobs], task_names=[j.task_name for j in jobs],
        priorities=[j.priority for j in jobs], periodic_ids=[j.periodic_id for j in jobs],
        timestamps=[j.defer_timestamp for j in jobs], args=[json.dumps(j.args) for j in jobs])
    return int(row["deferred"])


def conninfo(url: str) -> str:
    """libpq's form of a ``postgresql+psycopg://`` URL (query options such as a test's
    ``options=-csearch_path=...`` kept). Raises StateError for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise StateError("the procrastinate engine needs PostgreSQL: set [state] url to a "
                         "postgresql+psycopg:// URL (SQLite serves one process: use the embedded engine)")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def connector(url: str) -> PsycopgConnector:
    """Procrastinate's connector to the hub's database (opened by the App that uses it)."""
    return PsycopgConnector(conninfo=conninfo(url), min_size=POOL_MIN, max_size=POOL_MAX)


def ensure_schema(url: str) -> bool:
    """Create Procrastinate's tables and functions unless they exist; True when created.

    Under an advisory lock, so workers that start at once create it once. Upgrading
    Procrastinate later means applying its migrations (``procrastinate schema --migrations-path``)."""
    with psycopg.connect(conninfo(url), autocommit=False) as conn:
        conn.execute(_SCHEMA_LOCK)
        row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is not None and row[0] is not None:
            return False
        conn.execute(SchemaManager.get_schema())
        conn.commit()
    return True


def due_targets(tx: TxBase) -> set[str]:
    """The connections the outbox holds writes for that a push would claim now: pending and due,
    or in flight with a lapsed lease (their process died) — ``claim_outbox``'s own condition.
    One query on ``ix_outbox_due``, whatever the number of connections: the sweep defers a
    connection's push only when this names it."""
    query = select(t.outbox.c.target).where(outbox_due(tx.now)).distinct()
    return {str(target) for target in tx.conn.execute(query).scalars()}


__all__ = ["DEFER_PERIODIC_MANY", "PeriodicDefer", "conninfo", "connector", "defer_periodic_many", "due_targets",
           "ensure_schema"]
