"""Never store a record over a provably newer state of the same object.

A webhook's object read again and a change feed's page can carry one object in either order, in
one process or several (``sync/scheduler.py`` runs the inbox beside the change feeds on
PostgreSQL). A connector that can order its versions (``Capabilities.versions``; Stripe: when
each state was current, ``connectors.stripe.versions``) has each record compared, inside the
ingest's transaction, with the version the hub keeps on its link (``links.remote_version``):

* provably older: left out, counted ``stale`` — storing it would turn the hub's record back;
* otherwise stored, and the link keeps ``VersionOrder.latest`` of the two, so the version held
  only moves forward and the inbox may answer an older event from it.

On PostgreSQL the links compared are locked (``FOR UPDATE``) until the transaction ends: two
transactions storing one object take turns, the second comparing with what the first stored.
SQLite takes one writer at a time (``BEGIN IMMEDIATE``) already.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from connectors.base import Connector, Record
from state.store import Tx
from sync.ingest_page import ids_by_type
from sync.summary import SyncSummary


def drop_stale(tx: Tx, connector: Connector, records: Sequence[Record], summary: SyncSummary, *,
               retried: bool = False) -> list[Record]:
    """The records to store, in order: those provably older than the state held are left out
    (counted read and stale); the rest carry the version their link is to keep."""
    versions = connector.capabilities().versions
    if versions is None:
        return list(records)
    by_type = ids_by_type(r for r in records if r.version and not r.deleted)
    for entity_type in sorted(by_type):  # one order for every transaction: no lock cycle
        tx.prefetch_links(connector.name, entity_type, by_type[entity_type], lock=True)
    kept: list[Record] = []
    for record in records:
        link = tx.link_by_external(connector.name, record.entity_type, record.external_id) \
            if record.version and not record.deleted else None
        held = link.remote_version if link is not None and not link.deleted else None
        if record.version is None or not held:
            kept.append(record)
            continue
        if versions.precedes(record.version, held):
            stats = summary.stats(connector.name, record.entity_type)
            if not retried:
                stats.read += 1
            stats.stale += 1
            continue
        kept.append(dataclasses.replace(record, version=versions.latest(record.version, held)))
    return kept


__all__ = ["drop_stale"]
