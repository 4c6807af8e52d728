"""The daemon's inbox job: the webhook events stored by ``sync/web/webhooks.py``, claimed in
batches and processed (``InboxWork``, a part of ``sync.scheduler.Jobs``).

Stripe events name an object that is read again (or answered from the store when the hub holds
a later state: ``connectors/stripe/versions.py``), all of a claim's records stored together;
QuickBooks and Xero events carry ids only and nudge an incremental read of their stream. A run
that claimed fewer than a full batch pushes at once, so the change reaches the ledgers without
waiting for the outbox job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from connectors.base import Answered, Connector, Record
from state.store import InboxItem
from sync.engine import SyncSummary
from sync.flows import ENTITY_ORDER
from sync.inbox_retry import retry_in
from sync.lane import DaemonStopping
from sync.runtime import Hub
from sync.usage import USAGE, send_usage

log = logging.getLogger("billhub.daemon")
INBOX_LEASE_SECONDS = 60  # short: items claimed when a stop interrupts come back soon after restart
# Events claimed per inbox run. A run that found fewer waiting ends with one push per connection
# (the webhook's change reaches the ledgers at once); a full claim leaves the push to the outbox
# job and the next claim follows. Ingesting 500 events takes seconds, well inside the lease.
INBOX_BATCH = 500


class InboxWork:
    """The inbox job's body; ``Jobs`` provides the hub, the clock, the pause checks and the push."""

    hub: Hub
    clock: Callable[[], datetime]
    inbox_batch: int
    # (connection, entity) streams whose webhook nudge found the stream being read (``Jobs.sync_stream``)
    nudged: set[tuple[str, str]]

    def paused_reason(self, connection: str) -> str | None:
        raise NotImplementedError

    def _push_connections(self, summary: SyncSummary) -> None:
        raise NotImplementedError

    def _note(self, summary: SyncSummary) -> None:
        raise NotImplementedError

    def process_inbox(self) -> str:
        with self.hub.store.transaction() as tx:
            items = tx.claim_inbox(self.inbox_batch, lease_seconds=INBOX_LEASE_SECONDS)
        if not items:
            return "empty"
        summary = SyncSummary()
        pulled: set[tuple[str, str]] = set()
        done: list[int] = []
        failed = 0
        stripe: dict[str, list[InboxItem]] = defaultdict(list)
        others: list[InboxItem] = []
        for item in items:
            connector = self.hub.connectors.get(item.system)
            refetching = connector is not None and connector.capabilities().refetch is not None
            (stripe[item.system] if refetching else others).append(item)
        try:
            for name, group in stripe.items():
                failed += self._process_stripe_events(self.hub.connectors[name], group, summary, done)
            for item in others:
                try:
                    self._process_event(item, summary, pulled)
                except DaemonStopping:
                    raise  # unfinished items come back when their lease expires
                except Exception as exc:
                    failed += 1
                    self._fail_event(item, exc)
                    continue
                done.append(item.id)
        finally:  # what was stored is marked, a stop included
            with self.hub.store.transaction() as tx:
                tx.finish_inbox_many(done)
        if len(items) < self.inbox_batch:
            self._push_connections(summary)
        # else more events wait: take them next rather than push now. The outbox hands out the
        # oldest writes first, so under a backlog this push would not have carried these
        # events' writes anyway; at 10x it made each claim of 500 events wait minutes for
        # thousands of older writes while the inbox grew. The outbox job pushes meanwhile.
        self._note(summary)
        answered = summary.totals().answered
        return f"processed {len(items) - failed}, failed {failed}" + (
            f", {answered} answered from the store" if answered else "")

    def _fail_event(self, item: InboxItem, exc: Exception) -> None:
        with self.hub.store.transaction() as tx:
            tx.finish_inbox(item.id, error=f"{type(exc).__name__}: {exc}"[:2000],
                            retry_in=retry_in(item.attempts, exc, now=self.clock()))
        log.warning("inbox event failed", extra={"connection": item.system, "event": item.event_id,
                                                 "error": type(exc).__name__})

    def _process_stripe_events(self, connector: Connector, items: list[InboxItem], summary: SyncSummary,
                               done: list[int]) -> int:
        """One connection's Stripe events of a claim, together: each object read once, then the
        records stored in one transaction (one prefetch) instead of one per event. When that
        transaction fails, event by event, so one bad event does not hold back the rest."""
        failed = 0
        readable: list[tuple[InboxItem, list[Record]]] = []
        refetch = connector.capabilities().refetch
        assert refetch is not None  # grouped by process_inbox on this capability

        def held(keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], str]:
            with self.hub.store.transaction() as tx:
                return tx.held_versions(connector.name, keys)
        for item, got in zip(items, refetch.records_for_events([i.payload for i in items], held), strict=True):
            if isinstance(got, Exception):
                failed += 1
                self._fail_event(item, got)
            elif isinstance(got, Answered):  # the hub holds its object at a later state: done
                summary.stats(connector.name, got.entity_type).answered += 1
                done.append(item.id)
            else:
                readable.append((item, got))
        try:
            for batch in distinct_batches([r for _, records in readable for r in records]):
                with self.hub.store.transaction() as tx:
                    self.hub.engine.ingest(tx, connector, batch, summary, None)
        except DaemonStopping:
            raise
        except Exception:
            log.warning("inbox batch failed; storing its events one by one", extra={"connection": connector.name})
            for item, records in readable:
                try:
                    with self.hub.store.transaction() as tx:
                        self.hub.engine.ingest(tx, connector, records, summary, None)
                except DaemonStopping:
                    raise
                except Exception as exc:
                    failed += 1
                    self._fail_event(item, exc)
                    continue
                done.append(item.id)
            return failed
        done.extend(item.id for item, _ in readable)
        return failed

    def _process_event(self, item: InboxItem, summary: SyncSummary, pulled: set[tuple[str, str]]) -> None:
        if item.system == USAGE:
            self._process_usage(item)
            return
        connector = self.hub.connectors.get(item.system)
        if connector is None:
            raise LookupError(f"no connection {item.system!r} for this event")
        # QuickBooks and Xero events carry ids only: they nudge an incremental read of the
        # entity, which picks the change up (and anything else changed meanwhile).
        entity = item.payload.get("entity_type")
        if not entity or entity not in self.hub.routing.reads(connector.system):
            return
        if (item.system, entity) in pulled or self.paused_reason(item.system):
            return
        pulled.add((item.system, entity))
        # The same advisory lock as the scheduled read: a stream is read by one process at a
        # time. Held elsewhere: that read (or the next scheduled one) picks the change up. Held
        # here, by a stream sync that handed the lane on between its pages (``sync.lane``), its
        # read may be past the change already: noted, so that sync reads once more when done.
        with self.hub.store.stream_lock("sync", item.system, entity) as mine:
            if mine:
                self.hub.engine.pull(item.system, entity, summary, None)
            else:
                self.nudged.add((item.system, entity))

    def _process_usage(self, item: InboxItem) -> None:
        send_usage(self.hub, item)


def distinct_batches(records: list[Record]) -> list[list[Record]]:
    """The records in order, split so that no batch holds one object twice (an object read
    again is one record however many events named it; a deletion and a snapshot are two, and
    stay in their order), each batch in entity order so references are stored first."""
    batches: list[list[Record]] = [[]]
    held: dict[tuple[str, str], Record] = {}
    for record in records:
        key = (record.entity_type, record.external_id)
        if key in held:
            if held[key] is record:
                continue
            batches.append([])
            held = {}
        held[key] = record
        batches[-1].append(record)
    rank = {entity: i for i, entity in enumerate(ENTITY_ORDER)}
    return [sorted(b, key=lambda r: rank.get(r.entity_type, len(rank))) for b in batches if b]


__all__ = ["INBOX_BATCH", "INBOX_LEASE_SECONDS", "InboxWork", "distinct_batches"]
