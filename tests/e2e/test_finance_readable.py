"""Findings a finance operator can read (issue 21, item 1), end to end through the emulators and
the real SDKs: an invoice edited in QuickBooks and a customer typed into QuickBooks twice, then
``hub drift show`` and ``hub drift export --format csv|html`` name the customer, the invoice
number people know (not QuickBooks' internal id), amounts as "1,234.50 USD" and the finding id;
the duplicate's records each come with their name, balance, created date and documents."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from hub import cli
from mapping.model import Customer, Invoice
from mapping.money import format_money
from tests.e2e.test_drift import bumped, clean_sync, clocked_company


def test_drift_show_and_the_exports_say_who_what_and_how_much(tmp_path: Path) -> None:
    with clocked_company(tmp_path, customers=6, invoices=8) as (company, _clock):
        clean_sync(company)
        hub, realm = company.hub, company.qbo
        qbo: Any = company.emus.quickbooks.emulator
        invoices = sorted((i for i in realm.table("Invoice").values()
                           if i.get("CurrencyRef", {}).get("value", "USD") == "USD"), key=lambda i: int(i["Id"]))
        edited = invoices[0]
        qbo.edit(realm, "Invoice", edited["Id"], {"Line": bumped(edited["Line"], Decimal("100"))})
        customers = sorted(realm.table("Customer").values(), key=lambda c: int(c["Id"]))
        original = customers[0]
        copy = qbo.save(realm, "Customer", {"DisplayName": original["DisplayName"] + " (2)",
                                            "PrimaryEmailAddr": original["PrimaryEmailAddr"]})
        result = hub.differ.run(["customer", "invoice"])
        mismatch = next(f for f in result.findings if (f["kind"], f["entity"], f["system"]) ==
                        ("mismatch", "invoice", "quickbooks"))
        duplicate = next(f for f in result.findings if f["kind"] == "duplicate")
        with hub.store.transaction() as tx:
            stored_invoice = tx.get_entity(mismatch["canonical_id"])
            assert stored_invoice is not None
            invoice = stored_invoice.entity()
            assert isinstance(invoice, Invoice) and invoice.number
            owner = tx.get_entity(invoice.customer_id)
            assert owner is not None
            customer = owner.entity()
            assert isinstance(customer, Customer)
        assert invoice.number != edited["Id"]
        hub_total = format_money(invoice.total.minor, invoice.total.currency)  # e.g. "99.00 USD"
        qbo_total = format_money(invoice.total.minor + 10_000, invoice.total.currency)

        runner = CliRunner()
        config = ["--config", str(company.config_path)]
        shown = runner.invoke(cli, [*config, "drift", "show", mismatch["id"][:8]], terminal_width=160)
        assert shown.exit_code == 0, shown.output
        words = " ".join(shown.output.split())  # 80 columns: a cell may wrap at its spaces
        for said in (customer.name, invoice.number, hub_total, qbo_total, mismatch["id"],
                     f"hub resync --finding {mismatch['id']}",
                     f"https://app.qbo.intuit.com/app/invoice?txnId={edited['Id']}"):
            assert said in words, said
        assert "minor units" not in words

        dup = runner.invoke(cli, [*config, "drift", "show", duplicate["id"]], terminal_width=200)
        assert dup.exit_code == 0, dup.output
        words = " ".join(dup.output.split())
        for said in (f"{original['Id']} (linked): {original['DisplayName']}",
                     f"{copy['Id']}: {original['DisplayName']} (2)", f"created {original['MetaData']['CreateTime'][:10]}",
                     "documents: none known to the hub", f"--keep {original['Id']}"):
            assert said in words, said
        as_json = json.loads(runner.invoke(cli, [*config, "drift", "show", duplicate["id"], "--json"]).output)
        linked = next(c for c in as_json["about"]["candidates"] if c["linked"])
        assert linked["external_id"] == original["Id"] and linked["balance_text"].endswith(" USD")
        assert linked["documents_count"] >= 1 and all(d["number"] for d in linked["documents"])

        exported = runner.invoke(cli, [*config, "drift", "export", "--format", "csv"])
        assert exported.exit_code == 0, exported.output
        row = next(r for r in csv.DictReader(io.StringIO(exported.output)) if r["id"] == mismatch["id"])
        assert (row["customer"], row["document"], row["amount"]) == (customer.name, invoice.number, hub_total)
        assert row["date"] == invoice.issued_at.date().isoformat() if invoice.issued_at else row["date"] == ""
        assert qbo_total in row["values"] and "hub resync" not in row["detail"]

        out = tmp_path / "drift.html"
        assert runner.invoke(cli, [*config, "drift", "export", "--format", "html", "-o", str(out)]).exit_code == 0
        html = out.read_text()
        row_html = html[html.index(f'data-finding="{mismatch["id"]}"'):]
        row_html = row_html[:row_html.index("</tr>")]
        for said in (customer.name, invoice.number, hub_total, qbo_total, mismatch["id"]):
            assert said in row_html, said
        assert "first seen" in html[:html.index('<table id="money"')]  # the money table names its period
