"""``/api/openapi.json`` against the handlers, by schemathesis (issue 23, item 9).

The real daemon app is served on a loopback port; schemathesis generates requests for every
documented operation from the document itself, sends them with the admin token, and checks each
answer against the document: no 5xx, a documented status code, the documented content type and
the documented response schema; and that what the document calls valid is not refused with a 400
(positive cases) and what it calls invalid — a wrong type, a value out of bounds, a missing
field, a query parameter it does not list — is refused (negative cases). Bounded and
deterministic for CI: a fixed number of examples per operation, derandomized, no example
database; about 20 s for both databases on two cores.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err

from sync.web.api import OPENAPI
from tests.daemon.conftest import Env, auth, env_per_database

Client = TestClient[Any, Any]
env = pytest.fixture(params=["sqlite", "postgres"])(env_per_database)

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}  # per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          positive_data_acceptance, negative_data_rejection]


def _operations(document: dict[str, Any] = OPENAPI) -> list[Any]:
    operations = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        if isinstance(result, Err):  # the document itself is not valid OpenAPI
            raise result.err()
        operations.append(result.ok())
    return operations


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, failures: list[str]) -> dict[int, int]:
    """Run one operation's examples; returns how many answers had each status. A failure is
    recorded (with the request that caused it) and the run goes on, so one run reports them all."""
    statuses: dict[int, int] = {}

    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=auth()))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as exc:  # one failure, or several of one answer
            failures.append(f"{mode.value} {operation.method.upper()} {operation.path}: {response.status_code} "
                            f"{response.text[:300]}\n{case.as_curl_command()}\n{exc}")

    try:
        run()
    except Unsatisfiable:  # a negative run with nothing to get wrong (any string is a valid id)
        if mode is not GenerationMode.NEGATIVE:
            raise
    return statuses


async def test_every_operation_conforms_to_the_document(env: Env, client: Client) -> None:
    base_url = str(client.make_url("")).rstrip("/")
    with env.store.transaction() as tx:  # something for the listings to answer with
        tx.enqueue("c1", "customer", "quickbooks", "upsert", "k1", "h1")
        tx.enqueue("c2", "customer", "xero", "upsert", "k2", "h2")
        tx.upsert_finding(fingerprint="o", kind="orphan", entity="customer", system="xero", canonical_id=None,
                          external_ids=["x1"], fields={}, detail="a contact nobody else knows", run_id=None)
    failures: list[str] = []
    seen: dict[str, dict[int, int]] = {}
    for operation in _operations():
        defined = OPENAPI["paths"][operation.path][operation.method]
        # Negative cases need something to get wrong: a parameter or a body.
        modes = [m for m in EXAMPLES if m is GenerationMode.POSITIVE or "parameters" in defined
                 or "requestBody" in defined]
        for mode in modes:
            # schemathesis calls with requests (blocking): from a thread, so this loop serves them.
            seen[f"{mode.value} {operation.method.upper()} {operation.path}"] = await asyncio.to_thread(
                _fuzz, operation, mode, base_url, failures)
    assert not failures, "\n\n".join(failures[:20]) + f"\n\n{len(failures)} failures"
    # Every operation was exercised, with the token: not a run answered 401/403/429 throughout
    # (wrong tokens are throttled, and the pinned clock would never lift it).
    assert {key.split(" ", 1)[1] for key in seen} == {
        f"{method.upper()} {path}" for path, ops in OPENAPI["paths"].items() for method in ops}
    totals: dict[int, int] = {}
    for statuses in seen.values():
        for status, count in statuses.items():
            totals[status] = totals.get(status, 0) + count
    assert 429 not in totals, seen
    assert sum(totals.values()) > 300
    assert sum(n for status, n in totals.items() if status < 300) > 100, totals


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
async def test_a_document_that_drifts_from_the_handlers_is_caught(env: Env, client: Client) -> None:
    """The harness has teeth: a 400 left out, a wrong answer schema, a bound the handler does not
    keep — each is a failure."""
    drifted = copy.deepcopy(OPENAPI)
    del drifted["paths"]["/api/runs"]["get"]["responses"]["400"]
    drifted["paths"]["/api/outbox"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "object", "required": ["pending"]}
    usage_body = drifted["paths"]["/api/usage"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    del usage_body["properties"]["value"]["oneOf"][0]["minimum"]  # the handler refuses a negative value
    base_url = str(client.make_url("")).rstrip("/")
    failures: list[str] = []
    for operation in _operations(drifted):
        if operation.path in ("/api/runs", "/api/outbox", "/api/usage"):
            for mode in EXAMPLES:
                await asyncio.to_thread(_fuzz, operation, mode, base_url, failures)
    caught = "\n".join(failures)
    assert "negative GET /api/runs: 400" in caught
    assert "positive GET /api/outbox: 200" in caught
    assert "positive POST /api/usage: 400" in caught and "value: must be a non-negative number" in caught


# --------------------------------------------------------------------------- what it found, pinned


async def test_an_outbox_id_past_the_32_bit_column_is_a_400(env: Env, client: Client) -> None:
    # PostgreSQL's integer column: 2**31 was a DataError, answered 503.
    for action in ("retry", "drop"):
        response = await client.post(f"/api/outbox/{2**31}/{action}", headers=auth())
        assert response.status == 400 and "2147483647" in (await response.json())["error"]
        assert (await client.post(f"/api/outbox/{2**31 - 1}/{action}", headers=auth())).status == 404


async def test_a_nul_in_a_free_text_filter_is_a_400(env: Env, client: Client) -> None:
    for path, name in (("/api/runs", "kind"), ("/api/findings", "system")):
        response = await client.get(path, params={name: "a\x00b"}, headers=auth())
        assert response.status == 400 and name in (await response.json())["error"], path


async def test_an_unknown_or_empty_query_parameter_is_a_400_naming_it(env: Env, client: Client) -> None:
    misspelt = await client.get("/api/outbox", params={"stauts": "dead"}, headers=auth())
    assert misspelt.status == 400
    assert (await misspelt.json())["error"] == "unknown query parameter 'stauts': it takes limit, status"
    assert (await client.get("/api/status", params={"x": "1"}, headers=auth())).status == 400
    for path, name in (("/api/findings", "status"), ("/api/outbox", "limit"), ("/api/outbox", "status")):
        response = await client.get(path, params={name: ""}, headers=auth())
        assert response.status == 400 and name in (await response.json())["error"], (path, name)


async def test_a_resync_body_is_what_the_document_says(env: Env, client: Client) -> None:
    for body in ({"finding": ""}, {"finding": 5}, {"entity": "customer", "since": "2026-01-01", "dry_run": "false"}):
        response = await client.post("/api/resync", json=body, headers=auth())
        assert response.status == 400, body
    preview = await client.post("/api/resync", json={"entity": "customer", "since": "2026-01-01", "dry_run": True},
                                headers=auth())
    assert preview.status == 200 and (await preview.json())["dry_run"] is True


async def test_a_usage_value_is_digits_and_an_integral_json_number_is_read_exactly(
        env: Env, client: Client) -> None:
    event = {"event_id": "u-1", "event_name": "api_calls", "customer": "cus_1"}
    for value in ("1e3", " 5", "+5", "1_000", "NaN", "-0", 1.5):
        response = await client.post("/api/usage", json={**event, "value": value}, headers=auth())
        assert response.status == 400, value
    exact = await client.post("/api/usage", data=b'{"event_id": "u-1", "event_name": "api_calls", '
                                                 b'"customer": "cus_1", "value": 12345678901234567890.0}',
                              headers={**auth(), "Content-Type": "application/json"})
    assert exact.status == 202
    assert [r["payload"]["value"] for r in env.inbox()] == ["12345678901234567890"]  # not 12345678901234567168
