"""``hub check`` and ``hub diff`` in every format (issue 21, item 5), against the four emulators
through the real SDKs: JSON and CSV parse, the table fits 80 columns and keeps money whole."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner, Result

from hub import cli
from tests.e2e.conftest import Company
from tests.e2e.test_dropped_write import dead_xero_write, new_invoice


def _hub(company: Company, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(company.config_path), *args], env={"COLUMNS": "80"})


def test_check_and_diff_print_json_csv_and_80_column_tables(company: Company) -> None:
    assert _hub(company, "sync").exit_code == 0
    # a finding to list: a new 1,001.00 invoice whose Xero write went dead
    canonical = new_invoice(company)
    dead_xero_write(company, canonical)
    for command, rows_key, key in ((("check",), "connections", "name"),
                                   (("diff", "--entity", "invoice"), "findings", "id")):
        as_json = _hub(company, *command, "--format", "json")
        alias = _hub(company, *command, "--json")  # (a second call: a vendor's quota left, a run id differ)
        assert as_json.exit_code in (0, 1) and as_json.exit_code == alias.exit_code
        said = [row[key] for row in json.loads(as_json.stdout)[rows_key]]
        assert said and said == [row[key] for row in json.loads(alias.stdout)[rows_key]]
        rows = list(csv.reader(io.StringIO(_hub(company, *command, "--format", "csv").stdout)))
        assert rows and all(len(row) == len(rows[0]) for row in rows)
        table = _hub(company, *command, "--format", "table")
        assert table.exit_code in (0, 1), table.output
        assert [line for line in table.stdout.splitlines() if len(line) > 80] == []
    findings = _hub(company, "diff", "--entity", "invoice").stdout
    assert "1,001.00 USD" in findings and "missing in xero" in findings, findings
    checked = list(csv.DictReader(io.StringIO(_hub(company, "check", "--format", "csv").stdout)))
    assert sorted(r["connection"] for r in checked) == ["quickbooks", "salesforce", "stripe", "xero"]
    assert {r["ok"] for r in checked} == {"ok"}
