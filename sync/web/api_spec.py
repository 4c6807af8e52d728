"""The admin API's OpenAPI 3.1 document (``GET /api/openapi.json``), and the parameter limits it
states, which the handlers in ``sync/web/api.py`` enforce. ``tests/daemon/test_openapi.py`` holds
this document to the routes and to what the handlers accept."""

from __future__ import annotations

from typing import Any

from mapping.model import ENTITY_TYPES
from state.queues import OUTBOX_ID_MAX
from sync.findings import KINDS
from sync.usage import EVENT_ID_MAX, NAME_PATTERN, VALUE_PATTERN
from sync.web.roles import needed_role

OUTBOX_STATUSES = ("pending", "in_flight", "done", "dead", "dropped")
RUNS_LIMIT, OUTBOX_LIMIT = (50, 1000), (500, 10_000)  # ?limit= default and cap


# Every admin operation can answer 400 (a query parameter it does not take), 401 (no bearer token),
# 403 (wrong token), 404 (the API is off, or no such object), 429 (too many wrong tokens) and 503
# (database down, or the daemon stopping);
# operations add the codes their own checks answer. tests/daemon/test_openapi.py holds this
# document to the routes and to what the handlers accept.
_ALWAYS = ("400", "401", "403", "404", "429", "503")


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _op(summary: str, *, params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        ok: str = "200", errors: tuple[str, ...] = (), responses: dict[str, Any] | None = None,
        answer: dict[str, Any] | None = None) -> dict[str, Any]:
    codes = sorted({*_ALWAYS, *errors, *(("400", "413") if body else ())})
    op: dict[str, Any] = {"summary": summary, "security": [{"bearer": []}],
                          "responses": {ok: _json("OK", answer),
                                        **{e: {"$ref": f"#/components/responses/E{e}"} for e in codes},
                                        **(responses or {})}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, enum: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    # A free-text filter holds no NUL (the handlers answer 400: the database stores none).
    schema: dict[str, Any] = {"type": "string", "enum": list(enum)} if enum else {"type": "string",
                                                                                 "pattern": NO_NUL}
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _limit_param(default_and_cap: tuple[int, int]) -> dict[str, Any]:
    default, cap = default_and_cap
    return {"name": "limit", "in": "query", "required": False,
            "description": f"At most this many; larger values are capped at {cap}",
            "schema": {"type": "integer", "minimum": 1, "default": default}}


def _optional_body(op: dict[str, Any]) -> dict[str, Any]:
    op["requestBody"]["required"] = False
    return op


NO_NUL = "^[^\\x00]*$"
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_OUTBOX_ID = {"name": "id", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 1, "maximum": OUTBOX_ID_MAX}}
_TEXT = {"type": "string", "minLength": 1}


def _listing(key: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {
        key: {"type": "array", "items": item or {"type": "object"}}}}


def _outbox_answer(status: str) -> dict[str, Any]:
    return {"type": "object", "required": ["id", "status"], "properties": {
        "id": {"type": "integer", "minimum": 1, "maximum": OUTBOX_ID_MAX}, "status": {"const": status}}}


# A usage name: not blank, no control characters (what parse_usage takes).
_NAME = {"type": "string", "pattern": NAME_PATTERN}
_USAGE_ANSWER = {"type": "object", "required": ["event_id", "stored", "duplicate"], "properties": {
    "event_id": {"type": "string"}, "stored": {"type": "boolean"}, "duplicate": {"type": "boolean"}}}
