"""Usage events -> Stripe meter events: each event id counted once, also across re-imports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from hub import cli
from tests.conftest import FrozenClock
from tests.e2e.conftest import Company


def test_usage_import_sends_each_event_once_and_keeps_totals(company: Company, tmp_path: Path) -> None:
    company.hub.engine.sync()
    company.stripe.create_meter({"display_name": "API calls", "event_name": "api_calls",
                                 "default_aggregation": {"formula": "sum"}})
    customers = sorted(c["id"] for c in company.stripe.table("customer").values())[:2]
    with company.hub.store.transaction() as tx:
        hub_first = tx.canonical_for("stripe", "customer", customers[0])
    assert hub_first is not None
    lines = [{"event_id": f"u-{i}", "event_name": "api_calls", "customer": customers[i % 2] if i % 3 else hub_first,
              "value": str(10 + i), "timestamp": f"2026-10-{1 + i:02d}T12:00:00+00:00"} for i in range(6)]
    lines.append({"event_id": "u-nov", "event_name": "api_calls", "customer": customers[1], "value": "7",
                  "timestamp": "2026-11-02T08:00:00+00:00"})
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(company.config_path), "usage", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "stored 7 new" in first.output and "sent 7" in first.output
    again = runner.invoke(cli, ["--config", str(company.config_path), "usage", "import", str(path)])
    assert again.exit_code == 0 and "stored 0 new usage events, 7 already known" in again.output

    meter_events = company.stripe.meter_events
    assert sorted(meter_events) == sorted(line["event_id"] for line in lines)  # identifier = event id
    assert sum(Decimal(e["payload"]["value"]) for e in meter_events.values()) == sum(
        Decimal(line["value"]) for line in lines)

    totals = runner.invoke(cli, ["--config", str(company.config_path), "usage", "totals", "--json"])
    rows = json.loads(totals.output)
    october = {(r["customer"], r["period"]): (Decimal(r["value"]), r["events"]) for r in rows}
    assert october[(customers[1], "2026-11")] == (Decimal(7), 1)
    assert sum(v[1] for v in october.values()) == 7


def test_a_bad_usage_line_is_named_and_nothing_is_lost(company: Company, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text("event_id,event_name,customer,value\nu-1,api_calls,cus_x,5\nu-2,api_calls,cus_x,-3\n")
    result = CliRunner().invoke(cli, ["--config", str(company.config_path), "usage", "import", str(path)])
    assert result.exit_code == 2
    assert "event 2: value: must be a non-negative number" in result.output
    with company.hub.store.transaction() as tx:
        assert tx.count_inbox() == 0  # the file is refused whole: fix it and import again


def test_a_usage_event_refused_for_now_is_sent_again_later_and_counted_once(company: Company) -> None:
    from connectors.emulation import Faults
    from sync.usage import USAGE, send_pending

    company.hub.engine.sync()
    company.stripe.create_meter({"display_name": "API calls", "event_name": "api_calls",
                                 "default_aggregation": {"formula": "sum"}})
    customer = sorted(c["id"] for c in company.stripe.table("customer").values())[0]
    clock = FrozenClock(datetime.now(UTC))
    company.hub.store.clock = clock
    with company.hub.store.transaction() as tx:
        tx.add_inbox(USAGE, "u-503", {"event_name": "api_calls", "customer": customer, "value": "5"})
    company.stripe.faults = Faults(error_rate=1.0, path_prefix="/v1/billing/meter_events")  # Stripe is down
    sent, errors = send_pending(company.hub)
    assert sent == 0 and len(errors) == 1 and not company.stripe.meter_events
    company.stripe.faults = Faults()  # Stripe is back
    assert send_pending(company.hub) == (0, [])  # not before its wait is over
    clock.advance(seconds=31)
    assert send_pending(company.hub) == (1, [])
    assert list(company.stripe.meter_events) == ["u-503"]
    with company.hub.store.transaction() as tx:
        assert tx.count_inbox("processed") == 1 and tx.count_inbox("failed") == 0
