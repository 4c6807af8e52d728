"""Middlewares: security headers on every answer, and no stack trace ever reaching a client."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from state.errors import StateError
from sync.web.context import Handler

log = logging.getLogger("billhub.daemon")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _harden(headers: Any) -> None:
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # raised answers (404s, redirects) get the headers too
        _harden(exc.headers)
        raise
    _harden(response.headers)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No stack traces to clients; a database outage is a 503, not a 500."""
    if any("\x00" in value for value in request.match_info.values()):
        # No stored id holds NUL (PostgreSQL text cannot), and looking one up is a database error.
        return web.json_response({"error": "not found"}, status=404)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StateError as exc:
        log.error("state error", extra={"path": request.path, "error": str(exc)})
        return web.json_response({"error": "the database is unavailable"}, status=503)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return web.json_response({"error": "internal error"}, status=500)
