"""The console's Search (``/search?q=``): customers and documents by name, email, document
number or any system's id, each result linking to its record page. The lookups are indexed
(``state/search.py``); only a part of a name is a bounded SQL scan."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mapping.model import ENTITY_TYPES
from state.search import MAX_RESULTS, search_records
from sync.web.console import render
from sync.web.context import Daemon, daemon_of
from sync.web.record_words import say, system_name

MAX_QUERY = 200


def search_data(daemon: Daemon, query: str) -> dict[str, Any]:
    systems = {name: conn.system for name, conn in daemon.config.connections.items()}
    with daemon.hub.store.transaction() as tx, tx.remembering():
        hits = search_records(tx, query, systems=sorted(daemon.hub.connectors), object_types=list(ENTITY_TYPES))
        # the hits and their customers read in one statement each, not two lookups per result
        tx.prefetch_entities(hit.canonical_id for hit in hits)
        tx.prefetch_entities(str(e.data["customer_id"]) for e in map(tx.get_entity, [h.canonical_id for h in hits])
                             if e is not None and e.data.get("customer_id"))
        results = []
        for hit in hits:
            stored = tx.get_entity(hit.canonical_id)
            if stored is None:
                continue
            data = stored.data
            customer = tx.get_entity(str(data["customer_id"])) if data.get("customer_id") else None
            matched = hit.matched
            for name in systems:  # "stripe id" said as "Stripe id"
                if matched == f"{name} id":
                    matched = f"{system_name(name, systems)} id"
            results.append({"id": stored.id, "type": stored.type.replace("_", " "),
                            "title": str(data.get("name") or data.get("number") or stored.id[:8]),
                            "email": data.get("email") or "", "customer": (customer.data.get("name") if customer else ""),
                            "amount": say(data.get("total")) if data.get("total") else "",
                            "status": data.get("status") or "", "matched": matched, "deleted": stored.deleted})
    return {"q": query, "results": results, "full": len(hits) >= MAX_RESULTS}


async def search_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    query = (request.query.get("q") or "").strip()[:MAX_QUERY]
    data = await daemon.jobs.blocking(search_data, daemon, query) if query else {"q": "", "results": [], "full": False}
    return render(request, "search.html", **data)


def setup(app: web.Application) -> None:
    app.router.add_get("/search", search_page)


__all__ = ["search_data", "setup"]
