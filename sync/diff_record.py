"""A diff on demand of one hub record: the console's "Diff this record now", and the re-check of
a record right after its resync (``sync/repair.py``), so its finding resolves at once instead of
waiting for the nightly diff.

The record's entity is compared exactly as the scheduled diff compares it (``Differ.diff_entity``:
every holder read in full, none of the rules bent), and only the findings about this record are
kept: upserted, and the record's own open findings that the run no longer sees resolved. So a
diff of one record never resolves another record's findings, and a system that cannot be read
(``ConnectorError``) spoils the comparison: nothing is recorded or resolved — a partial view is
never taken for a deletion. It costs one full read of the entity from each holder: the Connector
protocol has no read by id for every system (``lookup`` finds only records carrying the marker).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import ConnectorError
from sync.diff_run import diff_run
from sync.findings import KINDS, DiffFinding, DiffResult, store_findings
from sync.runtime import Hub

RECORD_KINDS = tuple(k for k in KINDS if k != "totals")  # a day's sums belong to no one record


@dataclass(frozen=True)
class RecordDiff:
    canonical_id: str
    entity: str
    result: DiffResult

    @property
    def compared(self) -> bool:
        return not self.result.errors

    def in_words(self) -> str:
        """One line for a person: what the diff found about this record."""
        if self.result.errors:
            return f"not compared: {'; '.join(self.result.errors)}"
        still = len(self.result.findings)
        return (f"{self.entity} compared in every system: {still} finding(s) about it, "
                f"{self.result.new} new, {self.result.resolved} resolved")


def about_record(finding: DiffFinding, canonical_id: str) -> bool:
    """A finding of this record: keyed by it, or an unreadable copy linked to it."""
    linked = (finding.fields.get("canonical_id") or {}).get("hub") if finding.kind == "unreadable" else None
    return finding.canonical_id == canonical_id or linked == canonical_id


def diff_record(hub: Hub, canonical_id: str) -> RecordDiff:
    """Compare one hub record in every system now; raises LookupError for an unknown id."""
    with hub.store.transaction() as tx:
        stored = tx.get_entity(canonical_id)
    if stored is None:
        raise LookupError(f"no hub record {canonical_id!r}")
    entity = stored.type
    with diff_run(hub.store, hub.differ.clock, f"{entity}:{canonical_id}") as result, \
            hub.store.stream_lock("diff", entity) as mine:
        if not mine:
            result.errors.append(f"{entity}: a diff is running elsewhere; try again when it ends")
        else:
            _compare(hub, entity, canonical_id, result.run_id, result)
    return RecordDiff(canonical_id, entity, result)


def _compare(hub: Hub, entity: str, canonical_id: str, run_id: str, result: DiffResult) -> None:
    try:
        found = hub.differ.diff_entity(entity, result)
    except ConnectorError as exc:  # a partial view: nothing reported, nothing resolved
        result.errors.append(f"{entity} not compared: {exc} - try again once it answers")
        return
    mine = [f for f in found if f.kind in RECORD_KINDS and about_record(f, canonical_id)]
    with hub.store.transaction() as tx:
        store_findings(tx, entity, mine, run_id, result)
        result.resolved += tx.resolve_unseen_findings(run_id, entity=entity, kinds=RECORD_KINDS,
                                                      canonical_id=canonical_id)


__all__ = ["RECORD_KINDS", "RecordDiff", "about_record", "diff_record"]
