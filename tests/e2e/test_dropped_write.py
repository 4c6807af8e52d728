"""No gap is hidden (issue 21, item 4): a write a person drops stays in the diff's sight.

Through the four emulators and the real SDKs, on SQLite and on PostgreSQL: a new Stripe invoice
reaches Stripe and QuickBooks, its Xero write goes dead (a dead letter: ``missing``, held, open).
``hub outbox drop ID --reason TEXT`` gives up on it; before, the next ``hub diff`` said nothing
(missing 0, totals 0) although Xero lacks the invoice. Now it is ``missing`` in Xero,
acknowledged, naming who dropped it, when and why (the audit log's entry), and
``hub outbox retry ID`` followed by a pass that lands it resolves the finding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hub import cli
from state.audit import AuditFilter
from state.records import OutboxItem
from state.store import StateStore
from sync.audit import list_actions
from tests.e2e.conftest import Company, start_company

REASON = "customer disputes it; our bookkeeper enters it in Xero by hand"


@pytest.fixture(params=["sqlite", "postgres"])
def company(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Company]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_schema_url")
        schema = StateStore(url)
        schema.init()  # the hub reads stored credentials as it is built
        schema.dispose()
    c = start_company(tmp_path, customers=6, invoices=6, state_url=url)
    yield c
    c.hub.close()
    c.emus.stop()


def dead_xero_write(company: Company, canonical: str) -> OutboxItem:
    """The Xero write of ``canonical`` refused for good: a dead letter waiting for a person."""
    with company.hub.store.transaction() as tx:
        (item,) = [i for i in tx.list_outbox("pending", limit=10_000)
                   if i.canonical_id == canonical and i.target == "xero"]
        tx.dead_outbox(item.id, "400 ValidationException: the account code is archived")
    return item


def _hub(company: Company, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(company.config_path), *args])


def _diff(company: Company) -> tuple[int, dict[str, Any]]:
    done = _hub(company, "diff", "--entity", "invoice", "--json")
    return done.exit_code, json.loads(done.stdout)


def new_invoice(company: Company) -> str:
    """A finalized Stripe invoice of 1,001.00, made through the official SDK; its hub id."""
    api: Any = company.hub.connectors["stripe"].api  # type: ignore[attr-defined]
    customer = sorted(company.stripe.table("customer").values(), key=lambda c: c["id"])[0]
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer["id"], "collection_method": "send_invoice", "days_until_due": 30}))
    api.call(lambda c: c.v1.invoice_items.create(params={
        "customer": customer["id"], "invoice": invoice.id, "amount": 100100,
        "currency": customer.get("currency") or "usd"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    assert company.hub.engine.sync(systems=["stripe"]).errors == []  # read it in; pushes queued
    with company.hub.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "invoice", invoice.id)
    assert canonical
    return canonical


def _linked(company: Company, canonical: str) -> dict[str, bool]:
    with company.hub.store.transaction() as tx:
        return {s: tx.link_for(canonical, s, "invoice") is not None for s in ("stripe", "quickbooks", "xero")}


def _about(report: dict[str, Any], canonical: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["canonical_id"] == canonical]


def test_a_dropped_write_stays_missing_acknowledged_until_a_retry_lands(company: Company) -> None:
    assert _hub(company, "sync").exit_code == 0
    canonical = new_invoice(company)
    item = dead_xero_write(company, canonical)
    assert _hub(company, "sync").exit_code == 0  # pushes the rest; the dead letter stays
    assert "1 dead letters (hub outbox list)" in json.loads(_hub(company, "status", "--json").stdout)["attention"]
    assert _linked(company, canonical) == {"stripe": True, "quickbooks": True, "xero": False}

    code, report = _diff(company)
    (held,) = _about(report, canonical)
    assert code == 1 and (held["kind"], held["system"], held["status"]) == ("missing", "xero", "open")
    assert "account code is archived" in held["detail"]

    # A drop says why: without a reason (or a blank one) it is refused and nothing changes.
    for no_reason in ([], ["--reason", "  "]):
        refused = _hub(company, "outbox", "drop", str(item.id), *no_reason)
        assert refused.exit_code == 2 and "reason" in refused.stderr and "Traceback" not in refused.output
    unknown = _hub(company, "outbox", "drop", "999999", "--reason", "  ")  # the item is the first answer
    assert unknown.exit_code == 2 and "999999" in unknown.stderr and "reason" not in unknown.stderr, unknown.stderr
    with company.hub.store.transaction() as tx:
        assert [i.status for i in tx.list_outbox("dead")] == ["dead"]
    dropped = _hub(company, "outbox", "drop", str(item.id), "--reason", REASON)
    assert dropped.exit_code == 0, dropped.output
    assert _hub(company, "sync").exit_code == 0

    # The gap is still in sight: missing in Xero, acknowledged (so it fails neither diff nor
    # status), with who dropped it and why; the dead letter's finding is gone.
    code, report = _diff(company)
    (gap,) = _about(report, canonical)
    assert code == 0 and report["summary"]["missing"] == 1 and report["summary"]["totals"] == 0
    assert (gap["kind"], gap["system"], gap["status"]) == ("missing", "xero", "acknowledged")
    said = " ".join(gap["detail"].split())
    assert "cli:" in said and REASON in said and f"hub outbox retry {item.id}" in said, said
    assert gap["fields"]["reason"] == {"xero": REASON} and gap["fields"]["dropped_by"]["xero"].startswith("cli:")
    # its money is the gap: the finding carries the invoice's amount, and the day's totals count it
    # as explained by this finding (so the day is not reported twice)
    assert gap["about"]["amount"] == {"minor": 100100, "currency": "USD"} and gap["about"]["amount_text"] == "1,001.00 USD"
    with company.hub.store.transaction() as tx:
        assert tx.get_finding(held["id"]).status == "resolved"
        (entry,) = list_actions(tx, AuditFilter(action="outbox.drop", target_id=str(item.id)))
        assert entry.reason == REASON and entry.canonical_id == canonical
        assert (entry.before, entry.after) == ({"status": "dead"}, {"status": "dropped"})
    status = json.loads(_hub(company, "status", "--json").stdout)
    assert not [a for a in status["attention"] if "finding" in a], status["attention"]

    # Seen again, it stays one acknowledged finding.
    code, again = _diff(company)
    assert code == 0 and [f["id"] for f in _about(again, canonical)] == [gap["id"]]

    # Retried, and the write lands: the next diff resolves it.
    assert _hub(company, "outbox", "retry", str(item.id), "--reason", "the account code is fixed").exit_code == 0
    with company.hub.store.transaction() as tx:
        (retried,) = list_actions(tx, AuditFilter(action="outbox.retry", target_id=str(item.id)))
        assert retried.actor.startswith("cli:") and retried.reason == "the account code is fixed"
        assert (retried.before, retried.after) == ({"status": "dropped"}, {"status": "pending"})
    assert _hub(company, "sync").exit_code == 0
    assert _linked(company, canonical)["xero"]
    code, report = _diff(company)
    assert code == 0 and _about(report, canonical) == [] and report["summary"]["missing"] == 0
    with company.hub.store.transaction() as tx:
        assert tx.get_finding(gap["id"]).status == "resolved"


def test_a_dropped_update_is_stale_at_once_acknowledged_with_who_and_why(company: Company) -> None:
    assert _hub(company, "sync").exit_code == 0
    api: Any = company.hub.connectors["stripe"].api  # type: ignore[attr-defined]
    customer = sorted(company.stripe.table("customer").values(), key=lambda c: c["id"])[1]
    email = "accounts-" + customer["email"]
    api.call(lambda c: c.v1.customers.update(customer["id"], {"email": email}))
    assert company.hub.engine.sync(systems=["stripe"]).errors == []
    with company.hub.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "customer", customer["id"])
        (item,) = [i for i in tx.list_outbox("pending", limit=10_000)
                   if i.canonical_id == canonical and i.target == "xero"]
    assert _hub(company, "outbox", "drop", str(item.id), "--reason", "Xero keeps the old address").exit_code == 0
    assert _hub(company, "sync").exit_code == 0
    # within stale_sla: before, a write "on its way" and nothing reported; now the gap, at once
    done = _hub(company, "diff", "--entity", "customer", "--json")
    (stale,) = [f for f in json.loads(done.stdout)["findings"] if f["canonical_id"] == canonical]
    assert done.exit_code == 0 and (stale["kind"], stale["system"], stale["status"]) == ("stale", "xero", "acknowledged")
    assert stale["fields"]["email"]["hub"] == email and stale["fields"]["reason"] == {"xero": "Xero keeps the old address"}
    assert "Xero keeps the old address" in " ".join(stale["detail"].split())
