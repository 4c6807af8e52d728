"""The diff's day totals: per day and currency, what record-level findings do not explain.

For each entity type in ``TOTALLED`` and each of its measures (a document's amount; a payout's
net and, apart, its fee total), the source systems' sums are compared with each target's. A
record finding (mismatch, stale, missing, broken_link, orphan, duplicate) accounts for its own
amount — counted once per record — so a day is reported only for what nothing else explains.
Records the hub derives itself (a negative invoice's credit note) stand in the sources' totals.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence

from sync.findings import DiffFinding

# The day totals per entity type, by measure: a document's amount; a payout's net (what reached
# the bank, the ledgers' transfer) and its fees (their fee Purchase / SPEND), apart.
TOTALLED: Mapping[str, tuple[str, ...]] = {
    "invoice": ("amount",), "payment": ("amount",), "refund": ("amount",), "credit_note": ("amount",),
    "payout": ("amount", "fee_total")}


def measure_sql(measure: str, table: str) -> str:
    """The SQL of one measure of a scratch row (``table`` the alias with its dot, or '')."""
    if measure == "amount":
        return f"{table}amount"
    return f"CAST(json_extract({table}fields, '$.{measure}') AS INTEGER)"


def record_amounts(db: sqlite3.Connection, finding: DiffFinding,
                    measure: str = "amount") -> Iterator[tuple[str, str, str, int]]:
    """The (system, day, currency, correction) a record finding already accounts for."""
    if finding.kind in ("mismatch", "stale") and finding.canonical_id:
        # what the system's day sum would be if it agreed with the hub (sums leave voids out)
        row = db.execute(f"SELECT h.day, h.currency, CASE WHEN h.void THEN 0 ELSE {measure_sql(measure, 'h.')} END, "
                         f"CASE WHEN s.void THEN 0 ELSE {measure_sql(measure, 's.')} END FROM sys s JOIN hub h "
                         "ON h.canonical_id = s.key WHERE s.system = ? AND s.key = ?",
                         (finding.system, finding.canonical_id)).fetchone()
        if row and row[0] and row[2] is not None and row[3] is not None:
            yield finding.system, row[0], row[1], int(row[2]) - int(row[3])
    elif finding.kind in ("missing", "broken_link") and finding.canonical_id:
        row = db.execute(f"SELECT day, currency, {measure_sql(measure, '')}, void FROM hub WHERE canonical_id = ?",
                         (finding.canonical_id,)).fetchone()
        if row and row[0] and row[2] is not None and not row[3]:
            # the sys side lacks the record: add what it should have had (broken_link may still be
            # present as voided; a deleted one is absent from the sums either way)
            present = db.execute(f"SELECT {measure_sql(measure, '')} FROM sys WHERE system = ? AND external_id IN "
                                 "(SELECT external_id FROM links WHERE canonical_id = ? AND system = ?) "
                                 "AND deleted = 0 AND void = 0",
                                 (finding.system, finding.canonical_id, finding.system)).fetchone()
            if present is None:
                yield finding.system, row[0], row[1], int(row[2])
    elif finding.kind in ("orphan", "duplicate"):
        extra_ids = finding.external_ids if finding.kind == "orphan" else finding.external_ids[1:]
        for external_id in extra_ids:
            row = db.execute(f"SELECT day, currency, {measure_sql(measure, '')} FROM sys WHERE system = ? AND external_id = ? "
                             "AND deleted = 0 AND void = 0", (finding.system, external_id)).fetchone()
            if row and row[0] and row[2] is not None:
                yield finding.system, row[0], row[1], -int(row[2])


def measure_totals(db: sqlite3.Connection, entity_type: str, holders: Sequence[str], sources: Sequence[str],
                   record_findings: Sequence[DiffFinding], measure: str, tolerance_minor: int) -> Iterator[DiffFinding]:
    """One measure's day totals (``amount``: a document's amount, a payout's net; ``fee_total``)."""
    value = measure_sql(measure, "")
    sums: dict[tuple[str, str, str], int] = defaultdict(int)
    for system, day, currency, total in db.execute(
            f"SELECT system, day, currency, sum({value}) FROM sys WHERE deleted = 0 AND void = 0 "
            "AND day IS NOT NULL GROUP BY system, day, currency"):
        sums[(system, day, currency)] = int(total or 0)
    # Records the hub derives itself (a negative invoice's credit note) no source system holds:
    # their amounts are what the sources' totals stand for (README "Posting model").
    derived: dict[tuple[str, str], int] = defaultdict(int)
    for day, currency, total in db.execute(
            f"SELECT day, currency, sum({value}) FROM hub WHERE deleted = 0 AND void = 0 AND day IS NOT NULL "
            + "".join(" AND instr(expected, ?) = 0" for _ in sources) + " GROUP BY day, currency",
            [f",{s}," for s in sources]):
        derived[(day, currency)] = int(total or 0)
        sums.setdefault((sources[0], day, currency), 0)
    explained: dict[tuple[str, str, str], int] = defaultdict(int)
    compared: set[tuple[str, str | None]] = set()
    for finding in record_findings:
        if finding.kind in ("broken_link", "missing", "mismatch", "stale") and finding.canonical_id:
            if (finding.system, finding.canonical_id) in compared:
                continue  # one record with two findings (owned and other fields): its amount counts once
            compared.add((finding.system, finding.canonical_id))
        for system, day, currency, amount in record_amounts(db, finding, measure):
            explained[(system, day, currency)] += amount
    days = {(d, c) for (_s, d, c) in sums}
    name, what = ("total", entity_type) if measure == "amount" else (measure, f"{entity_type} {measure}")
    suffix = "" if measure == "amount" else f"/{measure}"
    for target in holders:
        if target in sources:
            continue
        for day, currency in sorted(days):
            source_total = derived.get((day, currency), 0) + sum(
                sums.get((s, day, currency), 0) + explained.get((s, day, currency), 0) for s in sources)
            target_total = sums.get((target, day, currency), 0) + explained.get((target, day, currency), 0)
            if abs(target_total - source_total) > tolerance_minor and (
                    sums.get((target, day, currency)) is not None):
                delta = target_total - source_total
                yield DiffFinding(
                    "totals", entity_type, target, None, [],
                    f"{what} totals for {day} in {currency} differ: "
                    f"{target} {sums.get((target, day, currency), 0)} vs {source_total} "
                    f"(minor units, {delta:+d} unexplained by record findings)",
                    {name: {"hub": source_total, target: target_total}}, key=f"{day}/{currency}{suffix}",
                    delta=(day, currency, delta))


__all__ = ["TOTALLED", "measure_totals", "record_amounts"]
