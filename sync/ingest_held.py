"""Held records: a record that fails to map is held (``state.holds``: its raw record, secrets
removed) with an ``unreadable`` finding, and every later pass of its stream tries it again; an
object an event named that is gone at its source is a finding, never a guess stored."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import Connector, Record
from connectors.secret_fields import without_secrets
from state.store import Tx
from sync.context import SyncContext
from sync.ingest_page import ids_by_type
from sync.summary import StreamStats, SyncSummary


class HeldRecords:
    """What ``sync.ingest.Ingest`` does with records it cannot store."""

    ctx: SyncContext

    def ingest(self, tx: Tx, connector: Connector, records: Sequence[Record], summary: SyncSummary,
               run_id: str | None, *, retried: bool = False, skip_unchanged: bool = False) -> None:
        raise NotImplementedError  # ``Ingest.ingest``

    def retry_held(self, connector: Connector, entity_type: str, summary: SyncSummary,
                   run_id: str | None) -> None:
        """Try the stream's held records again, from their stored payloads, and say in the
        summary how many stay held: a held record is never a silent exit 0. Those held or
        released in this pass already (a page carried them) are not tried twice."""
        name = connector.name
        with self.ctx.tx() as tx:
            done = summary.held_now.get((name, entity_type), set())
            held = [h for h in tx.holds_of(name, entity_type) if h.external_id not in done]
            if held:
                records = [Record(entity_type, h.external_id, h.payload, updated_at=h.record_updated_at,
                                  version=h.version) for h in held]
                self.ingest(tx, connector, records, summary, run_id, retried=True)
            still = tx.count_holds(name, entity_type)
        if still:
            summary.errors.append(
                f"{name} {entity_type}: {still} record{'s' if still != 1 else ''} held (unreadable findings, "
                f"`hub drift list --kind unreadable`): fix {'them' if still != 1 else 'it'} in {name} "
                "and the next sync ingests it, or `hub drift ack ID` to let one go")

    def _held(self, tx: Tx, connector: Connector, records: Sequence[Record]) -> dict[tuple[str, str], str]:
        """(type, external id) -> finding fingerprint of the page's records that are held."""
        return {(etype, ext): fp for etype, ids in ids_by_type(records).items()
                for ext, fp in tx.held_ids(connector.name, etype, ids).items()}

    def _hold(self, tx: Tx, connector: Connector, record: Record, exc: Exception, stats: StreamStats,
              summary: SyncSummary, run_id: str | None, *, retried: bool) -> None:
        """A record that failed to map: an ``unreadable`` finding (the diff's own fingerprint for
        the record, so diff and sync speak of one finding) and the raw record held for the next
        pass, unless the finding was acknowledged (then it is let go, as asked)."""
        name, etype, ext = connector.name, record.entity_type, record.external_id
        reason = f"{type(exc).__name__}: {exc}"
        summary.held_now[(name, etype)].add(ext)
        fp = self.ctx.finding(
            tx, "unreadable", etype, name, None, [ext],
            f"{name} {etype} {ext} could not be mapped: {reason}; held, nothing of it written — fix it in "
            f"{name} (every sync tries it again) or acknowledge this finding to let it go",
            run_id, fields={"reason": {name: reason}})
        if tx.finding_status(fp) == "acknowledged":
            tx.release_hold(name, etype, ext, fp)  # a newer version that fails alike: still let go
            stats.skipped += 1
            return
        tx.hold_record(connection=name, entity_type=etype, external_id=ext,
                       payload=without_secrets(connector.system, record.data), version=record.version,
                       record_updated_at=record.updated_at, reason=reason, fingerprint=fp)
        stats.held += 1
        if not retried:
            summary.errors.append(f"{name} {etype} {ext}: cannot map ({reason}); held as an unreadable finding")

    def _gone(self, tx: Tx, connector: Connector, records: Sequence[Record], summary: SyncSummary,
              run_id: str | None) -> None:
        """Objects events named that the system no longer has (read again: not found). Their data
        is only the event's copy, so storing it would make a record from a guess (an empty
        customer, writes to every ledger that can only fail): a finding, and nothing written."""
        for record in records:
            name, etype, ext = connector.name, record.entity_type, record.external_id
            self.ctx.finding(tx, "unreadable", etype, name, None, [ext],
                             f"{record.gone}; nothing written — if it should exist, look for it in {name}, "
                             "else acknowledge this finding", run_id, fields={"reason": {name: str(record.gone)}})
            summary.stats(name, etype).held += 1
            summary.errors.append(f"{name} {etype} {ext}: {record.gone}; nothing written (unreadable finding)")


__all__ = ["HeldRecords"]
