"""Drift findings: the kinds, one finding as the diff sees it, a run's result, and the report
JSON contract (DESIGN.md) read back from the store for ``hub drift`` and the web layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from state.store import StateStore, Tx
from sync.engine import fingerprint
from sync.finding_view import Places, abouts

KINDS = ("missing", "orphan", "duplicate", "mismatch", "stale", "broken_link", "totals", "unreadable")


@dataclass
class DiffFinding:
    kind: str
    entity: str
    system: str
    canonical_id: str | None
    external_ids: list[str]
    detail: str
    fields: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    delta: tuple[str, str, int] | None = None  # (day, currency, system minus hub) for totals
    status: str = "open"  # "acknowledged": a person already decided on it (a write they dropped)

    @property
    def fingerprint(self) -> str:
        ids = "" if self.canonical_id and self.kind != "duplicate" else ",".join(sorted(self.external_ids))
        return fingerprint(self.kind, self.entity, self.system, self.canonical_id or "", ids, self.key)


@dataclass
class DiffResult:
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    new: int = 0
    resolved: int = 0
    compared: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for f in self.findings:
            counts[f["kind"]] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The report JSON contract of DESIGN.md."""
        return {"run_id": self.run_id, "started_at": self.started_at.isoformat(),
                "finished_at": (self.finished_at or self.started_at).isoformat(),
                "summary": self.summary, "findings": self.findings}


def kept_fingerprints(tx: Tx, entity_type: str) -> set[str]:
    """Duplicates and orphans the user settled with ``--keep``: not reported again.

    ``hub resync --finding ID --keep X`` resolves the finding and records ``kept`` in its
    fields; nothing is deleted in the ledger, so the same set of records is seen again by
    every later diff. A changed set (a third copy appears) has a new fingerprint and is
    reported as new.
    """
    return {f.fingerprint for kind in ("duplicate", "orphan")
            for f in tx.list_findings(kind=kind, status="resolved", entity=entity_type) if "kept" in f.fields}


def store_findings(tx: Tx, entity_type: str, found: list[DiffFinding], run_id: str, result: DiffResult) -> None:
    """Record a diff's findings of ``entity_type`` (skipping the sets the user settled with
    ``--keep``), counting the new ones and listing them on ``result``. The caller then resolves
    what its scope no longer saw (``tx.resolve_unseen_findings``): a whole entity's, or one record's."""
    decided = kept_fingerprints(tx, entity_type)
    seen: set[str] = set()
    for f in found:
        fp = f.fingerprint
        if fp in decided or fp in seen:
            continue  # the user already picked the record to keep for this very set
        seen.add(fp)
        _fid, new = tx.upsert_finding(
            fingerprint=fp, kind=f.kind, entity=f.entity, system=f.system,
            canonical_id=f.canonical_id, external_ids=f.external_ids, fields=f.fields,
            detail=f.detail, run_id=run_id, status=f.status)
        result.new += int(new)
    # one read of this run's findings (a lookup per finding would scan per id prefix)
    result.findings.extend(r.to_json() for r in tx.list_findings(entity=entity_type)
                           if r.fingerprint in seen and r.status != "resolved")


def findings_report(store: StateStore, *, kind: str | None = None, system: str | None = None,
                    status: str | None = None, entity: str | None = None,
                    places: Places | None = None) -> dict[str, Any]:
    """The report JSON (DESIGN.md) for findings in the store, e.g. for `hub drift export`; each
    finding with its ``about`` (``sync/finding_view.py``: customer, document, date, amount, the
    systems' values side by side, links into each vendor's app where ``places`` says them)."""
    with store.transaction() as tx:
        found = tx.list_findings(kind=kind, system=system, status=status, entity=entity)
        runs = tx.last_runs(1, kind="diff")
        about = abouts(tx, found, places)
    counts = dict.fromkeys(KINDS, 0)
    for f in found:
        if f.status != "resolved":
            counts[f.kind] += 1
    run = runs[0] if runs else {}
    return {"run_id": run.get("id", ""), "started_at": _iso(run.get("started_at")),
            "finished_at": _iso(run.get("finished_at")), "summary": counts,
            "findings": [{**f.to_json(), "about": about[f.id]} for f in found]}


def finding_json(tx: Tx, finding_id: str, places: Places | None = None) -> dict[str, Any]:
    """One finding (an id or a unique prefix) as in the report JSON, with its ``about``."""
    found = tx.get_finding(finding_id)
    return {**found.to_json(), "about": abouts(tx, [found], places)[found.id]}


def _iso(value: datetime | date | None) -> str:
    return value.isoformat() if value else ""
