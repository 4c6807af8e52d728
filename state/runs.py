"""Runs (one row per sync or diff pass), their findings, and the streams' cursors."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, text, update

from state import schema as t
from state.errors import NotFound
from state.records import Finding, aware, finding_row
from state.txbase import TxBase

# How long a run stays "running" without its process renewing it (``sync/run_lease.py`` renews
# well within this). Long enough that a busy process never loses a live run; short enough that
# a killed one shows as aborted minutes later, not forever.
RUN_LEASE = timedelta(minutes=5)
OWNER = f"{socket.gethostname()}:{os.getpid()}"

_CURSOR = text("SELECT value FROM cursors WHERE connection = :connection AND stream = :stream")


class RunsMixin(TxBase):
    def start_run(self, kind: str, scope: str = "") -> str:
        """A new running run, leased to this process; first closes the runs of dead processes."""
        self.abort_abandoned_runs()
        run_id = str(uuid.uuid4())
        now = self.now
        self.conn.execute(insert(t.runs).values(id=run_id, kind=kind, scope=scope, status="running",
                                                counts={}, started_at=now, owner=OWNER,
                                                lease_until=now + RUN_LEASE))
        return run_id

    def renew_run(self, run_id: str) -> None:
        """Extend a running run's lease (its process is alive)."""
        self.conn.execute(update(t.runs).where(t.runs.c.id == run_id, t.runs.c.status == "running")
                          .values(lease_until=self.now + RUN_LEASE))

    def abort_abandoned_runs(self) -> int:
        """Close as ``aborted`` the running runs whose lease ran out: their process died.

        A lease, not a process check, so it is right with several processes on several hosts
        sharing one database; a row from before leases existed counts from its start.
        """
        now = self.now
        expired = or_(t.runs.c.lease_until < now,
                      and_(t.runs.c.lease_until.is_(None), t.runs.c.started_at < now - RUN_LEASE))
        result = self.conn.execute(update(t.runs).where(t.runs.c.status == "running", expired).values(
            status="aborted", finished_at=now,
            error="aborted: its process stopped without finishing the run"))
        return int(result.rowcount or 0)

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any],
                   error: str | None = None) -> None:
        self.conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(
            status=status, counts=counts, error=error, finished_at=self.now))

    def last_runs(self, limit: int = 10, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        if kind:
            query = query.where(t.runs.c.kind == kind)
        return [{**r._mapping, "started_at": aware(r.started_at),
                 "finished_at": aware(r.finished_at)} for r in self.conn.execute(query)]

    # ------------------------------------------------------------------ findings

    def upsert_finding(self, *, fingerprint: str, kind: str, entity: str, system: str,
                       canonical_id: str | None, external_ids: Sequence[str],
                       fields: dict[str, Any], detail: str, run_id: str | None,
                       status: str = "open") -> tuple[str, bool]:
        """Record a finding by its stable fingerprint; returns (id, newly opened). ``status``
        "acknowledged": one a person already decided on (a write they dropped) starts, or
        comes back, acknowledged."""
        now = self.now
        row = self.conn.execute(select(t.findings).where(t.findings.c.fingerprint == fingerprint)).first()
        if row is None:
            finding_id = str(uuid.uuid4())
            self.conn.execute(insert(t.findings).values(
                id=finding_id, fingerprint=fingerprint, kind=kind, entity=entity, system=system,
                canonical_id=canonical_id, external_ids=list(external_ids), fields=fields,
                detail=detail, status=status, first_seen=now, last_seen=now, run_id=run_id))
            return finding_id, True
        reopened = row.status == "resolved"
        self.conn.execute(update(t.findings).where(t.findings.c.id == row.id).values(
            external_ids=list(external_ids), fields=fields, detail=detail, last_seen=now,
            run_id=run_id, canonical_id=canonical_id,
            status=status if reopened else row.status, resolved_at=None))
        return row.id, reopened

    def resolve_unseen_findings(self, run_id: str, *, entity: str | None = None,
                                kinds: Iterable[str] | None = None, canonical_id: str | None = None) -> int:
        """Resolve open findings in scope that this diff run did not see again.

        Not a finding whose record is held (``state.holds``): the record reaches the hub only
        when the sync's retry maps it, which resolves the finding then, so a diff that reads
        the record fine meanwhile must not close it. With ``canonical_id``: that record's only
        (a diff of one record says nothing about the others)."""
        cond = [t.findings.c.status.in_(["open", "acknowledged"]),
                or_(t.findings.c.run_id.is_(None), t.findings.c.run_id != run_id),
                ~exists().where(t.holds.c.fingerprint == t.findings.c.fingerprint)]
        if entity:
            cond.append(t.findings.c.entity == entity)
        if kinds is not None:
            cond.append(t.findings.c.kind.in_(list(kinds)))
        if canonical_id is not None:  # a diff of one record: only that record's findings
            cond.append(t.findings.c.canonical_id == canonical_id)
        result = self.conn.execute(update(t.findings).where(*cond).values(
            status="resolved", resolved_at=self.now))
        return int(result.rowcount or 0)

    def resolve_finding(self, finding_id: str) -> None:
        self.conn.execute(update(t.findings).where(t.findings.c.id == finding_id).values(
            status="resolved", resolved_at=self.now))

    def ack_finding(self, finding_id: str) -> Finding:
        found = self.get_finding(finding_id)
        if found.status == "open":
            self.conn.execute(update(t.findings).where(t.findings.c.id == found.id)
                              .values(status="acknowledged"))
        # Acknowledged: the held records it names are let go, not tried again (``state.holds``).
        self.conn.execute(delete(t.holds).where(t.holds.c.fingerprint == found.fingerprint))
        return self.get_finding(found.id)

    def get_finding(self, finding_id: str) -> Finding:
        row = self.conn.execute(select(t.findings).where(
            or_(t.findings.c.id == finding_id, t.findings.c.id.startswith(finding_id, autoescape=True)))).all()
        if len(row) != 1:
            raise NotFound(f"no finding {finding_id!r} (see `hub drift list`)" if not row else
                           f"{finding_id!r} matches {len(row)} findings; give more of the id")
        return finding_row(row[0])

    def list_findings(self, *, kind: str | None = None, system: str | None = None,
                      status: str | None = None, entity: str | None = None,
                      limit: int | None = None) -> list[Finding]:
        query = select(t.findings).order_by(t.findings.c.first_seen, t.findings.c.id)
        for column, value in ((t.findings.c.kind, kind), (t.findings.c.system, system),
                              (t.findings.c.status, status), (t.findings.c.entity, entity)):
            if value:
                query = query.where(column == value)
        if limit:
            query = query.limit(limit)
        return [finding_row(r) for r in self.conn.execute(query)]

    def findings_of_records(self, canonical_ids: Sequence[str]) -> list[Finding]:
        """The unresolved findings of these hub records (every system's, for a side-by-side view)."""
        found: list[Finding] = []
        for start in range(0, len(canonical_ids), 900):
            found.extend(finding_row(r) for r in self.conn.execute(select(t.findings).where(
                t.findings.c.canonical_id.in_(list(canonical_ids[start:start + 900])),
                t.findings.c.status.in_(["open", "acknowledged"])).order_by(t.findings.c.first_seen)))
        return found

    def unresolved_findings_by_kind(self) -> dict[str, dict[str, int]]:
        """kind -> {"open": n, "acknowledged": n}: what nobody has seen yet apart from what a
        person acknowledged (the console's overview counts them apart)."""
        counts: dict[str, dict[str, int]] = {}
        rows = self.conn.execute(select(t.findings.c.kind, t.findings.c.status, func.count())
                                 .where(t.findings.c.status.in_(["open", "acknowledged"]))
                                 .group_by(t.findings.c.kind, t.findings.c.status))
        for kind, status, n in rows:
            counts.setdefault(str(kind), {"open": 0, "acknowledged": 0})[str(status)] = int(n)
        return counts

    def unresolved_findings_by_status(self) -> dict[str, int]:
        """How many findings are open and how many acknowledged (a person saw them)."""
        rows = self.conn.execute(select(t.findings.c.status, func.count())
                                 .where(t.findings.c.status.in_(["open", "acknowledged"]))
                                 .group_by(t.findings.c.status))
        counts = {"open": 0, "acknowledged": 0}
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    def open_findings_by_kind(self) -> dict[str, int]:
        rows = self.conn.execute(select(t.findings.c.kind, func.count())
                                 .where(t.findings.c.status.in_(["open", "acknowledged"]))
                                 .group_by(t.findings.c.kind))
        return {kind: int(n) for kind, n in rows}

    # ------------------------------------------------------------------ cursors

    def get_cursor(self, connection: str, stream: str) -> str | None:
        value = self.conn.execute(_CURSOR, {"connection": connection, "stream": stream}).scalar()
        return None if value is None else str(value)

    def set_cursor(self, connection: str, stream: str, value: str | None) -> None:
        if not self._insert_ignore(t.cursors, {"connection": connection, "stream": stream,
                                               "value": value, "last_success": self.now},
                                   ("connection", "stream")):
            self.conn.execute(update(t.cursors).where(
                t.cursors.c.connection == connection, t.cursors.c.stream == stream)
                .values(value=value, last_success=self.now))

    def cursors(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(t.cursors).order_by(t.cursors.c.connection, t.cursors.c.stream))
        return [{**r._mapping, "last_success": aware(r.last_success)} for r in rows]
