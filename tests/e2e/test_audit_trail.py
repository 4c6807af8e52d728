"""The audit trail from the command line, on a real company (the emulators): `hub drift ack
--comment` and `hub resync --finding --reason` each leave one entry naming the person, what changed
and why; a dry run leaves none; `hub audit list` and `export` show them, and the record's
timeline holds the resync."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from hub import cli
from sync.audit import audit_for_record, cli_actor
from tests.e2e.test_drift import ENTITIES, by_kind, clean_sync, clocked_company, plant_everything


def test_ack_and_resync_on_the_command_line_are_audited_and_exported(tmp_path: Path) -> None:
    with clocked_company(tmp_path) as (company, clock):
        clean_sync(company)
        plant_everything(company, clock)
        found = by_kind(company.hub.differ.run(ENTITIES).findings)
        runner = CliRunner()
        config = ["--config", str(company.config_path)]
        mismatch, stale = found[("mismatch", "invoice", "quickbooks")], found[("stale", "customer", "xero")]

        acked = runner.invoke(cli, [*config, "drift", "ack", mismatch["id"][:12], "--comment",
                                    "edited in QuickBooks on purpose: credit agreed by phone"])
        assert acked.exit_code == 0 and "acknowledged" in acked.output, acked.output
        dry = runner.invoke(cli, [*config, "resync", "--finding", stale["id"], "--dry-run", "--reason", "look"])
        assert dry.exit_code == 0, dry.output
        done = runner.invoke(cli, [*config, "resync", "--finding", stale["id"], "--reason", "archived by mistake"])
        assert done.exit_code == 0, done.output

        with company.hub.store.transaction() as tx:
            entries = tx.list_audit()
            timeline = audit_for_record(tx, stale["canonical_id"])
        assert [(e.action, e.target_id) for e in entries] == [("resync.finding", stale["id"]),
                                                              ("finding.ack", mismatch["id"])]
        resynced, ack = entries
        assert ack.actor == resynced.actor == cli_actor()
        assert (ack.before, ack.after) == ({"status": "open"}, {"status": "acknowledged"})
        assert ack.reason == "edited in QuickBooks on purpose: credit agreed by phone"
        assert ack.canonical_id == mismatch["canonical_id"]
        # (the plant dropped the stale email's pushes: that stale finding starts acknowledged,
        # sync/diff_dropped.py)
        assert resynced.reason == "archived by mistake" and resynced.before == {"status": "acknowledged"}
        assert resynced.after["status"] == "resolved" and resynced.after["totals"]["written"] == 1
        assert [e.action for e in timeline] == ["resync.finding"]

        listed = runner.invoke(cli, [*config, "audit", "list", "--action", "finding", "--format", "json"])
        assert listed.exit_code == 0, listed.output
        assert [e["action"] for e in json.loads(listed.output)["entries"]] == ["finding.ack"]
        table = runner.invoke(cli, [*config, "audit", "list"])
        assert table.exit_code == 0 and "archived by mistake" in table.output
        out = tmp_path / "audit.csv"
        exported = runner.invoke(cli, [*config, "audit", "export", "--format", "csv", "-o", str(out),
                                       "--actor", cli_actor().split(":", 1)[1]])
        assert exported.exit_code == 0 and "wrote 2 audit entries" in exported.output, exported.output
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [r["action"] for r in rows] == ["resync.finding", "finding.ack"]
        assert json.loads(rows[1]["before"]) == {"status": "open"}
        bad = runner.invoke(cli, [*config, "audit", "list", "--since", "yesterday"])
        assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output and "Traceback" not in bad.output
