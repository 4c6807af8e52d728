"""``/webhooks/{system}[/{connection}]``: verify, store in the inbox once, answer at once.

Xero wants 200 within 5 s with an empty body, Intuit 200 within 3 s; a delivery's events are one
multi-row insert, and the inbox worker processes them afterwards. Bad input of any kind
(malformed, unsigned, oversized, stale replay, or what the inbox cannot store: see ``intake.py``)
is a 4xx and stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from aiohttp import web

from connectors.base import Connector, InboundEvent, WebhookRejected
from sync.web.context import Daemon, daemon_of
from sync.web.intake import check_events, without_secrets

log = logging.getLogger("billhub.daemon")
WEBHOOK_SYSTEMS = ("stripe", "quickbooks", "xero")


def _verify(connector: Connector, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    receiver = connector.capabilities().webhooks
    if receiver is None:
        raise WebhookRejected(f"connection {connector.name} takes no webhooks", 404)
    return receiver.verify_webhook(headers, body)


def _store_events(daemon: Daemon, connector: Connector, events: Sequence[InboundEvent]) -> int:
    """Store each event once, without its secret fields, in one multi-row insert; returns how
    many were new."""
    rows = [(e.event_id, without_secrets(connector.system, e.payload), e.event_type) for e in events]
    with daemon.hub.store.transaction() as tx:
        return tx.add_inbox_many(connector.name, rows)


def _reject(system: str, status: int, reason: str) -> web.Response:
    if system == "xero":
        return web.Response(status=status)  # Xero: status only, no body
    return web.json_response({"error": reason}, status=status)


async def webhook(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    system = request.match_info["system"]
    wanted = request.match_info.get("connection")
    if system not in WEBHOOK_SYSTEMS:
        return web.json_response({"error": f"no webhooks for {system!r}"}, status=404)
    candidates = [c for c in daemon.hub.connectors.values()
                  if c.system == system and (wanted is None or c.name == wanted)]
    if not candidates:
        return _reject(system, 404, f"no {system} connection {wanted or ''} is configured".replace("  ", " "))
    if len(candidates) > 1:
        names = ", ".join(sorted(c.name for c in candidates))
        return _reject(system, 404, f"several {system} connections ({names}): deliver to "
                                    f"/webhooks/{system}/CONNECTION")
    connector = candidates[0]
    if daemon.jobs.stopping.is_set():  # the vendor retries later; the next process takes it
        return web.Response(status=503, headers={"Retry-After": "5"})
    limit = int(daemon.config.server.get("max_body_bytes", 1_000_000))
    if request.content_length is not None and request.content_length > limit:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        return _reject(system, 413, f"body larger than {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        return _reject(system, 413, f"body larger than {limit} bytes")
    headers = {k: v for k, v in request.headers.items()}
    try:
        events = _verify(connector, headers, body)
    except WebhookRejected as exc:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        log.info("webhook rejected", extra={"connection": connector.name, "reason": exc.reason})
        return _reject(system, exc.status if 400 <= exc.status < 500 else 400, exc.reason)
    except Exception as exc:  # a parser bug must still not answer 5xx to bad input
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        log.warning("webhook not understood", extra={"connection": connector.name, "error": type(exc).__name__})
        return _reject(system, 400, "the delivery could not be read")
    try:
        check_events(events)  # what the inbox could not store is a 400 here, not a 500 there
    except WebhookRejected as exc:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        log.info("webhook rejected", extra={"connection": connector.name, "reason": exc.reason})
        return _reject(system, 400, exc.reason)
    stored = await daemon.jobs.blocking(_store_events, daemon, connector, events) if events else 0
    daemon.metrics.webhooks.labels(connector.name, "stored" if stored else "duplicate" if events else "empty").inc(
        max(1, stored))
    if system == "xero":
        return web.Response(status=200)
    return web.json_response({"received": len(events), "stored": stored, "duplicate": len(events) - stored})
