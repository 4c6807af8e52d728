"""Stripe's wire conventions, shared by the emulator's handlers.

Kept apart from the emulator's business logic so each piece stays small: form decoding with
bracket notation, the error envelope, list envelopes and pagination, id minting, search-query
parsing and webhook signing. Everything here follows what the real SDK sends and expects
(``shared/reference/api-facts.md`` §1).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

_BRACKET = re.compile(r"\[([^\]]*)\]")


class StripeAPIError(Exception):
    """Raised by handlers; rendered as Stripe's ``{"error": {...}}`` envelope."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def missing(kind: str, obj_id: str, param: str = "id") -> StripeAPIError:
    return StripeAPIError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def invalid(message: str, param: str | None = None, code: str = "parameter_invalid") -> StripeAPIError:
    return StripeAPIError(400, message, code=code, param=param)


# --------------------------------------------------------------------------- form decoding


def _insert(target: dict[str, Any], keys: list[str], value: str) -> None:
    node = target
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if key == "":  # "items[]=x": append position
            key = str(len(node))
        if last:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child


def _listify(value: Any) -> Any:
    """Dicts whose keys are all integers become lists (``items[0][price]`` -> ``[{...}]``)."""
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value


def decode_form(text: str) -> dict[str, Any]:
    """Form/query text in Stripe's bracket notation -> nested dicts and lists."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        head, _, rest = raw_key.partition("[")
        keys = [head] + (_BRACKET.findall("[" + rest) if rest else [])
        _insert(result, keys, value)
    listified: dict[str, Any] = _listify(result)
    return listified


def fingerprint(method: str, path: str, params: Mapping[str, Any]) -> str:
    """What "the same parameters" means for an idempotent replay."""
    text = json.dumps([method, path, params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- typed params


def as_int(params: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError:
        raise invalid(f"Invalid integer: {value}", key, code="parameter_invalid_integer") from None


def as_bool(params: Mapping[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    text = str(value).lower()
    if text not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", key)
    return text == "true"


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def check_known(params: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Stripe answers an unexpected parameter with 400 ``parameter_unknown``."""
    known = set(allowed) | {"expand"}
    for key in params:
        if key not in known:
            raise StripeAPIError(400, f"Received unknown parameter: {key}", code="parameter_unknown",
                                 param=key)


def merge_metadata(current: Mapping[str, str] | None, update: Any) -> dict[str, str]:
    """``metadata[k]=v`` sets, ``metadata[k]=`` unsets, ``metadata=`` clears."""
    if update == "":
        return {}
    merged = dict(current or {})
    if isinstance(update, dict):
        for key, value in update.items():
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = str(value)
    return merged


# --------------------------------------------------------------------------- lists


def created_filter(params: Mapping[str, Any], field: str = "created") -> Callable[[Mapping[str, Any]], bool]:
    spec = params.get(field)
    if spec is None or spec == "":
        return lambda _obj: True
    if not isinstance(spec, dict):
        exact = as_int(params, field)
        return lambda obj: obj.get(field) == exact
    bounds = {op: as_int(spec, op) for op in ("gt", "gte", "lt", "lte") if op in spec}

    def check(obj: Mapping[str, Any]) -> bool:
        value = obj.get(field) or 0
        return all({
            "gt": value > bound, "gte": value >= bound, "lt": value < bound, "lte": value <= bound,
        }[op] for op, bound in bounds.items() if bound is not None)
    return check


def created_lower_bound(params: Mapping[str, Any], field: str = "created") -> int:
    """The smallest ``created`` a ``created`` filter admits (0 when it sets none)."""
    spec = params.get(field)
    if spec is None or spec == "":
        return 0
    if not isinstance(spec, dict):
        return as_int(params, field) or 0  # an exact ``created``
    bounds = [as_int(spec, "gte")] if "gte" in spec else []
    if "gt" in spec:
        bounds.append((as_int(spec, "gt") or 0) + 1)
    return max((b for b in bounds if b is not None), default=0)


