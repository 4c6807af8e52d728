"""Listing commands for terminals and logs (issue 21, item 5): ``--format table|json|csv`` on each
(``--json`` still its alias), tables that fit 80 columns without cutting a number, CSV that a
spreadsheet reads with money as an exact decimal and its currency."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub import cli
from mapping.model import Customer, Invoice
from mapping.money import Money
from state.store import StateStore
from sync.usage import parse_usage, store_usage

LONG_ERROR = ("400 ValidationException: the account code 200 is archived in this organisation and cannot be "
              "used for new invoices; choose another sales account in the Xero mapping and retry the write")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A hub with records, links, an outbox (one of id 1,001), a finding and usage — no vendor called."""
    path = tmp_path / "hub.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/hub.db"\n\n'
                    '[connections.stripe]\nsystem = "stripe"\napi_key = "sk_test_x"\n')
    assert _hub(path, "init").exit_code == 0
    store = StateStore(f"sqlite:///{tmp_path}/hub.db")
    with store.transaction() as tx:
        tx.upsert_entity(Customer("c-1", name="Acme Retail Incorporated of Greater Springfield and Shelbyville",
                                  email="ap@acme.test"), "stripe")
        tx.upsert_entity(Invoice("i-1", customer_id="c-1", number="INV-0031", currency="USD",
                                 issued_at=datetime(2026, 11, 4, tzinfo=UTC), total=Money(100100, "USD")), "stripe")
        tx.link("i-1", "stripe", "invoice", "in_1Emu000000002f")
        tx.link("i-1", "quickbooks", "invoice", "00000031-0002")
        for n in range(1, 1002):  # the last one is outbox item 1,001
            tx.enqueue("i-1", "invoice", "xero", "upsert", f"key-{n}", "h")
        last = tx.list_outbox("pending", limit=2000)[-1]
        tx.dead_outbox(last.id, LONG_ERROR)
        tx.upsert_finding(fingerprint="fp-1", kind="missing", entity="invoice", system="xero", canonical_id="i-1",
                          external_ids=[], fields={}, detail=LONG_ERROR, run_id=None)
    store_usage(store, [parse_usage({"event_id": "use-1", "event_name": "api_calls", "customer": "cus_1",
                                     "value": 1001, "timestamp": "2026-11-04T10:00:00Z"})])
    store.dispose()
    assert _hub(path, "users", "add", "alice", "--role", "operator").exit_code == 0
    assert _hub(path, "outbox", "drop", "1", "--reason", "entered in Xero by hand on 4 November, "
                "with the customer's purchase order number that the hub does not carry").exit_code == 0
    return path


def _hub(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env={"COLUMNS": "80"})


LISTINGS = [("status",), ("export", "--entity", "invoice"), ("outbox", "list"), ("drift", "list"),
            ("usage", "totals"), ("review",), ("users", "list"), ("audit", "list")]


@pytest.mark.parametrize("command", LISTINGS, ids=" ".join)
def test_every_listing_prints_json_csv_and_an_80_column_table(config: Path, command: tuple[str, ...]) -> None:
    as_json = _hub(config, *command, "--format", "json")
    alias = _hub(config, *command, "--json")
    assert as_json.exit_code == alias.exit_code and as_json.exit_code in (0, 1), as_json.output
    assert json.loads(as_json.stdout) == json.loads(alias.stdout)  # --json stays an alias scripts use
    done = _hub(config, *command, "--format", "csv")
    assert done.exit_code in (0, 1), done.output
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows and rows[0] and all(len(row) == len(rows[0]) for row in rows if row), rows[:3]
    table = _hub(config, *command, "--format", "table")
    assert table.exit_code in (0, 1), table.output
    too_long = [line for line in table.stdout.splitlines() if len(line) > 80]
    assert too_long == [], too_long


def test_numbers_and_money_are_never_cut_and_text_wraps_in_its_column(config: Path) -> None:
    outbox = _hub(config, "outbox", "list", "--status", "dead").stdout
    assert "1,001" in outbox and "…" not in outbox, outbox
    # the long error wraps inside its column: every word is there, and on more than one line
    lines = outbox.splitlines()
    start = next(line for line in lines if "last error" in line).index("last error")  # the column's left edge
    assert LONG_ERROR in " ".join(line[start:].strip() for line in lines[3:]), outbox
    assert len([line for line in outbox.splitlines() if line.strip()]) > 4
    export = _hub(config, "export", "--entity", "invoice").stdout
    assert "1,001.00 USD" in export and "INV-0031" in export and "…" not in export
    usage = _hub(config, "usage", "totals").stdout
    assert "1,001" in usage, usage
    findings = _hub(config, "drift", "list").stdout
    assert "1,001.00 USD" in findings and "INV-0031" in findings  # the finding's about: document and amount


def test_csv_money_is_an_exact_decimal_with_its_currency(config: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_hub(config, "export", "--entity", "invoice", "--format", "csv").stdout)))
    assert [(r["id"], r["name / number"], r["date"], r["amount"], r["amount_currency"]) for r in rows] == [
        ("i-1", "INV-0031", "2026-11-04", "1001.00", "USD")]
    assert "quickbooks: 00000031-0002" in rows[0]["links"]
    outbox = list(csv.DictReader(io.StringIO(_hub(config, "outbox", "list", "--format", "csv").stdout)))
    dead = [r for r in outbox if r["status"] == "dead"]
    assert [(r["id"], r["target"], r["record"], r["last_error"]) for r in dead] == [("1001", "xero", "i-1", LONG_ERROR)]


def test_the_findings_csv_has_the_amount_as_an_exact_decimal_and_its_currency(config: Path) -> None:
    (row,) = csv.DictReader(io.StringIO(_hub(config, "drift", "list", "--format", "csv").stdout))
    assert (row["document"], row["amount"], row["amount_decimal"], row["currency"]) == (
        "INV-0031", "1,001.00 USD", "1001.00", "USD")


def test_json_and_a_different_format_together_are_a_usage_error(config: Path) -> None:
    done = _hub(config, "status", "--json", "--format", "csv")
    assert done.exit_code == 2 and "two formats" in done.output


def test_a_sync_summary_fits_80_columns_and_keeps_its_counts_whole() -> None:
    from rich.console import Console

    from sync.output_formats import print_table
    from sync.summary import SyncSummary
    from sync.terminal import summary_listing

    summary = SyncSummary()
    for connection in ("quickbooks", "salesforce", "stripe", "xero"):
        stats = summary.stats(connection, "credit_note")
        stats.read, stats.added, stats.changed, stats.linked, stats.written, stats.held = 16_600, 1_001, 12, 1_001, 16_600, 3
    console = Console(width=80, force_terminal=False)
    with console.capture() as captured:
        print_table(summary_listing(summary, "Sync"), console)
    text = captured.get()
    assert [line for line in text.splitlines() if len(line) > 80] == []
    assert "16,600" in text and "…" not in text and "added 1,001" in " ".join(text.split())
