"""``/api/openapi.json`` is held to the code: every /api/ route registered on the app is in the
document under its method (and nothing else is), each documented parameter's values at its
bounds are accepted and those past them refused with a documented 400, and every answer seen
here is one the operation documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient, TestServer

from sync.web.api import OPENAPI
from tests.daemon.conftest import auth

Client = TestClient[Any, Any]


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in OPENAPI["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def _accepted(schema: dict[str, Any]) -> list[Any]:
    if "enum" in schema:
        return list(schema["enum"])
    if schema["type"] == "integer":
        return [v for v in (schema.get("minimum"), schema.get("default"), schema.get("maximum")) if v is not None]
    if schema.get("format") == "date":
        return ["2026-11-01"]
    return ["sample-id"]


def _refused(schema: dict[str, Any]) -> list[Any]:
    if "enum" in schema:
        return ["not-a-choice"]
    if schema.get("format") == "date":
        return ["soon"]
    if schema["type"] == "integer":
        return ["x", *([schema["minimum"] - 1] if "minimum" in schema else []),
                *([schema["maximum"] + 1] if "maximum" in schema else [])]
    return []


def _least_body(op: dict[str, Any]) -> dict[str, Any]:
    """The smallest body the operation documents as valid: its required properties, each a value
    its schema accepts (so a check of the path's parameters is not refused for the body)."""
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    properties = schema.get("properties", {})
    return {name: _accepted(properties[name])[0] for name in schema.get("required", [])
            if "type" in properties.get(name, {})}


async def _call(client: Client, method: str, path: str, op: dict[str, Any], values: dict[str, Any]) -> int:
    params = op.get("parameters", [])
    filled = {p["name"]: _accepted(p["schema"])[0] for p in params if p["in"] == "path"}
    filled.update({k: v for k, v in values.items() if any(p["name"] == k and p["in"] == "path" for p in params)})
    url = path.format(**{k: quote(str(v), safe="") for k, v in filled.items()})
    query = {k: str(v) for k, v in values.items() if any(p["name"] == k and p["in"] == "query" for p in params)}
    headers = auth() if op.get("security") else {}
    kwargs: dict[str, Any] = {"json": _least_body(op)} if "requestBody" in op else {}
    response = await client.request(method, url, params=query, headers=headers, **kwargs)
    return response.status


async def test_every_registered_api_route_is_documented_under_its_method(client: Client) -> None:
    server = client.server
    assert isinstance(server, TestServer)
    registered = {(route.method, route.resource.canonical) for route in server.app.router.routes()
                  if route.resource is not None and route.resource.canonical.startswith("/api/")
                  and route.method != "HEAD"}
    documented = {(method, path) for method, path, _ in _operations()}
    assert registered == documented


async def test_documented_parameters_match_what_the_handlers_accept(client: Client) -> None:
    checked = 0
    for method, path, op in _operations():
        for param in op.get("parameters", []):
            for value in _accepted(param["schema"]):
                status = await _call(client, method, path, op, {param["name"]: value})
                assert status != 400 and str(status) in op["responses"], (method, path, param["name"], value, status)
                checked += 1
            for value in _refused(param["schema"]):
                status = await _call(client, method, path, op, {param["name"]: value})
                assert status == 400 and "400" in op["responses"], (method, path, param["name"], value, status)
                checked += 1
    assert checked > 20


async def test_every_answer_to_a_plain_call_is_documented(client: Client) -> None:
    for method, path, op in _operations():
        status = await _call(client, method, path, op, {})
        assert str(status) in op["responses"], (method, path, status)
        if op.get("security"):
            wrong = await client.request(method, path.replace("{id}", "1"))
            assert str(wrong.status) in op["responses"], (method, path, wrong.status)
