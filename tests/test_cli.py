"""The first commands of the CLI: init, status, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub import cli
from mapping.model import Customer
from state.store import StateStore
from tests.conftest import schema_head


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/hub.db"\n\n'
                    '[connections.stripe]\nsystem = "stripe"\napi_key = "sk_test_x"\n')
    return path


def run(config: Path | str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "status", "export"):
        assert command in result.output


def test_init_on_an_empty_sqlite_file_twice(config_file: Path) -> None:
    assert run(config_file, "init")[0] == 0
    code, output = run(config_file, "init")
    assert code == 0 and f"schema version {schema_head()}" in output


@pytest.mark.postgres
def test_init_on_an_empty_postgres_schema_twice(tmp_path: Path, pg_schema_url: str) -> None:
    path = tmp_path / "pg.toml"
    path.write_text(f'[state]\nurl = "{pg_schema_url}"\n')
    assert run(path, "init")[0] == 0
    code, output = run(path, "init")
    assert code == 0 and schema_head() in output


def test_status_json_reports_connections_outbox_and_findings(config_file: Path, tmp_path: Path) -> None:
    run(config_file, "init")
    store = StateStore(f"sqlite:///{tmp_path}/hub.db")
    with store.transaction() as tx:
        tx.enqueue("c1", "customer", "stripe", "upsert", "k1", "h1")
        tx.set_cursor("stripe", "customer", "evt_1")
        tx.set_connection_state("stripe", "paused", reason="daily limit")
    store.dispose()
    code, output = run(config_file, "status", "--json")
    data = json.loads(output)
    assert code == 1  # a paused connection needs a person (issue 20, item 6)
    assert data["attention"] == ["stripe paused: daily limit"]
    assert data["connections"][0]["name"] == "stripe" and data["connections"][0]["status"] == "paused"
    assert data["outbox"] == {"pending": 1}
    assert data["cursors"][0]["stream"] == "customer"
    code, text = run(config_file, "status")
    assert code == 1 and "daily limit" in text


def test_export_json_prints_records_with_their_links(config_file: Path, tmp_path: Path) -> None:
    run(config_file, "init")
    store = StateStore(f"sqlite:///{tmp_path}/hub.db")
    with store.transaction() as tx:
        tx.upsert_entity(Customer("c-1", name="Acme", email="ap@acme.test"), "stripe")
        tx.link("c-1", "stripe", "customer", "cus_1")
        tx.link("c-1", "quickbooks", "customer", "58")
    store.dispose()
    code, output = run(config_file, "export", "--entity", "customer", "--json")
    data = json.loads(output)
    assert code == 0 and data["entity"] == "customer"
    (record,) = data["records"]
    assert record["id"] == "c-1" and record["data"]["name"] == "Acme"
    assert record["links"] == {"quickbooks": ["58"], "stripe": ["cus_1"]}


def test_export_of_an_unknown_entity_is_a_usage_error(config_file: Path) -> None:
    code, output = run(config_file, "export", "--entity", "widgets")
    assert code == 2 and "widgets" in output