def paginate(items: list[dict[str, Any]], params: Mapping[str, Any], url: str) -> dict[str, Any]:
    """Stripe's list envelope over ``items`` (already newest first)."""
    limit = as_int(params, "limit", 10) or 10
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
    ids = [item["id"] for item in items]
    if after:
        if after not in ids:
            raise missing("object", str(after), "starting_after")
        rest = items[ids.index(after) + 1:]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise missing("object", str(before), "ending_before")
        newer = items[:ids.index(before)]
        page, has_more = newer[-limit:], len(newer) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "url": url, "has_more": has_more, "data": page}


def page_down(at: Callable[[int], dict[str, Any] | None], upper: int, lower: int,
              listed: Callable[[Mapping[str, Any]], bool], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The listed objects at positions ``upper - 1`` down to ``lower`` (newest first), one past
    the page: what ``paginate`` needs of a list paged by ``starting_after`` (already dropped from
    ``params``). Walking down from the cursor, rather than listing everything since the bound for
    each page, keeps a full read of n objects at n looks instead of n² / 100. ``at`` answers
    ``None`` for a position that holds no object any more."""
    limit = as_int(params, "limit", 10) or 10
    items: list[dict[str, Any]] = []
    for index in range(upper - 1, lower - 1, -1):
        obj = at(index)
        if obj is not None and listed(obj):
            items.append(obj)
            if len(items) > limit:
                break
    return items


# --------------------------------------------------------------------------- search

_CLAUSE = re.compile(
    r"\s*(?P<field>[a-zA-Z_.]+(?:\['(?P<key>[^']*)'\])?)\s*(?P<op>:|~|>=|<=|>|<)\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s]+)\s*"
)


def parse_search(query: str) -> tuple[list[tuple[str, str | None, str, str]], str]:
    """``email:'a@b.c' AND metadata['hub_id']:'x'`` -> clauses and the joining operator."""
    parts = re.split(r"\s+(AND|OR)\s+", query.strip())
    joiners = {p for p in parts[1::2]}
    if len(joiners) > 1:
        raise invalid("Search queries cannot mix AND and OR", "query", code="search_query_invalid")
    clauses = []
    for text in parts[0::2]:
        match = _CLAUSE.fullmatch(text)
        if not match:
            raise invalid(f"Invalid search query: {query}", "query", code="search_query_invalid")
        value = match["value"]
        if value[:1] in "'\"":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        field = match["field"].split("[")[0]
        clauses.append((field, match["key"], match["op"], value))
    return clauses, (joiners.pop() if joiners else "AND")


def search_matches(obj: Mapping[str, Any], clauses: list[tuple[str, str | None, str, str]],
                   joiner: str) -> bool:
    def one(field: str, key: str | None, op: str, value: str) -> bool:
        if field == "metadata":
            actual: Any = (obj.get("metadata") or {}).get(key or "")
        else:
            actual = obj.get(field)
        if isinstance(actual, bool):
            actual = "true" if actual else "false"
        if op == ":":
            return actual is not None and str(actual).casefold() == value.casefold()
        if op == "~":
            return actual is not None and value.casefold() in str(actual).casefold()
        try:
            number, target = float(actual), float(value)
        except (TypeError, ValueError):
            return False
        return {">": number > target, "<": number < target, ">=": number >= target,
                "<=": number <= target}[op]
    results = [one(*clause) for clause in clauses]
    return all(results) if joiner == "AND" else any(results)


# --------------------------------------------------------------------------- webhooks


def sign_payload(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``body`` signed at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class IdMinter:
    """Stripe-looking ids (``cus_0000000001a2``): unique and ordered by creation."""

    _ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    def __init__(self) -> None:
        self.counter = 0

    def __call__(self, prefix: str) -> str:
        self.counter += 1
        n, digits = self.counter, []
        while n:
            n, r = divmod(n, 62)
            digits.append(self._ALPHABET[r])
        return f"{prefix}_1Emu{''.join(reversed(digits)).rjust(10, '0')}"
