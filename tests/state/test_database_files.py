"""Opening a database the hub cannot use is refused with what to do, and nothing is changed
(issue 23): empty, non-SQLite or damaged files, another application's database, a schema from
a newer billhub, and a current schema missing a table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from state.errors import (
    EmptyDatabaseFile,
    ForeignDatabase,
    MissingTables,
    NewerSchema,
    NotADatabase,
)
from state.store import StateStore
from tests.conftest import fresh_pg_schema


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _init(url: str) -> str:
    """Open a store on ``url`` and init it, closing its connections whatever happens."""
    store = StateStore(url)
    try:
        return store.init()
    finally:
        store.dispose()


def test_a_path_that_does_not_exist_becomes_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    assert _init(_url(path)) == _init(_url(path))
    assert path.stat().st_size > 0


def test_an_existing_empty_file_is_refused_and_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    path.touch()
    with pytest.raises(EmptyDatabaseFile, match="is an empty file, not a billhub database — if it is a "
                                                "mistake, delete it and run `hub init`"):
        _init(_url(path))
    assert path.stat().st_size == 0


@pytest.mark.parametrize("content", [b"hello, this is not a database\n" * 200,
                                     b"SQLite format 3\x00" + b"\xde\xad" * 4000])
def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hub.db"
    path.write_bytes(content)
    with pytest.raises(NotADatabase, match="is not a usable database .* restore it from a backup"):
        _init(_url(path))
    assert path.read_bytes() == content


def test_a_scribbled_billhub_database_is_damaged_not_at_a_version(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = StateStore(_url(path))
    store.init()
    store.dispose()  # checkpointed: everything is in the main file
    data = bytearray(path.read_bytes())
    data[3 * 4096:] = b"\x5a" * (len(data) - 3 * 4096)  # every page after the first three scribbled over
    path.write_bytes(bytes(data))
    with pytest.raises(NotADatabase, match="database disk image is malformed"):
        _init(_url(path))


def test_damage_found_after_opening_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = StateStore(_url(path))
    store.init()
    store.dispose()
    data = bytearray(path.read_bytes())
    data[3 * 4096:] = b"\x5a" * (len(data) - 3 * 4096)
    path.write_bytes(bytes(data))
    with pytest.raises(NotADatabase), store.transaction() as tx:
        tx.conn.execute(text("SELECT count(*) FROM findings")).scalar()
    store.dispose()


def test_another_applications_database_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    with pytest.raises(ForeignDatabase, match=r"holds tables \(orders\) but no billhub schema version"):
        _init(_url(path))
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["orders"]


def test_another_alembic_applications_database_is_foreign(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    with pytest.raises(ForeignDatabase, match="another application's schema"):
        _init(_url(path))


def _newer_schema(url: str) -> None:
    _init(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    with pytest.raises(NewerSchema, match="created by a newer billhub .*0099_from_the_future.* upgrade billhub"):
        _init(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099_from_the_future"
    engine.dispose()


def _missing_table(url: str) -> None:
    _init(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE findings"))
    engine.dispose()
    with pytest.raises(MissingTables, match="table findings is missing — restore it from a backup"):
        _init(url)


def test_a_newer_schema_is_refused_on_sqlite(tmp_path: Path) -> None:
    _newer_schema(_url(tmp_path / "hub.db"))


def test_a_missing_table_at_head_is_refused_on_sqlite(tmp_path: Path) -> None:
    _missing_table(_url(tmp_path / "hub.db"))


def test_a_newer_schema_is_refused_on_postgresql(pg_url: str) -> None:
    with fresh_pg_schema(pg_url) as url:
        _newer_schema(url)


def test_a_missing_table_at_head_is_refused_on_postgresql(pg_url: str) -> None:
    with fresh_pg_schema(pg_url) as url:
        _missing_table(url)


def test_a_foreign_postgresql_schema_is_refused(pg_url: str) -> None:
    with fresh_pg_schema(pg_url) as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
        engine.dispose()
        with pytest.raises(ForeignDatabase, match="belongs to another application"):
            _init(url)
