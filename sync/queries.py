"""What ``hub status`` and ``hub export`` show, as JSON-able data: one query each, shared by the
command line, the admin API and the console.
"""

from __future__ import annotations

from typing import Any

from state.store import StateStore
from sync.config import Config


def gather_status(store: StateStore, config: Config) -> dict[str, Any]:
    """Everything ``hub status`` shows, as JSON-able data."""
    with store.transaction() as tx:
        states = tx.connection_states()
        cursors = tx.cursors()
        synced = {c["connection"] for c in cursors if c["last_success"] is not None}
        connections = []
        for name, conn in sorted(config.connections.items()):
            state = states.get(name) or {}
            connections.append({
                "name": name, "system": conn.system, "status": _status(state, name in synced),
                "reason": state.get("reason"), "paused_until": state.get("paused_until"),
                "details": state.get("details") or {},
            })
        findings = tx.unresolved_findings_by_status()
        outbox = tx.outbox_depth()
        return {
            "attention": _attention(connections, outbox, findings),
            "findings": findings,
            "database": store.safe_url,
            "connections": connections,
            "cursors": cursors,
            "runs": [{k: r[k] for k in ("id", "kind", "scope", "status", "counts", "error",
                                        "started_at", "finished_at")} for r in tx.last_runs(10)],
            "outbox": outbox,
            "open_findings": tx.open_findings_by_kind(),
            "entities": tx.count_entities(),
        }


def _status(state: dict[str, Any], synced: bool) -> str:
    """A connection's status as shown: "unchecked" until ``hub check``, a re-authorisation or a
    successful read reached the vendor with its credentials — never "ok" for credentials nobody
    tried — and "needs_setup" when the check found setup missing."""
    status = str(state.get("status") or ("ok" if synced else "unchecked"))
    if status == "ok" and (state.get("details") or {}).get("missing"):
        return "needs_setup"
    return status


def _attention(connections: list[dict[str, Any]], outbox: dict[str, int],
               findings: dict[str, int]) -> list[str]:
    """Why ``hub status`` exits 1, one line each: a connection paused or needing
    re-authorisation, writes that went dead, findings nobody acknowledged."""
    reasons = [f"{c['name']} {c['status']}: {c['reason'] or ''}".rstrip(": ")
               for c in connections if c["status"] not in ("ok", "unchecked")]
    if outbox.get("dead"):
        reasons.append(f"{outbox['dead']} dead letters (hub outbox list)")
    if findings["open"]:
        reasons.append(f"{findings['open']} open findings (hub drift list)")
    return reasons


def export_records(store: StateStore, entity: str) -> dict[str, Any]:
    """Canonical records with their links, in the shape DESIGN.md names."""
    records = []
    with store.transaction() as tx:
        for stored in tx.entities_of(entity):
            links: dict[str, list[str]] = {}
            for link in tx.links_of(stored.id):
                links.setdefault(link.system, []).append(link.external_id)
            records.append({"id": stored.id, "data": stored.data, "links": links})
    return {"entity": entity, "records": records}