_RESPONSES = (("400", "Invalid request"), ("401", "Missing bearer token"), ("403", "Wrong token, or the token's user lacks the role this needs (read-only < operator < admin)"),
              ("404", "Not found, or the admin API is off"), ("409", "The finding cannot be repaired as asked"),
              ("413", "The body is larger than [server] max_body_bytes"),
              ("429", "Too many wrong tokens from this address; `Retry-After` says how many seconds to wait"),
              ("503", "The database is unavailable or the daemon is stopping"))
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "billhub admin API", "version": "1",
             "description": "Operate a running `hub run`: status, runs, drift findings, resyncs, the outbox, "
                            "usage events and jobs. Every operation needs `Authorization: Bearer <token>`: a user's own "
                            "(`hub users add`), or the `[admin] token` (the bootstrap admin). Reading needs the "
                            "read-only role, acting operator; each operation's `x-role` names the one it needs."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}},
        "responses": {f"E{code}": {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}} for code, text in _RESPONSES},
    },
    "paths": {
        "/api/status": {"get": _op("Connections, cursors, last runs, outbox depth, open findings, paused "
                                   "connections and job outcomes (`hub status --json` plus daemon state)")},
        "/api/runs": {"get": _op("Recent sync and diff runs", params=[_limit_param(RUNS_LIMIT), _q("kind")],
                                 answer=_listing("runs"))},
        "/api/findings": {"get": _op("Drift findings (the report JSON); each finding's `about` says it for people: "
                                     "customer, document number, date, amount and amount_text, links into each "
                                     "vendor's app, every system's value side by side, a duplicate's records",
                                     params=[
            _q("kind", KINDS), _q("system"), _q("status", ("open", "acknowledged", "resolved")),
            _q("entity", list(ENTITY_TYPES))], answer={
                **_listing("findings"), "required": ["findings", "summary"]})},
        "/api/findings/{id}": {"get": _op("One finding with its `about` (as in the list), each system's values and "
                                          "the record's history", params=[_ID])},
        "/api/findings/{id}/ack": {"post": _optional_body(_op(
            "Acknowledge a finding; `comment` says why (kept in the audit log with who and when)", params=[_ID],
            body={"type": "object", "properties": {"comment": {"type": "string"}}}))},
        "/api/resync": {"post": _op(
            "Resync a finding (`keep` for duplicates and orphans), one record, or an entity since a date; "
            "`dry_run` previews", body={
                "type": "object", "properties": {
                    "finding": _TEXT, "keep": _TEXT, "connection": _TEXT,
                    "entity": {"type": "string", "enum": list(ENTITY_TYPES)}, "external_id": _TEXT,
                    "since": {"type": "string", "format": "date"}, "dry_run": {"type": "boolean"},
                    "reason": {**_TEXT, "description": "Why (kept in the audit log)"}},
                "anyOf": [{"required": ["finding"]}, {"required": ["connection", "entity", "external_id"]},
                          {"required": ["entity", "since"]}]},
            errors=("409",))},
        "/api/outbox": {"get": _op("Outbox depth and items", params=[_q("status", OUTBOX_STATUSES),
                                                                     _limit_param(OUTBOX_LIMIT)], answer={
            **_listing("items", {"type": "object", "required": ["id", "status"]}), "required": ["depth", "items"]})},
        "/api/outbox/{id}/retry": {"post": _op("Put a dead item back in the queue", params=[_OUTBOX_ID],
                                               answer=_outbox_answer("pending"))},
        "/api/outbox/{id}/drop": {"post": _op(
            "Give up on a pending or dead item, saying why (the diff keeps its record as missing, "
            "acknowledged, naming who dropped it and why)", params=[_OUTBOX_ID],
            body={"type": "object", "required": ["reason"], "properties": {"reason": {
                **_TEXT, "pattern": r"\S", "description": "Why (not blank: kept in the audit log and on the finding)"}}},
            answer=_outbox_answer("dropped"))},
        "/api/usage": {"post": _op("Record a usage event (stored once per event_id)", body={
            "type": "object", "required": ["event_id", "event_name", "customer", "value"], "properties": {
                "event_id": {**_NAME, "maxLength": EVENT_ID_MAX}, "event_name": _NAME,
                "customer": {**_NAME, "description": "Stripe customer id or hub customer id"},
                "value": {"description": "A non-negative whole or decimal number (never a float)", "oneOf": [
                    {"type": "integer", "minimum": 0}, {"type": "string", "pattern": VALUE_PATTERN}]},
                "timestamp": {"type": ["string", "null"], "format": "date-time",
                              "description": "When it happened; absent or null: when it was received"}}},
            ok="202", responses={
                "202": _json("Stored (a new event id)", _USAGE_ANSWER),
                "200": _json("A duplicate: this event id was already stored with the same content", _USAGE_ANSWER),
                "409": _json("This event id is already stored with a different value, customer, meter or "
                             "timestamp (an event id is an idempotency key); nothing was stored", {
                                 "type": "object", "required": ["error", "event_id", "differs"], "properties": {
                                     "error": {"type": "string"}, "event_id": {"type": "string"},
                                     "differs": {"type": "object", "description": "field -> {stored, given}",
                                                 "additionalProperties": {
                                                     "type": "object", "required": ["stored", "given"]}}}})})},
        "/api/jobs": {"get": _op("Scheduled jobs, their next run and last outcome", answer={
            **_listing("jobs", {"type": "object", "required": ["id", "kind", "trigger", "next_run", "last"],
                                "properties": {"id": {"type": "string"}, "kind": {"type": "string"},
                                               "trigger": {"type": "string"},
                                               "next_run": {"type": ["string", "null"]}}}),
            "required": ["jobs", "paused"]})},
        "/api/jobs/{id}/run": {"post": _op("Run a job now", params=[_ID])},
        "/api/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": _json("OpenAPI 3.1")}}},
    },
}

for _path, _ops in OPENAPI["paths"].items():  # the role each operation needs, from the one table
    for _method, _operation in _ops.items():
        if _operation.get("security"):
            _operation["x-role"] = needed_role(_method, _path)


__all__ = ["NO_NUL", "OPENAPI", "OUTBOX_LIMIT", "OUTBOX_STATUSES", "RUNS_LIMIT"]
