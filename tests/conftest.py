"""Shared fixtures: a state store on SQLite and on the real PostgreSQL.

PostgreSQL is at HUB_TEST_PG_URL (default the local server's ``test`` database). Each test
gets its own schema, dropped afterwards. Under CI=true an unreachable PostgreSQL fails the run
instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from state.crypto import Cipher, generate_key
from state.store import StateStore

PG_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_KEY = generate_key()


class FrozenClock:
    """A pinned clock tests advance explicitly."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def _pg_available() -> bool:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable and CI=true: start it", pytrace=False)
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable")
    yield PG_URL


@contextmanager
def fresh_pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh, empty schema on the real PostgreSQL, as a URL whose search_path points at it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A fresh, empty schema on the real PostgreSQL, as a URL whose search_path points at it."""
    with fresh_pg_schema(pg_url) as url:
        yield url


def schema_head() -> str:
    """The newest migration's revision: tests name it, not a number each new migration bumps."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from state.store import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    (head,) = ScriptDirectory.from_config(cfg).get_heads()  # one head: two would be a merge to make
    return str(head)


def make_store(url: str, clock: FrozenClock | None = None) -> StateStore:
    store = StateStore(url, cipher=Cipher(TEST_KEY), clock=clock or FrozenClock())
    store.init()
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: object, clock: FrozenClock) -> Iterator[StateStore]:
    """The state store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/hub.db"
    else:
        url = request.getfixturevalue("pg_schema_url")
    s = make_store(url, clock)
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(tmp_path: object, clock: FrozenClock) -> Iterator[StateStore]:
    s = make_store(f"sqlite:///{tmp_path}/hub.db", clock)
    yield s
    s.dispose()
