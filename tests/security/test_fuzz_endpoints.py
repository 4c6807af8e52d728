"""Hypothesis fuzzing of every webhook endpoint, the admin API and the console of the daemon app.

Whatever arrives — malformed JSON, wrong content types, huge bodies, bad or missing signatures,
stale timestamps, replays, unicode tricks (NUL, RTL overrides, overlong and invalid UTF-8, lone
surrogates, CR/LF header injection) — the answer is a 4xx (never a 5xx), nothing is stored
(every hub table keeps its row count), and the app keeps answering ``/healthz`` — on SQLite and
on PostgreSQL alike.

Runs are derandomized so the suite is stable; ``HUB_FUZZ_RANDOM=1`` explores new inputs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN
from connectors.quickbooks.emulator import sign as qbo_sign
from connectors.stripe.emulator import sign_payload
from connectors.xero.emulator import DEFAULT_TENANT, DEFAULT_WEBHOOK_KEY
from mapping.model import ENTITY_TYPES
from sync.findings import KINDS
from tests.connectors.stripe.conftest import WEBHOOK_SECRET
from tests.daemon.conftest import ADMIN_TOKEN, MAX_BODY, Env, daemon, env_per_database
from tests.security.conftest import raw_http, stored_rows

Client = TestClient[Any, Any]
# The app on SQLite and on PostgreSQL: PostgreSQL refuses inputs SQLite takes (NUL, over-long
# text, NaN in JSON), and those must be 4xx too. Under CI=true an unreachable PostgreSQL fails.
env = pytest.fixture(params=["sqlite", "postgres"])(env_per_database)

FUZZ = settings(max_examples=30, deadline=None, database=None,
                derandomize=os.environ.get("HUB_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
FEW = settings(FUZZ, max_examples=6)

WEBHOOK_PATHS = ("/webhooks/stripe", "/webhooks/quickbooks", "/webhooks/xero", "/webhooks/stripe/stripe",
                 "/webhooks/quickbooks/quickbooks", "/webhooks/xero/xero")
SIGNATURE_HEADER = {"stripe": "Stripe-Signature", "quickbooks": "intuit-signature", "xero": "x-xero-signature"}
ADMIN_ROUTES = (("GET", "/api/status"), ("GET", "/api/runs"), ("GET", "/api/findings"),
                ("GET", "/api/findings/{x}"), ("POST", "/api/findings/{x}/ack"), ("POST", "/api/resync"),
                ("GET", "/api/outbox"), ("POST", "/api/outbox/{x}/retry"), ("POST", "/api/outbox/{x}/drop"),
                ("POST", "/api/usage"), ("GET", "/api/jobs"), ("POST", "/api/jobs/{x}/run"))
CONSOLE_ROUTES = (("GET", "/"), ("GET", "/findings"), ("GET", "/findings/{x}"), ("POST", "/findings/{x}/ack"),
                  ("POST", "/findings/{x}/resync"), ("POST", "/findings/{x}/preview"), ("GET", "/records/{x}"),
                  ("GET", "/outbox"), ("POST", "/outbox/{x}/retry"), ("POST", "/outbox/{x}/drop"),
                  ("POST", "/logout"))

# --------------------------------------------------------------------------- strategies

TRICKS = ("\x00", "\u202e", "\u202d", "\u2066", "\ufeff", "\u200b", "\u0085", "\u2028", "\ud800", "\udfff",
          "\r\n", "\r\nX-Injected: 1", "%0d%0a", "%00", "\\u0000", "é", "\U0001d54f", "\ufb03", "e\u0301",
          "<script>alert(1)</script>", "'; DROP TABLE inbox; --", "../../etc/passwd", "${jndi:ldap://x/a}",
          "{{7*7}}", "Bearer " + "A" * 40, "t=1,v1=00", "=" * 10)
BAD_UTF8 = (b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xc0\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf",
            b"\xff\xfe", b"\xfe\xff", b"\xf4\x90\x80\x80", b"\x80", b"\x00", b"\x1b[2J")
CONTENT_TYPES = ("application/json", "application/json; charset=utf-16", "text/plain", "text/html",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", "application/xml",
                 "application/octet-stream", "image/png", "", "application/json; charset=\u202e8")

tricky_text = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(TRICKS)), max_size=6).map("".join)
# What an HTTP client can put in a header at all (raw bytes are fuzzed through ``raw_http``).
header_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), tricky_text),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12)
bad_utf8_bytes = st.lists(st.one_of(st.sampled_from(BAD_UTF8), st.binary(max_size=8)), min_size=1,
                          max_size=8).map(b"".join)
bodies = st.one_of(
    st.binary(max_size=1024),
    tricky_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.tuples(json_values, bad_utf8_bytes).map(lambda p: json.dumps(p[0]).encode()[:-1] + p[1] + b"}"),
    tricky_text.map(lambda t: t.encode("utf-16", "surrogatepass")),  # TRICKS holds lone surrogates
    st.sampled_from((b"", b"{", b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"null",
                     b"\xef\xbb\xbf{}", b'{"id": "evt_1", "object": "event"', b"NaN", b"1e999999")),
)


def not_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return True
    return False


def stripe_signature(body: bytes, ts: int, secret: str = WEBHOOK_SECRET) -> str:
    return sign_payload(secret, body, ts)


def b64_hmac(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def good_signature(system: str, body: bytes, now: int) -> str:
    if system == "stripe":
        return stripe_signature(body, now)
    return qbo_sign(body, DEFAULT_VERIFIER_TOKEN) if system == "quickbooks" else b64_hmac(DEFAULT_WEBHOOK_KEY, body)


@st.composite
def bad_signatures(draw: st.DrawFn, system: str, body: bytes, now: int) -> str | None:
    """A signature header value that must not verify ``body`` (None: header left out)."""
    kind = draw(st.sampled_from(("missing", "garbage", "wrong secret", "other body", "truncated", "stale",
                                 "future text")))
    other = draw(st.binary(min_size=1, max_size=64).filter(lambda b: b != body))
    if kind == "missing":
        return None
    if kind == "garbage":
        return draw(header_text)
    if system == "stripe":
        ts = draw(st.integers(min_value=0, max_value=now - 301)) if kind == "stale" else now
        if kind == "stale":
            return stripe_signature(body, ts)  # correctly signed, but older than the 300 s tolerance
        if kind == "wrong secret":
            return stripe_signature(body, ts, "whsec_not_the_secret")
        if kind == "other body":
            return stripe_signature(other, ts)
        if kind == "truncated":
            return stripe_signature(body, ts)[:-1]
        return f"t={draw(header_text)},v1={hashlib.sha256(body).hexdigest()}"
    key = DEFAULT_VERIFIER_TOKEN if system == "quickbooks" else DEFAULT_WEBHOOK_KEY
    if kind == "wrong secret":
        return b64_hmac(key + "-wrong", body)
    if kind == "other body":
        return b64_hmac(key, other)
    if kind == "truncated":
        return b64_hmac(key, body)[:-4]
    return base64.b64encode(hashlib.sha256(body).digest()).decode()  # unkeyed: not a MAC at all


def system_of(path: str) -> str:
    return path.split("/")[2]


def now_of(env: Env) -> int:
    return int(env.stripe_emulator.clock.timestamp())


async def assert_4xx(response: Any, label: object) -> None:
    text = await response.text()
    assert 400 <= response.status < 500, (label, response.status, text[:300])


async def assert_alive(client: Client) -> None:
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"


# --------------------------------------------------------------------------- webhooks


@FUZZ
@given(data=st.data())
async def test_webhooks_with_bad_or_missing_signatures_are_4xx_and_store_nothing(
        env: Env, client: Client, data: st.DataObject) -> None:
    before = stored_rows(env.store)
    path = data.draw(st.sampled_from(WEBHOOK_PATHS), "path")
    system = system_of(path)
    body = data.draw(bodies, "body")
    signature = data.draw(bad_signatures(system, body, now_of(env)), "signature")
    headers = {"Content-Type": data.draw(st.sampled_from(CONTENT_TYPES), "content type")}
    if signature is not None:
        headers[data.draw(st.sampled_from((SIGNATURE_HEADER[system], SIGNATURE_HEADER[system].upper())))] = signature
    response = await client.post(path, data=body, headers=headers)
    await assert_4xx(response, (path, body[:80], signature))
    assert stored_rows(env.store) == before
    await assert_alive(client)


@FUZZ
@given(data=st.data())
async def test_correctly_signed_garbage_is_4xx_and_stores_nothing(
        env: Env, client: Client, data: st.DataObject) -> None:
    """The signature is right (so the parsers are reached), the body is not JSON."""
    before = stored_rows(env.store)
    path = data.draw(st.sampled_from(WEBHOOK_PATHS), "path")
    system = system_of(path)
    body = data.draw(bodies.filter(not_json), "body")
    headers = {SIGNATURE_HEADER[system]: good_signature(system, body, now_of(env)),
               "Content-Type": data.draw(st.sampled_from(CONTENT_TYPES))}
    response = await client.post(path, data=body, headers=headers)
    await assert_4xx(response, (path, body[:80]))
    assert stored_rows(env.store) == before
    await assert_alive(client)


def _accepted_shape(system: str, value: Any) -> bool:
    """JSON a vendor may really send without events (answered 200, still storing nothing)."""
    if system == "xero" and isinstance(value, dict):
        events = value.get("events", [])
        return isinstance(events, list) and not events
    return system == "quickbooks" and isinstance(value, list) and not value


@FUZZ
@given(data=st.data())
async def test_correctly_signed_json_of_the_wrong_shape_stores_nothing(
        env: Env, client: Client, data: st.DataObject) -> None:
    before = stored_rows(env.store)
    path = data.draw(st.sampled_from(WEBHOOK_PATHS), "path")
    system = system_of(path)
    value = data.draw(json_values, "payload")
    body = json.dumps(value).encode()
    headers = {SIGNATURE_HEADER[system]: good_signature(system, body, now_of(env))}
    response = await client.post(path, data=body, headers=headers)
    if _accepted_shape(system, value):
        assert response.status == 200, (path, value, await response.text())
    else:
        await assert_4xx(response, (path, value))
    assert stored_rows(env.store) == before
    await assert_alive(client)


def _shaped(system: str, fields: dict[str, Any]) -> Any:
    """A vendor-shaped delivery whose field values are fuzzed."""
    if system == "stripe":
        return {"object": "event", **fields}
    if system == "quickbooks":
        return {"eventNotifications": [{"realmId": fields.pop("realmId", DEFAULT_REALM),
                                        "dataChangeEvent": {"entities": [fields]}}]}
    return {"events": [{"tenantId": fields.pop("tenantId", DEFAULT_TENANT), **fields}]}


FIELD_NAMES = {"stripe": ("id", "type", "data", "created", "livemode"),
               "quickbooks": ("name", "id", "operation", "lastUpdated", "realmId"),
               "xero": ("resourceId", "eventCategory", "eventType", "eventDateUtc", "tenantId")}


@FUZZ
@given(data=st.data())
async def test_correctly_signed_vendor_shapes_with_tricky_values_never_5xx(
        env: Env, client: Client, data: st.DataObject) -> None:
    """Past the signature and into the parsers: a refusal stores nothing; an acceptance stores
    at most what it reports, and never a 5xx."""
    before = stored_rows(env.store)
    path = data.draw(st.sampled_from(WEBHOOK_PATHS), "path")
    system = system_of(path)
    names = FIELD_NAMES[system]
    fields = data.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=len(names)), "fields")
    value = _shaped(system, dict(fields))
    body = json.dumps(value).encode()
    response = await client.post(path, data=body, headers={SIGNATURE_HEADER[system]: good_signature(
        system, body, now_of(env))})
    after = stored_rows(env.store)
    assert response.status < 500, (path, value, response.status)
    if response.status != 200:
        await assert_4xx(response, value)
        assert after == before
    else:
        stored = 0 if system == "xero" else (await response.json())["stored"]
        assert after["inbox"] - before["inbox"] == stored or system == "xero"
        assert {k: v for k, v in after.items() if k != "inbox"} == {k: v for k, v in before.items() if k != "inbox"}
    await assert_alive(client)


@FEW
@given(path=st.sampled_from(WEBHOOK_PATHS + ("/api/usage", "/api/resync")),
       extra=st.integers(min_value=1, max_value=3 * MAX_BODY), chunked=st.booleans())
async def test_huge_bodies_are_413_and_store_nothing(env: Env, client: Client, path: str, extra: int,
                                                     chunked: bool) -> None:
    before = stored_rows(env.store)
    body = b'{"pad": "' + b"x" * (MAX_BODY + extra) + b'"}'
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    if path.startswith("/webhooks/"):
        headers[SIGNATURE_HEADER[system_of(path)]] = good_signature(system_of(path), body, now_of(env))

    async def stream() -> Any:
        for start in range(0, len(body), 16_384):
            yield body[start:start + 16_384]

    response = await client.post(path, data=stream() if chunked else body, headers=headers)
    assert response.status == 413, (path, chunked, response.status, await response.text())
    assert stored_rows(env.store) == before
    await assert_alive(client)


_REPLAYED: dict[str, bytes] = {}


@FUZZ
@given(delays=st.lists(st.integers(min_value=-100_000, max_value=299), min_size=1, max_size=6))
async def test_stripe_replays_store_once_and_stale_replays_are_refused(
        env: Env, client: Client, delays: list[int]) -> None:
    body = _REPLAYED.get(env.store.url)
    if body is None:  # the first example delivers the event once
        env.stripe_emulator.seed_objects({"customers": [{"name": "Replay Ltd", "email": "r@example.com"}]})
        body = _REPLAYED[env.store.url] = json.dumps(env.stripe_emulator.events[-1]).encode()
        first = await client.post("/webhooks/stripe", data=body,
                                  headers={"Stripe-Signature": stripe_signature(body, now_of(env))})
        assert first.status == 200 and (await first.json())["stored"] == 1
    before = stored_rows(env.store)
    for delay in delays:
        # A replay re-signed at ``delay`` seconds from now: within 300 s in the past it is a
        # duplicate (2xx, nothing stored again); older is a stale replay (400).
        response = await client.post("/webhooks/stripe", data=body,
                                     headers={"Stripe-Signature": stripe_signature(body, now_of(env) + delay)})
        if delay < -300:
            await assert_4xx(response, delay)
        else:
            assert response.status == 200 and (await response.json())["stored"] == 0, delay
    assert stored_rows(env.store) == before
    await assert_alive(client)


async def test_quickbooks_and_xero_redeliveries_store_once(env: Env, client: Client) -> None:
    qbo_body = json.dumps({"eventNotifications": [{"realmId": DEFAULT_REALM, "dataChangeEvent": {"entities": [
        {"name": "Customer", "id": "7", "operation": "Update", "lastUpdated": "2026-11-01T12:00:00Z"}]}}]}).encode()
    xero_body = json.dumps({"events": [{"tenantId": DEFAULT_TENANT, "eventCategory": "INVOICE",
                                        "eventType": "UPDATE", "resourceId": "inv-1",
                                        "eventDateUtc": "2026-11-01T12:00:00"}]}).encode()
    for path, body in (("/webhooks/quickbooks", qbo_body), ("/webhooks/xero", xero_body)):
        system = system_of(path)
        for attempt in range(3):
            response = await client.post(path, data=body, headers={
                SIGNATURE_HEADER[system]: good_signature(system, body, now_of(env))})
            assert response.status == 200, (path, attempt)
    assert len(env.inbox()) == 2


@FUZZ
@given(data=st.data())
async def test_raw_http_unicode_and_injection_tricks_are_4xx(env: Env, client: Client, data: st.DataObject) -> None:
    """Bytes no well-behaved client would send: invalid/overlong UTF-8, NUL and CR/LF in header
    values, obs-folding, smuggling-style framing, odd paths."""
    before = stored_rows(env.store)
    target = data.draw(st.sampled_from(WEBHOOK_PATHS + ("/api/status", "/api/usage", "/api/findings/x/ack",
                                                        "/webhooks/%00", "/webhooks/stripe/%ED%A0%80",
                                                        "/api/findings/%C0%AF", "/webhooks/str%0d%0aipe")))
    header = data.draw(st.sampled_from(("Authorization", "Stripe-Signature", "intuit-signature",
                                        "x-xero-signature", "Content-Type", "Cookie", "X-Forwarded-For")))
    prefix = b"Bearer " if header == "Authorization" and data.draw(st.booleans()) else b""
    value = prefix + data.draw(st.one_of(bad_utf8_bytes, st.binary(max_size=40),
                                         st.sampled_from((b"a\r\nX-Injected: 1", b"a\nContent-Length: 0",
                                                          b"a\r\n\r\nGET /healthz HTTP/1.1", b"a\x00b",
                                                          b"a\r\n folded", b"\xe2\x80\xae" + b"nekot"))))
    framing = data.draw(st.sampled_from(("length", "chunked", "both", "bad chunk")))
    body = data.draw(bodies)
    method = "GET" if target == "/api/status" else "POST"
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: localhost", header.encode() + b": " + value,
            b"Connection: close"]
    if framing == "length":
        head.append(f"Content-Length: {len(body)}".encode())
        payload = body
    elif framing == "both":
        head += [f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked"]
        payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    elif framing == "chunked":
        head.append(b"Transfer-Encoding: chunked")
        payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    else:
        head.append(b"Transfer-Encoding: chunked")
        payload = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    status, answer = await raw_http(client, b"\r\n".join(head) + b"\r\n\r\n" + payload)
    assert 400 <= status < 500, (target, header, value, framing, answer[:300])
    assert b"X-Injected" not in answer.split(b"\r\n\r\n", 1)[0]
    assert stored_rows(env.store) == before
    await assert_alive(client)


# --------------------------------------------------------------------------- the admin API


def _route_path(template: str, ident: str) -> str:
    return template.replace("{x}", quote(ident.encode("utf-8", "surrogatepass"), safe="") or "0")


@st.composite
def wrong_authorizations(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(("none", "empty", "scheme only", "basic", "wrong", "prefix", "suffix", "case",
                                 "homoglyph", "zero width", "tricky")))
    return {"none": None, "empty": "", "scheme only": "Bearer", "basic": f"Basic {ADMIN_TOKEN}",
            "wrong": f"Bearer {draw(header_text)}", "prefix": f"Bearer {ADMIN_TOKEN[:-1]}",
            "suffix": f"Bearer {ADMIN_TOKEN}x", "case": f"Bearer {ADMIN_TOKEN.upper()}",
            "homoglyph": f"Bearer {ADMIN_TOKEN.replace('a', 'а')}",  # Cyrillic a
            "zero width": f"Bearer {ADMIN_TOKEN}\u200b", "tricky": draw(header_text)}[kind]


def _would_pass(authorization: str | None) -> bool:
    scheme, _, given_token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and given_token.strip() == ADMIN_TOKEN


@FUZZ
@given(route=st.sampled_from(ADMIN_ROUTES), ident=tricky_text, authorization=wrong_authorizations(),
       body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
async def test_admin_api_refuses_every_request_without_the_token(
        env: Env, client: Client, route: tuple[str, str], ident: str, authorization: str | None, body: bytes,
        content_type: str) -> None:
    assume(not _would_pass(authorization))
    before = stored_rows(env.store)
    method, template = route
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await client.request(method, _route_path(template, ident), data=body, headers=headers)
    text = await response.text()
    assert response.status in (401, 403, 404), (route, authorization, response.status, text[:200])
    if response.status == 404:  # only a path that is no route at all (e.g. an id with a "/")
        assert "admin API" not in text
    else:
        assert json.loads(text)["error"] in ("missing bearer token", "wrong token")
    assert stored_rows(env.store) == before
    await assert_alive(client)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _valid_usage(value: Any) -> bool:
    from sync.usage import parse_usage

    try:
        parse_usage(value)
    except ValueError:
        return False
    return True


usage_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"event_id": json_values, "event_name": json_values,
                                        "customer": json_values, "value": json_values, "timestamp": json_values}),
    st.fixed_dictionaries({"event_id": st.one_of(st.just("   "), st.text(min_size=201, max_size=300)),
                           "event_name": tricky_text, "customer": tricky_text, "value": st.integers()}),
    st.fixed_dictionaries({"event_id": st.just("e1"), "event_name": st.just("api_calls"), "customer": st.just("c"),
                           "value": st.sampled_from(("-1", "NaN", "Infinity", "-Infinity", "1e", "", "0x10",
                                                     "\u0661\u0662", True, 1.5, None, [], {}))}),
    st.fixed_dictionaries({"event_id": st.just("e2"), "event_name": st.just("api_calls"), "customer": st.just("c"),
                           "value": st.just(1), "timestamp": tricky_text.filter(lambda t: not _iso(t))}),
)


def _iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@FUZZ
@given(value=usage_bodies, content_type=st.sampled_from(CONTENT_TYPES), raw=st.one_of(st.none(), bodies))
async def test_admin_usage_with_the_token_rejects_malformed_events(
        env: Env, client: Client, value: Any, content_type: str, raw: bytes | None) -> None:
    body = raw if raw is not None else json.dumps(value).encode()
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    assume(not _valid_usage(parsed))
    before = stored_rows(env.store)
    response = await client.post("/api/usage", data=body, headers={**auth(), "Content-Type": content_type})
    await assert_4xx(response, body[:100])
    assert stored_rows(env.store) == before
    await assert_alive(client)


resync_bodies = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries({"finding": tricky_text.filter(bool)}, optional={"keep": tricky_text,
                                                                           "dry_run": st.booleans()}),
    st.fixed_dictionaries({"entity": tricky_text.filter(lambda t: t not in ENTITY_TYPES), "since": json_values}),
    st.fixed_dictionaries({"entity": st.sampled_from(ENTITY_TYPES),
                           "since": tricky_text.filter(lambda t: bool(t) and not _iso(t))}),
    st.fixed_dictionaries({"connection": tricky_text.filter(lambda t: bool(t) and t not in ("stripe", "quickbooks",
                                                                                            "xero")),
                           "entity": st.sampled_from(ENTITY_TYPES), "external_id": tricky_text.filter(bool)}),
    st.fixed_dictionaries({"connection": st.sampled_from(("stripe", "xero")),
                           "entity": tricky_text.filter(lambda t: t not in ENTITY_TYPES),
                           "external_id": tricky_text.filter(bool)}),
    st.dictionaries(st.sampled_from(("keep", "dry_run", "limit", "system", "")), json_values, max_size=3),
)


@FUZZ
@given(data=st.data())
async def test_admin_api_with_the_token_rejects_malformed_requests(
        env: Env, client: Client, data: st.DataObject) -> None:
    before = stored_rows(env.store)
    job_ids = {spec.id for spec in daemon(client).jobs.specs()}
    case = data.draw(st.sampled_from(("resync", "ack", "outbox", "job", "runs", "findings", "outbox list",
                                      "finding")))
    ident = data.draw(tricky_text.filter(lambda t: "/" not in t and t not in job_ids), "id")
    if case == "resync":
        body = data.draw(resync_bodies, "body")
        response = await client.post("/api/resync", data=json.dumps(body), headers=auth())
        await assert_4xx(response, body)
    elif case in ("ack", "finding"):
        method = "POST" if case == "ack" else "GET"
        suffix = "/ack" if case == "ack" else ""
        response = await client.request(method, _route_path("/api/findings/{x}", ident) + suffix, headers=auth())
        await assert_4xx(response, ident)
    elif case == "outbox":
        action = data.draw(st.sampled_from(("retry", "drop")))
        response = await client.post(_route_path("/api/outbox/{x}/", ident) + action, headers=auth())
        await assert_4xx(response, ident)
    elif case == "job":
        response = await client.post(_route_path("/api/jobs/{x}/run", ident), headers=auth())
        await assert_4xx(response, ident)
    else:
        path = {"runs": "/api/runs", "findings": "/api/findings", "outbox list": "/api/outbox"}[case]
        params = data.draw(st.dictionaries(st.sampled_from(("limit", "kind", "status", "entity", "system")),
                                           st.one_of(tricky_text, st.integers().map(str)), max_size=3), "query")
        response = await client.get(path, params=params, headers=auth())
        assert response.status < 500, (path, params, response.status)
        if case != "findings" and params.get("limit") and not _positive_int(params["limit"]):
            await assert_4xx(response, params)
        bad_choice = ((case == "findings" and (params.get("kind") or None) not in (None, *KINDS))
                      or (case == "findings" and (params.get("entity") or None) not in (None, *ENTITY_TYPES)))
        if bad_choice:
            await assert_4xx(response, params)
    assert stored_rows(env.store) == before
    await assert_alive(client)


# --------------------------------------------------------------------------- the console


def _positive_int(text: str) -> bool:
    try:
        return int(text) > 0
    except ValueError:
        return False


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form(fields: dict[str, str]) -> bytes:
    """URL-encode a form as bytes, lone surrogates included (as a hostile client would)."""
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in fields.items()).encode()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:300]
    return match.group(1)


@FUZZ
@given(route=st.sampled_from(CONSOLE_ROUTES), ident=tricky_text, cookie=st.one_of(st.none(), header_text),
       form=st.dictionaries(st.sampled_from(("csrf", "token", "keep")), tricky_text, max_size=3))
async def test_console_refuses_every_page_and_action_without_a_session(
        env: Env, client: Client, route: tuple[str, str], ident: str, cookie: str | None,
        form: dict[str, str]) -> None:
    before = stored_rows(env.store)
    client.session.cookie_jar.clear()
    method, template = route
    headers = {**FORM, **({"Cookie": f"hub_session={cookie}"} if cookie is not None else {})}
    response = await client.request(method, _route_path(template, ident), data=_form(form) if form else None,
                                    headers=headers, allow_redirects=False)
    if response.status == 303:
        assert response.headers["Location"] == "/login"
    else:  # an id that is no route at all
        assert response.status in (404, 405), (route, ident, response.status)
    assert ADMIN_TOKEN not in await response.text()
    assert stored_rows(env.store) == before
    await assert_alive(client)


@FUZZ
@given(token=st.one_of(header_text, tricky_text, st.just(ADMIN_TOKEN)), csrf=st.one_of(st.none(), tricky_text),
       nonce=st.one_of(st.none(), header_text))
async def test_console_login_needs_the_token_and_a_valid_form(
        env: Env, client: Client, token: str, csrf: str | None, nonce: str | None) -> None:
    """Wrong tokens, forged or missing CSRF tokens and nonces: no session, whatever the mix."""
    client.session.cookie_jar.clear()
    headers = {**FORM, **({"Cookie": f"hub_login={nonce}"} if nonce else {})}
    form = {"token": token, **({"csrf": csrf} if csrf is not None else {})}
    response = await client.post("/login", data=_form(form), headers=headers, allow_redirects=False)
    assert response.status in (401, 403), (token, csrf, nonce, response.status)
    assert not any(c.startswith("hub_session=") for c in response.headers.getall("Set-Cookie", []))
    await assert_alive(client)


@FUZZ
@given(route=st.sampled_from(CONSOLE_ROUTES[:-1]), ident=tricky_text.filter(lambda t: "/" not in t),
       query=st.dictionaries(st.sampled_from(("kind", "status", "entity", "system")), tricky_text, max_size=3))
async def test_console_with_a_session_answers_junk_with_4xx(
        env: Env, client: Client, route: tuple[str, str], ident: str, query: dict[str, str]) -> None:
    if not client.session.cookie_jar.filter_cookies(client.make_url("/")).get("hub_session"):
        page = await client.get("/login")
        ok = await client.post("/login", data={"token": ADMIN_TOKEN, "csrf": _csrf(await page.text())},
                               allow_redirects=False)
        assert ok.status == 303
    before = stored_rows(env.store)
    method, template = route
    path = _route_path(template, ident)
    if method == "POST":
        page = await client.get("/findings")
        response = await client.post(path, data={"csrf": _csrf(await page.text())}, allow_redirects=False)
    else:
        response = await client.get(path, params=query, allow_redirects=False)
    assert response.status < 500, (path, query, response.status, (await response.text())[:300])
    if "{x}" in template:
        await assert_4xx(response, path)
    assert stored_rows(env.store) == before
    await assert_alive(client)


# --------------------------------------------------------------------------- found by fuzzing

REGRESSIONS = (
    # Invalid UTF-8 in a bearer token reached ``str.encode()`` in the token compare: 500.
    b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
    b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xc0\xaf\r\nConnection: close\r\n\r\n",
    b"POST /api/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xed\xa0\x80\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n{}",
    # Non-ASCII in the session cookie reached ``hmac.compare_digest(str, str)``: TypeError, 500.
    b"GET /findings/x HTTP/1.1\r\nHost: x\r\nCookie: hub_session=\xff.\xfe\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nCookie: hub_session=a.\xc3\xa9\r\nConnection: close\r\n\r\n",
    # ... and in the login nonce cookie and the posted CSRF token.
    b"POST /login HTTP/1.1\r\nHost: x\r\nCookie: hub_login=\xff\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nContent-Length: 21\r\nConnection: close\r\n\r\ntoken=x&csrf=%C3%A9%00",
    b"GET /api/runs?limit=-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_TOKEN.encode()
    + b"\r\nConnection: close\r\n\r\n",
    b"POST /api/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_TOKEN.encode()
    + b"\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n" + b"[" * 20000,
)


async def test_inputs_that_once_answered_500_now_answer_4xx(env: Env, client: Client) -> None:
    before = stored_rows(env.store)
    for request in REGRESSIONS:
        status, answer = await raw_http(client, request)
        to_login = status == 303 and b"\r\nLocation: /login\r\n" in answer  # console pages: sign in first
        assert 400 <= status < 500 or to_login, (request[:90], answer[:300])
    assert stored_rows(env.store) == before
    await assert_alive(client)


async def test_console_actions_on_unknown_findings_are_404_not_500(env: Env, client: Client) -> None:
    page = await client.get("/login")
    await client.post("/login", data={"token": ADMIN_TOKEN, "csrf": _csrf(await page.text())})
    csrf = _csrf(await (await client.get("/findings")).text())
    for action in ("ack", "preview", "resync"):
        response = await client.post(f"/findings/no-such-finding/{action}", data={"csrf": csrf},
                                     allow_redirects=False)
        assert response.status == 404, (action, response.status)


# --------------------------------------------------------------------------- hardening checks


def test_tokens_and_session_signatures_are_compared_in_constant_time() -> None:
    import inspect

    from sync import users
    from sync.web import api, auth, console

    assert "hmac.compare_digest" in inspect.getsource(api.token_matches)
    console_source, auth_source = inspect.getsource(console), inspect.getsource(auth)
    # Every secret the console checks goes through ``token_matches`` (constant time), never ``==``:
    # the session signature, the CSRF tokens and the login form's here; the [admin] token (as a
    # bearer and at login) in sync/web/auth.py; a user's token digest and password in sync/users.py.
    assert console_source.count("token_matches(") >= 3 and auth_source.count("token_matches(") >= 2
    assert inspect.getsource(users).count("hmac.compare_digest(") >= 2
    assert not re.search(r"(admin_token|csrf|_sign\([^)]*\))\s*[!=]=", console_source + auth_source)
    assert not re.search(r"(token_hash|password_hash|digest)\s*[!=]=", inspect.getsource(users))
    assert not re.search(r"[!=]=\s*(token|daemon\.admin_token)\b", inspect.getsource(api))
    assert api.token_matches(ADMIN_TOKEN, ADMIN_TOKEN)
    for given_token in ("", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "\udcff", "\ud800", ADMIN_TOKEN.upper()):
        assert not api.token_matches(ADMIN_TOKEN, given_token)
    assert not api.token_matches(None, "")


CSP_REQUIRED = ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                "form-action 'self'")


async def test_every_answer_carries_a_strict_content_security_policy(env: Env, client: Client) -> None:
    page = await client.get("/login")
    await client.post("/login", data={"token": ADMIN_TOKEN, "csrf": _csrf(await page.text())})
    for path in ("/login", "/", "/findings", "/outbox", "/records/nope", "/static/console.js", "/healthz",
                 "/api/status", "/webhooks/stripe"):
        response = await client.get(path, allow_redirects=False)
        csp = response.headers.get("Content-Security-Policy", "")
        directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
        assert all(required in csp for required in CSP_REQUIRED), (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp, (path, csp)
        assert set(directives) >= {"default-src", "script-src", "style-src", "frame-ancestors"}, path
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
        assert response.headers.get("X-Frame-Options") == "DENY", path
    # The CSP forbids inline script and style, so the pages must not rely on any.
    html = await (await client.get("/")).text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+\s*=", html) and " style=" not in html and "<style" not in html


async def test_admin_api_refuses_requests_without_the_token(env: Env, client: Client) -> None:
    for method, template in ADMIN_ROUTES:
        path = template.replace("{x}", "1")
        missing = await client.request(method, path)
        assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer"), path
        wrong = await client.request(method, path, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status == 403, path
    assert (await client.get("/api/status", headers=auth())).status == 200
