"""What ``hub sync --dry-run`` says it would write: per connection and entity, how many records
would be linked, updated, created or held, and why.

The dry run reads and plans in state that is thrown away (``sync.engine``); this module then
takes each write the plan queued through the push's own preparation (``Pusher._prepare``: the
same superseding, reference waits, pre-flight holds, first-contact agreement and payload
comparison the real push applies) but sends nothing. A record the target already holds as the
hub has it is "linked" (matched at first contact) or "unchanged"; a create is given a stand-in
link in the thrown-away state so the records that name it are previewed as they would be sent.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import ConnectorError
from mapping.model import Entity
from state.store import OutboxItem, Tx
from sync.context import LinkResolver
from sync.first_contact import differing
from sync.flows import ENTITY_ORDER
from sync.push import Pusher
from sync.summary import StreamStats, SyncSummary

OUTCOMES = ("linked", "unchanged", "updated", "created", "held")


@dataclass
class StreamPlan:
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str, reason: str) -> None:
        self.counts[outcome] += 1
        self.reasons[f"{outcome}: {reason}"] += 1


def preview(pusher: Pusher, chosen: Sequence[str], entities: Sequence[str] | None,
            summary: SyncSummary, held_for_review: Sequence[str] = ()) -> None:
    """Fill ``summary.first_contact`` (the table) and ``summary.planned`` (each write) from
    the outbox of a dry run's thrown-away state. ``held_for_review``: connections whose writes
    wait for ``hub review approve`` (``first_contact = "review"``)."""
    ctx = pusher.ctx
    plans: dict[tuple[str, str], StreamPlan] = defaultdict(StreamPlan)
    for (connection, entity_type), stats in summary.streams.items():
        if stats.held:  # read but not stored: an ambiguous match (a duplicate finding) or unreadable
            plans[(connection, entity_type)].counts["held"] += stats.held
            plans[(connection, entity_type)].reasons["held: ambiguous or unreadable (see hub drift list)"] += stats.held
    pusher.notes = {}
    try:
        for connection in chosen:
            if connection in summary.paused:
                continue
            connector = ctx.connectors[connection]
            facts = connector.capabilities().facts
            if facts is not None:
                try:
                    facts.learn()
                except ConnectorError as exc:
                    summary.errors.append(f"{connection}: cannot read what writing to it needs: {exc}")
                    continue
            started = ctx.clock()
            for entity_type in ENTITY_ORDER:
                if entities and entity_type not in entities:
                    continue
                while True:
                    with ctx.tx() as tx:
                        items = tx.claim_outbox(ctx.batch_size, target=connection, entity_type=entity_type,
                                                lease_seconds=ctx.lease_seconds, due_by=started)
                        for item in items:
                            _one(pusher, tx, item, plans[(connection, entity_type)], summary,
                                 connection in held_for_review)
                    if not items:
                        break
    finally:
        pusher.notes = None
    summary.first_contact = [
        {"connection": c, "entity": e, **{o: p.counts.get(o, 0) for o in OUTCOMES},
         "why": dict(sorted(p.reasons.items()))}
        for (c, e), p in sorted(plans.items()) if p.counts]


def _one(pusher: Pusher, tx: Tx, item: OutboxItem, plan: StreamPlan, summary: SyncSummary,
         review: bool) -> None:
    connector = pusher.ctx.connectors[item.target]
    stats = StreamStats()
    seen = pusher.ingest.first_seen.get((item.target, item.entity_type, item.canonical_id))
    link_before = tx.link_for(item.canonical_id, item.target, item.entity_type)
    outbound = pusher._prepare(tx, connector, item, LinkResolver(tx, item.target), stats, None)
    if outbound is None:
        assert pusher.notes is not None
        note = pusher.notes.pop(item.id, None)
        if note is not None:
            plan.add("held", note)
        elif stats.unchanged or (link_before is not None and link_before.last_pushed_hash == item.content_hash):
            if seen is not None:
                plan.add("linked", "matched at first contact; holds what the hub has")
            else:
                plan.add("unchanged", "already written")
        return  # else superseded by a newer write of the same record: counted there
    stored = tx.get_entity(item.canonical_id)
    entity = stored.entity() if stored is not None else None
    if outbound.external_id:
        outcome, reason = "updated", _why_update(connector.system, entity, seen, pusher.ingest.home(item.target),
                                                 tx, item)
    else:
        outcome, reason = "created", f"no {item.entity_type} in {item.target} matches by marker or natural keys"
        # a stand-in, in the thrown-away state only: what names it is previewed as it would be sent
        tx.link(item.canonical_id, item.target, item.entity_type, f"(new {item.canonical_id})")
    tx.complete_outbox(item.id, outbound.external_id)
    if review:
        plan.add("held", f"first_contact = review: would be {outcome} once `hub review approve` lets it")
    else:
        plan.add(outcome, reason)
    history = tx.history_of(item.canonical_id)
    summary.planned.append({
        "system": item.target, "operation": "update" if outbound.external_id else "create",
        "entity": item.entity_type, "record": item.canonical_id, "external_id": outbound.external_id,
        "changed_fields": sorted(history[-1]["changes"]) if history else [], "reason": reason,
        "held": review})


def _why_update(system: str, entity: Entity | None, seen: Entity | None, home: str | None, tx: Tx,
                item: OutboxItem) -> str:
    if entity is not None and seen is not None:
        fields = differing(system, entity, seen, home)
        return f"matched at first contact; differs in {', '.join(fields) or 'what it would be sent'}"
    history = tx.history_of(item.canonical_id)
    changes: dict[str, Any] = history[-1]["changes"] if history else {}
    return f"changed in the hub: {', '.join(sorted(changes)) or 'content'}"


__all__ = ["OUTCOMES", "preview"]
