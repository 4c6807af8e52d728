"""A usage event id is an idempotency key (issue 23, item 8): the same id with the same content is
a duplicate, with a different value, customer, meter or timestamp a 409 over the API and a refused
file for ``hub usage import`` — nothing from that file stored. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from click.testing import CliRunner

from hub import cli
from state.store import StateStore
from sync.usage import USAGE, UsageConflict, parse_usage, store_usage
from tests.daemon.conftest import Env, auth, env_per_database

Client = TestClient[Any, Any]
env = pytest.fixture(params=["sqlite", "postgres"])(env_per_database)

EVENT = {"event_id": "use-1", "event_name": "api_calls", "customer": "cus_123", "value": "42",
         "timestamp": "2026-10-01T12:00:00+00:00"}


async def test_the_same_id_with_the_same_content_is_a_duplicate(env: Env, client: Client) -> None:
    first = await client.post("/api/usage", json=EVENT, headers=auth())
    assert first.status == 202 and await first.json() == {"event_id": "use-1", "stored": True, "duplicate": False}
    # The same content, written differently: 42 for "42", Z for +00:00.
    again = await client.post("/api/usage", json={**EVENT, "value": 42, "timestamp": "2026-10-01T12:00:00Z"},
                              headers=auth())
    assert again.status == 200 and await again.json() == {"event_id": "use-1", "stored": False, "duplicate": True}
    assert [r["payload"]["value"] for r in env.inbox()] == ["42"]


@pytest.mark.parametrize(("field", "other"), [("value", "43"), ("customer", "cus_456"),
                                              ("event_name", "api_bytes"),
                                              ("timestamp", "2026-10-02T12:00:00+00:00")])
async def test_the_same_id_with_different_content_is_a_409_naming_what_differs(
        env: Env, client: Client, field: str, other: str) -> None:
    assert (await client.post("/api/usage", json=EVENT, headers=auth())).status == 202
    response = await client.post("/api/usage", json={**EVENT, field: other}, headers=auth())
    assert response.status == 409
    body = await response.json()
    assert body["event_id"] == "use-1"
    assert body["differs"] == {field: {"stored": EVENT[field], "given": other}}
    assert "use-1" in body["error"] and field in body["error"]
    rows = env.inbox()
    assert [(r["event_id"], r["payload"][field]) for r in rows] == [("use-1", EVENT[field])]  # the first kept


async def test_a_timestamp_added_to_a_stored_event_without_one_is_a_conflict(env: Env, client: Client) -> None:
    plain = {k: v for k, v in EVENT.items() if k != "timestamp"}
    assert (await client.post("/api/usage", json=plain, headers=auth())).status == 202
    response = await client.post("/api/usage", json=EVENT, headers=auth())
    assert response.status == 409 and (await response.json())["differs"] == {
        "timestamp": {"stored": None, "given": EVENT["timestamp"]}}


def test_the_openapi_document_lists_the_usage_answers() -> None:
    from sync.web.api import OPENAPI

    responses = OPENAPI["paths"]["/api/usage"]["post"]["responses"]
    assert {"200", "202", "409"} <= set(responses)
    assert "differs" in responses["409"]["content"]["application/json"]["schema"]["required"]


# --------------------------------------------------------------------------- store and import


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hub.db"
    return str(request.getfixturevalue("pg_schema_url"))


def _usage_rows(url: str) -> dict[str, str]:
    store = StateStore(url)
    try:
        with store.transaction() as tx:
            return {item.event_id: str(item.payload["value"]) for item in tx.inbox_items(USAGE)}
    finally:
        store.dispose()


def _import(tmp_path: Path, url: str, name: str, lines: list[dict[str, Any]]) -> tuple[int, str]:
    config = tmp_path / "hub.toml"
    config.write_text(f'[state]\nurl = "{url}"\n')
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "usage", "import", "--no-send", str(path)])
    return result.exit_code, result.output


def _event(event_id: str, value: str) -> dict[str, Any]:
    return {**EVENT, "event_id": event_id, "value": value}


def test_an_import_reusing_a_stored_id_with_another_value_stores_nothing(tmp_path: Path, state_url: str) -> None:
    code, output = _import(tmp_path, state_url, "october.jsonl", [_event("u-1", "5"), _event("u-2", "6")])
    assert code == 0 and "stored 2 new usage events, 0 already known" in output
    code, output = _import(tmp_path, state_url, "november.jsonl",
                           [_event("u-3", "7"), _event("u-1", "5"), _event("u-2", "60"), _event("u-4", "8")])
    assert code == 2
    assert "november.jsonl: event 3: event_id 'u-2'" in output and "value 6 there, 60 here" in output
    assert "nothing from this file was stored" in output
    assert _usage_rows(state_url) == {"u-1": "5", "u-2": "6"}  # u-3 and u-4 not stored either
    # The same file fixed imports whole; the repeated u-1 is a duplicate.
    code, output = _import(tmp_path, state_url, "november.jsonl",
                           [_event("u-3", "7"), _event("u-1", "5"), _event("u-4", "8")])
    assert code == 0 and "stored 2 new usage events, 1 already known" in output
    assert _usage_rows(state_url) == {"u-1": "5", "u-2": "6", "u-3": "7", "u-4": "8"}


def test_an_import_repeating_an_id_with_another_value_within_the_file_stores_nothing(
        tmp_path: Path, state_url: str) -> None:
    code, output = _import(tmp_path, state_url, "usage.jsonl",
                           [_event("u-1", "5"), _event("u-2", "6"), _event("u-1", "5.0"), _event("u-1", "9")])
    assert code == 2
    assert "event 4: event_id 'u-1' is already used by event 1 of this import" in output
    assert _usage_rows(state_url) == {}


def test_store_usage_raises_the_conflict_and_keeps_the_batch_out(store: StateStore) -> None:
    store_usage(store, [parse_usage(_event("u-1", "5"))])
    with pytest.raises(UsageConflict) as raised:
        store_usage(store, [parse_usage(_event("u-9", "1")), parse_usage({**_event("u-1", "5"), "customer": "cus_x"})])
    assert (raised.value.event_id, raised.value.index, raised.value.earlier) == ("u-1", 1, None)
    assert raised.value.differs == {"customer": ("cus_123", "cus_x")}
    with store.transaction() as tx:
        assert [item.event_id for item in tx.inbox_items(USAGE)] == ["u-1"]


async def test_a_timestamp_without_an_offset_is_refused_not_read_in_the_machines_zone(
        env: Env, client: Client) -> None:
    response = await client.post("/api/usage", json={**EVENT, "timestamp": "2026-10-01T12:00:00"}, headers=auth())
    assert response.status == 400
    assert "no UTC offset" in (await response.json())["error"]
    assert env.inbox() == []
