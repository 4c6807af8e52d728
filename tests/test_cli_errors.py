"""No traceback reaches a user: every ``hub`` command, walked from the click group, answers bad
input with exit 2 and one ``error``/``Error`` line; plus the cases a tester found (issue 23)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from hub import cli
from state.store import StateStore

# Commands that never read the config (they make their own): given good arguments they would
# start emulators, so the missing-config walk leaves them out. Their bad options are still walked.
NO_CONFIG = {("demo",), ("emulate",)}


def leaves(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaves(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(leaves())
IDS = [" ".join(p) for p, _ in COMMANDS]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_clean_error(result: Result, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    # An uncaught exception would be here instead of SystemExit (CliRunner does not print it).
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert any(line.lower().startswith("error") for line in result.output.splitlines()), result.output


def good_arguments(command: click.Command, existing_file: Path) -> list[str]:
    """Values that parse, for the command's required arguments (so the config is reached)."""
    values: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.nargs == 1:
            if isinstance(param.type, click.Path):
                values.append(str(existing_file))
            elif isinstance(param.type, click.types._NumberParamTypeBase):
                values.append("1")
            else:
                values.append("x")
        elif isinstance(param, click.Option) and param.required:
            choices = getattr(param.type, "choices", None)
            values += [param.opts[0], str(next(iter(choices))) if choices else "x"]
    return values


def bad_value(param: click.Parameter) -> str | None:
    """A value the parameter's type refuses, or None when its type takes any text."""
    kind = param.type
    if isinstance(kind, click.Path):
        return "/no/such/dir/file" if kind.exists else None
    if isinstance(kind, (click.Choice, click.DateTime, click.types._NumberParamTypeBase, click.types.BoolParamType)):
        return "not-a-value"
    return None


def test_the_walk_covers_every_command() -> None:
    names = set(IDS)
    assert {"init", "status", "sync", "run", "drift ack", "outbox retry", "usage import"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_a_missing_config_file_is_one_error_line(path: tuple[str, ...], command: click.Command,
                                                 tmp_path: Path) -> None:
    if path in NO_CONFIG:
        pytest.skip("does not read a config")
    existing = tmp_path / "events.jsonl"
    existing.write_text("")
    result = invoke("--config", str(tmp_path / "missing.toml"), *path, *good_arguments(command, existing))
    assert_clean_error(result)  # naming the missing file, or the arguments refused first (resync)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_an_unknown_option_is_a_usage_error(path: tuple[str, ...], command: click.Command) -> None:
    assert_clean_error(invoke(*path, "--no-such-option"))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_a_bad_value_for_each_typed_parameter_is_a_usage_error(path: tuple[str, ...],
                                                               command: click.Command) -> None:
    for param in command.params:
        value = bad_value(param)
        if value is None or (isinstance(param, click.Option) and param.is_flag):
            continue
        args = [value] if isinstance(param, click.Argument) else [param.opts[0], value]
        result = invoke(*path, *args)
        assert_clean_error(result)
        named = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
        assert named in result.output and value in result.output, result.output


# --------------------------------------------------------------------------- the tester's cases


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/hub.db"\n\n'
                    '[connections.stripe]\nsystem = "stripe"\napi_key = "sk_test_x"\n')
    assert invoke("--config", str(path), "init").exit_code == 0
    return path


def test_drift_export_into_a_missing_folder(config: Path) -> None:
    result = invoke("--config", str(config), "drift", "export", "-o", "/missing/dir/x")
    assert_clean_error(result)
    assert "/missing/dir/x" in result.output


@pytest.mark.parametrize("command", ["retry", "drop"])
def test_an_outbox_id_beyond_the_database_integer(config: Path, command: str) -> None:
    assert_clean_error(invoke("--config", str(config), "outbox", command, "99999999999999999999"))


def test_an_outbox_id_beyond_the_database_integer_in_the_store(config: Path, tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/hub.db")
    try:
        with pytest.raises(Exception) as caught, store.transaction() as tx:
            tx.retry_outbox(2**70)
        assert type(caught.value).__module__ == "state.errors"
    finally:
        store.dispose()


def test_usage_import_of_a_binary_file(config: Path, tmp_path: Path) -> None:
    binary = tmp_path / "events.csv"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff\xfe" * 20)
    result = invoke("--config", str(config), "usage", "import", str(binary), "--no-send")
    assert_clean_error(result)
    assert "not a text file" in result.output


def test_run_on_a_port_out_of_range(config: Path) -> None:
    assert_clean_error(invoke("--config", str(config), "run", "--port", "99999"))


def test_run_on_a_configured_port_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/hub.db"\n\n[server]\nport = 99999\n')
    result = invoke("--config", str(path), "run")
    assert_clean_error(result)
    assert "99999" in result.output


def test_export_when_a_stored_row_is_bad_json(config: Path, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute("INSERT INTO entities (id, type, payload, content_hash, version, deleted, updated_at) "
                   "VALUES ('x', 'customer', '{bad', 'h', 1, 0, '2026-01-01 00:00:00')")
    result = invoke("--config", str(config), "export", "--entity", "customer", "--json")
    assert_clean_error(result)
    assert "damaged" in result.output


def test_sync_of_an_unknown_system_names_the_configured_ones(config: Path) -> None:
    result = invoke("--config", str(config), "sync", "--system", "paypal")
    assert_clean_error(result)
    assert "'paypal'" in result.output and "stripe" in result.output


def test_a_config_that_is_not_text_or_a_folder(tmp_path: Path) -> None:
    binary = tmp_path / "hub.toml"
    binary.write_bytes(b"\xd0\xff\xfe" * 10)
    assert_clean_error(invoke("--config", str(binary), "status"))
    assert_clean_error(invoke("--config", str(tmp_path), "status"))


@pytest.mark.parametrize("pattern", ["%", "_", "\\", "%%%%"])
def test_finding_ids_are_prefixes_not_like_patterns(config: Path, tmp_path: Path, pattern: str) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/hub.db")
    with store.transaction() as tx:
        finding_id, _ = tx.upsert_finding(fingerprint="f1", kind="missing", entity="customer", system="stripe",
                                          canonical_id=None, external_ids=["cus_1"], fields={}, detail="",
                                          run_id=None)
    result = invoke("--config", str(config), "drift", "ack", pattern)
    assert_clean_error(result)
    with store.transaction() as tx:
        assert tx.get_finding(finding_id).status == "open"
        assert tx.get_finding(finding_id[:6]).id == finding_id  # a real prefix still works
    store.dispose()
    shown = invoke("--config", str(config), "drift", "show", finding_id[:8], "--json")
    assert shown.exit_code == 0 and json.loads(shown.output)["id"] == finding_id
