"""A large QuickBooks notification is stored with one INSERT, not one per entity (issue 23, item 4),
and what that INSERT stores is what the JSON column would have stored, on SQLite and PostgreSQL.

``python -m bench.webhook_intake`` measures the seconds; this holds the shape that makes them small.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN
from connectors.quickbooks.emulator import sign as qbo_sign
from mapping import exact_json
from state.store import StateStore
from sync.web.app import create_app
from tests.daemon.conftest import Env, env_per_database

Client = TestClient[Any, Any]
env = pytest.fixture(params=["sqlite", "postgres"])(env_per_database)


@pytest.fixture
async def big_client(env: Env) -> AsyncIterator[Client]:
    config = dataclasses.replace(env.config, server={**env.config.server, "max_body_bytes": 2_000_000})
    app = create_app(config, env.hub, start_scheduler=False, clock=env.clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


class Statements:
    """INSERTs into the inbox: how often the code executed one, and how many the driver ran."""

    def __init__(self) -> None:
        self.executed = self.sent = 0

    @staticmethod
    def _into_inbox(sql: str) -> bool:
        return sql.lstrip().upper().startswith("INSERT INTO INBOX")

    def count_executed(self, conn: Any, clause: Any, *args: Any) -> None:
        self.executed += self._into_inbox(str(clause))

    def count_sent(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent += self._into_inbox(statement)


@pytest.fixture
def statements(env: Env) -> Iterator[Statements]:
    counted = Statements()
    engine = env.store.engine
    event.listen(engine, "before_execute", counted.count_executed)
    event.listen(engine, "before_cursor_execute", counted.count_sent)
    yield counted
    event.remove(engine, "before_execute", counted.count_executed)
    event.remove(engine, "before_cursor_execute", counted.count_sent)


async def test_a_5000_entity_notification_is_one_insert(env: Env, big_client: Client, statements: Statements) -> None:
    entities = [{"name": "Customer", "id": str(i), "operation": "Update", "lastUpdated": "2026-11-01T12:00:00Z"}
                for i in range(5000)]
    body = exact_json.dumps({"eventNotifications": [{"realmId": DEFAULT_REALM,
                                                     "dataChangeEvent": {"entities": entities}}]}).encode()
    response = await big_client.post("/webhooks/quickbooks", data=body,
                                     headers={"intuit-signature": qbo_sign(body, DEFAULT_VERIFIER_TOKEN)})
    assert await response.json() == {"received": 5000, "stored": 5000, "duplicate": 0}
    assert statements.executed == 1  # one statement for the delivery, never one per entity
    # PostgreSQL: one round trip (the rows as one JSON parameter). SQLite: SQLAlchemy's
    # insertmanyvalues pages of 1,000 rows (its default page size): five.
    assert statements.sent == 1 if env.store.is_postgres else statements.sent <= 5
    assert [int(r["payload"]["id"]) for r in env.inbox()] == list(range(5000))  # in delivery order


ODD: dict[str, Any] = {"quote": 'say "hi"', "backslash": "C:\\path\\u0000 not a NUL", "unicode": "café ☕ 𝄞", "nested": {
    "list": [1, -2, 3.5, True, False, None, {"deep": ["x"]}], "empty": {}, "none": None},
    "number": 12345678901234567890, "ratio": 0.1}


def test_stored_payloads_read_back_equal_on_both_databases(store: StateStore) -> None:
    events: list[tuple[str, dict[str, Any], str]] = [("évt-1", ODD, "customer.updated"), ('evt "2"', {"id": 2}, "type with \"quotes\""),
              ("evt-1-again", {"same": "payload as given"}, "")]
    with store.transaction() as tx:
        assert tx.add_inbox("stripe", "one-by-one", ODD, "customer.updated") is True
        assert tx.add_inbox_many("stripe", events) == 3
        stored = {i.event_id: i for i in tx.inbox_items("stripe")}
    assert stored["évt-1"].payload == ODD == stored["one-by-one"].payload
    assert stored['evt "2"'].event_type == 'type with "quotes"' and stored['evt "2"'].payload == {"id": 2}
    assert stored["evt-1-again"].event_type == "" and stored["évt-1"].status == "pending"
    assert stored["évt-1"].received_at == stored["one-by-one"].received_at  # the store's clock
