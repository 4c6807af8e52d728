"""``first_contact = "review"``: a connection's writes wait for a person's approval.

A team meeting a ledger that already holds its books may want to see what the hub would write
before it writes anything. With ``first_contact = "review"`` (per connection, or in ``[flows]``
for all), the hub reads and plans as usual but sends nothing to a connection nobody has
approved yet: its writes stay queued (planned, not sent) and ``hub review`` lists them; ``hub
review approve [--connection C]`` lets them go, once — after that the connection syncs as
any other. The approval is recorded as a run of kind ``approve`` scoped to the connection (when
and by which process, as every run), so it needs no table of its own and shows in the run log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from state.store import StateStore, Tx
from sync.audit import record_action

MODES = ("auto", "review")
APPROVE = "approve"
REVIEW_WAIT = 'held for review (first_contact = "review"): `hub review approve` lets it go'


def review_connections(connections: Mapping[str, Mapping[str, Any]], default: str | None) -> set[str]:
    """The connections configured for review: their own ``first_contact``, else the global one."""
    return {name for name, settings in connections.items()
            if (settings.get("first_contact") or default or "auto") == "review"}


def approved(tx: Tx) -> set[str]:
    """The connections a person has approved (ever: approval is once, at first contact)."""
    return {str(r["scope"]) for r in tx.last_runs(limit=10**6, kind=APPROVE) if r["status"] == "ok"}


def approve(store: StateStore, connections: Iterable[str], *, actor: str) -> list[str]:
    """Record the approval of each connection not approved yet, by ``actor`` (in the audit log,
    with the writes it let go); returns those approved now."""
    done = []
    with store.transaction() as tx:
        already = approved(tx)
        for name in connections:
            if name in already:
                continue
            pending = pending_counts(tx, [name]).get(name, {})
            run_id = tx.start_run(APPROVE, name)
            tx.finish_run(run_id, "ok", {"pending": pending}, None)
            record_action(tx, actor, "review.approve", "connection", name, before={"approved": False},
                          after={"approved": True, "pending": pending})
            done.append(name)
    return done


def pending_counts(tx: Tx, connections: Sequence[str]) -> dict[str, dict[str, int]]:
    """connection -> "entity operation" -> how many writes are queued for it."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in connections}
    for item in tx.list_outbox("pending", limit=10**9):
        if item.target in counts:
            operation = "update" if item.external_id else item.operation if item.operation != "upsert" else "create"
            counts[item.target][f"{item.entity_type} {operation}"] += 1
    return {name: dict(sorted(c.items())) for name, c in counts.items()}


__all__ = ["APPROVE", "MODES", "REVIEW_WAIT", "approve", "approved", "pending_counts", "review_connections"]
