"""`hub users`: named people with a role; their token printed once and kept only as a digest, a
password only as scrypt (the database file's bytes hold neither); every change in the audit log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub import cli
from state.store import StateStore
from sync.audit import cli_actor
from sync.users import hash_password, password_matches, token_digest, user_for_login, user_for_token
from tests.conftest import make_store

PASSWORD = "correct horse battery staple"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/hub.db"\n')
    return path


def run(config: Path, *args: str, given: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], input=given)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _store(config: Path) -> StateStore:
    return make_store(f"sqlite:///{config.parent}/hub.db")


def test_a_password_is_kept_as_salted_scrypt_and_checked() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one.startswith("scrypt$16384$8$1$") and one != two  # a salt of its own each time
    assert PASSWORD not in one
    assert password_matches(PASSWORD, one) and password_matches(PASSWORD, two)
    assert not password_matches(PASSWORD + "!", one)
    assert not password_matches(PASSWORD, None) and not password_matches(PASSWORD, "md5$abc")


def test_add_prints_the_token_once_and_the_database_keeps_no_secret(config_file: Path) -> None:
    code, out = run(config_file, "users", "add", "alice", "--role", "operator", "--password", "--json",
                    given=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0, out
    token = json.loads(out[out.index("{"):])["token"]
    assert token.startswith("bh_") and len(token) > 40
    code, listed = run(config_file, "users", "list", "--json")
    assert code == 0 and token not in listed
    assert json.loads(listed)["users"][0] | {"created_at": "", "updated_at": ""} == {
        "name": "alice", "role": "operator", "disabled": False, "token": True, "password": True,
        "created_at": "", "updated_at": ""}
    store = _store(config_file)
    assert user_for_token(store, token) is not None and user_for_login(store, "alice", PASSWORD) is not None
    assert user_for_login(store, "alice", token) is not None  # the token logs into the console too
    assert user_for_login(store, "alice", "wrong password") is None
    store.dispose()
    raw = b"".join(p.read_bytes() for p in config_file.parent.glob("hub.db*"))  # with the WAL
    assert token.encode() not in raw and PASSWORD.encode() not in raw
    assert token_digest(token).encode() in raw  # what is kept instead
    assert hashlib.sha256(PASSWORD.encode()).hexdigest().encode() not in raw  # never a fast hash


def test_reset_disable_and_role_are_audited(config_file: Path) -> None:
    _, out = run(config_file, "users", "add", "bob", "--role", "read-only")
    first = out.strip().splitlines()[-1]
    code, out = run(config_file, "users", "reset", "bob")
    second = out.strip().splitlines()[-1]
    assert code == 0 and second != first and second.startswith("bh_")
    assert run(config_file, "users", "role", "bob", "--role", "admin")[0] == 0
    assert run(config_file, "users", "disable", "bob", "--reason", "left the team")[0] == 0
    store = _store(config_file)
    assert user_for_token(store, first) is None and user_for_token(store, second) is None  # old; disabled
    with store.transaction() as tx:
        entries = list(reversed(tx.list_audit()))
    store.dispose()
    assert [e.action for e in entries] == ["user.add", "user.reset", "user.role", "user.disable"]
    assert {e.actor for e in entries} == {cli_actor()} and {e.target_id for e in entries} == {"bob"}
    assert (entries[2].before["role"], entries[2].after["role"]) == ("read-only", "admin")
    assert entries[3].after["disabled"] is True and entries[3].reason == "left the team"
    logged = json.dumps([e.to_json() for e in entries])
    assert first not in logged and second not in logged and token_digest(second) not in logged


@pytest.mark.parametrize(("args", "says"), [
    (("users", "add", "admin", "--role", "admin"), "the configured [admin] token's name"),
    (("users", "add", "Bad Name", "--role", "admin"), "lower-case letters"),
    (("users", "add", "carol", "--role", "boss"), "'boss' is not one of"),
    (("users", "disable", "nobody"), "no user 'nobody'"),
    (("users", "role", "nobody", "--role", "operator"), "no user 'nobody'"),
])
def test_bad_user_commands_say_what_to_do(config_file: Path, args: tuple[str, ...], says: str) -> None:
    code, out = run(config_file, *args)
    assert code == 2 and says in out, out


def test_a_short_password_is_refused(config_file: Path) -> None:
    code, out = run(config_file, "users", "add", "dave", "--role", "operator", "--password", given="short\nshort\n")
    assert code == 2 and "at least 12 characters" in out
    code, out = run(config_file, "users", "add", "dave", "--role", "operator")
    assert code == 0, out  # nothing was half-made by the refused attempt
