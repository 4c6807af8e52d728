"""``hub rotate-key`` and ``hub forget-customer``, invoked as click commands (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mapping.model import Address, Customer, Invoice, InvoiceLine, Money, Payment, Refund, TaxId
from state import schema
from state.audit import AuditFilter
from state.crypto import Cipher, generate_key
from state.errors import CredentialsError
from state.store import StateStore
from sync.admin_commands import forget_customer_command, rotate_key_command
from sync.audit import cli_actor
from sync.privacy import ERASED
from tests.conftest import TEST_KEY, FrozenClock

CUSTOMER = "9b0e2d6c-0000-4000-8000-00000000c001"
PERSONAL = ("Jane Q. Roe", "jane.roe@example.org", "+44 20 7946 0958", "221B Baker Street", "NW1 6XE",
            "GB123456789", "roe-consulting.example", "Roe Consulting Ltd", "jane.roe@old-mail.example")


def write_config(path: Path, url: str, key: str) -> Path:
    path.write_text(f'[state]\nurl = "{url}"\nencryption_key = "{key}"\n', encoding="utf-8")
    return path


# --------------------------------------------------------------------------- rotate-key


def test_rotate_key_moves_every_credential_to_the_newest_key(store: StateStore, tmp_path: Path,
                                                              clock: FrozenClock) -> None:
    old, new = generate_key(), generate_key()
    tokens = {"quickbooks": {"access_token": "AT-old-1", "refresh_token": "RT-old-1"},
              "xero": {"access_token": "xa-2", "refresh_token": "xr-2"},
              "salesforce": {"access_token": "00D!sess", "refresh_token": "sf-r"}}
    under_old = StateStore(store.url, cipher=Cipher(old), clock=clock)
    with under_old.transaction() as tx:
        for name, data in tokens.items():
            tx.save_credentials(name, data)
    with under_old.engine.connect() as conn:
        before = dict(conn.execute(select(schema.credentials.c.connection, schema.credentials.c.ciphertext)).all())
    under_old.dispose()

    runner = CliRunner()
    # Only the new key configured: refused, nothing changed.
    refused = runner.invoke(rotate_key_command, ["--config", str(write_config(tmp_path / "a.toml", store.url, new))])
    assert refused.exit_code == 2 and "none of the configured keys" in refused.output
    # $HUB_CONFIG works as well as --config.
    config = write_config(tmp_path / "hub.toml", store.url, f"{new},{old}")
    result = runner.invoke(rotate_key_command, [], env={"HUB_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 credential(s)" in result.output and "can be removed" in result.output
    with store.transaction() as tx:
        (rotated,) = tx.list_audit(AuditFilter(action="key.rotate"))
    assert rotated.actor == cli_actor() and rotated.after == {"rotated": 3}

    only_new = StateStore(store.url, cipher=Cipher(new), clock=clock)
    only_old = StateStore(store.url, cipher=Cipher(old), clock=clock)
    try:
        with only_new.transaction() as tx:
            assert {name: tx.load_credentials(name) for name in tokens} == tokens
        with only_old.transaction() as tx, pytest.raises(CredentialsError):
            tx.load_credentials("quickbooks")
        with only_new.engine.connect() as conn:
            after = dict(conn.execute(select(schema.credentials.c.connection, schema.credentials.c.ciphertext)).all())
    finally:
        only_new.dispose()
        only_old.dispose()
    assert set(after) == set(before) and all(after[n] != before[n] for n in before)
    for ciphertext in after.values():
        assert not any(secret in ciphertext for data in tokens.values() for secret in data.values())


def test_rotate_key_without_a_key_or_config_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(rotate_key_command, ["--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "not found" in missing.output
    no_key = tmp_path / "k.toml"
    no_key.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/h.db"\n', encoding="utf-8")
    result = runner.invoke(rotate_key_command, ["--config", str(no_key)])
    assert result.exit_code == 2 and "encryption_key is not set" in result.output


# --------------------------------------------------------------------------- forget-customer


def _seed(store: StateStore) -> dict[str, Any]:
    at = datetime(2026, 10, 1, tzinfo=UTC)
    address = Address(line1="221B Baker Street", city="London", postal_code="NW1 6XE", country="GB")
    first = Customer(id=CUSTOMER, name="Jane Q. Roe", email="jane.roe@old-mail.example", phone="+44 20 7946 0958",
                     address=address, shipping_address=address, tax_ids=(TaxId("gb_vat", "GB123456789"),),
                     currency="GBP", domain="roe-consulting.example", extra={"CompanyName": "Roe Consulting Ltd",
                                                                               "balance": "120.00"})
    changed = Customer(id=CUSTOMER, name="Jane Q. Roe", email="jane.roe@example.org", phone="+44 20 7946 0958",
                       address=address, shipping_address=address, tax_ids=(TaxId("gb_vat", "GB123456789"),),
                       currency="GBP", domain="roe-consulting.example",
                       extra={"CompanyName": "Roe Consulting Ltd", "balance": "120.00"})
    invoice = Invoice(id="inv-1", customer_id=CUSTOMER, number="INV-0042", status="paid", currency="GBP",
                      issued_at=at, lines=(InvoiceLine("Consulting", Decimal(2),
                                                       Money(5000, "GBP"), Money(10000, "GBP")),),
                      subtotal=Money(10000, "GBP"), tax=Money(2000, "GBP"), total=Money(12000, "GBP"),
                      amount_paid=Money(12000, "GBP"), amount_due=Money(0, "GBP"))
    payment = Payment(id="pay-1", customer_id=CUSTOMER, invoice_id="inv-1", amount=Money(12000, "GBP"), paid_at=at)
    refund = Refund(id="re-1", payment_id="pay-1", invoice_id="inv-1", customer_id=CUSTOMER,
                    amount=Money(2000, "GBP"), refunded_at=at)
    with store.transaction() as tx:
        tx.upsert_entity(first, "stripe")
        tx.upsert_entity(changed, "stripe")
        for entity in (invoice, payment, refund):
            tx.upsert_entity(entity, "stripe")
        tx.link(CUSTOMER, "stripe", "customer", "cus_roe1")
        tx.link(CUSTOMER, "quickbooks", "customer", "58")
        tx.link(CUSTOMER, "xero", "customer", "c0ffee00-0000-4000-8000-000000000058")
        tx.link("inv-1", "stripe", "invoice", "in_roe1")
        tx.upsert_finding(fingerprint="fp-roe", kind="mismatch", entity="customer", system="xero",
                          canonical_id=CUSTOMER, external_ids=["c0ffee00-0000-4000-8000-000000000058"],
                          fields={"email": {"hub": "jane.roe@example.org", "xero": "jane.roe@old-mail.example"},
                                  "currency": {"hub": "GBP", "xero": "USD"}},
                          detail="xero customer Jane Q. Roe disagrees with the hub on email, currency", run_id=None)
        tx.upsert_finding(fingerprint="fp-other", kind="orphan", entity="invoice", system="xero",
                          canonical_id=None, external_ids=["x-9"], fields={}, detail="xero invoice x-9 is an orphan",
                          run_id=None)
        tx.add_inbox("stripe", "evt_roe", {"id": "evt_roe", "object": "event", "type": "customer.updated",
                                           "data": {"object": {"id": "cus_roe1", "name": "Jane Q. Roe",
                                                               "email": "jane.roe@example.org"}}},
                     "customer.updated")
        tx.enqueue(CUSTOMER, "customer", "quickbooks", "upsert", "key-roe", "h")
        item = tx.claim_outbox(10)[0]
        tx.dead_outbox(item.id, "Duplicate Name Exists Error: Jane Q. Roe (6240)")
    with store.transaction() as tx:
        return {e.id: e.data for t_ in ("invoice", "payment", "refund") for e in tx.entities_of(t_)}


def _dump(store: StateStore) -> str:
    """Every row of every hub table, as text."""
    with store.engine.connect() as conn:
        return json.dumps({name: [list(map(str, r)) for r in conn.execute(select(table))]
                           for name, table in schema.metadata.tables.items()}, ensure_ascii=False)


def test_forget_customer_erases_personal_data_and_keeps_the_books(store: StateStore, tmp_path: Path) -> None:
    ledger = _seed(store)
    with store.transaction() as tx:
        outbox_before = tx.outbox_depth()
        links_before = tx.links_of(CUSTOMER)
        assert tx.entities_with_key("customer", "email", "jane.roe@example.org") == [CUSTOMER]
    assert all(value in _dump(store) for value in PERSONAL)
    config = write_config(tmp_path / "hub.toml", store.url, TEST_KEY)

    runner = CliRunner()
    unknown = runner.invoke(forget_customer_command, ["stripe:cus_nobody", "--config", str(config), "--yes"])
    assert unknown.exit_code == 2 and "no hub customer is linked" in unknown.output
    declined = runner.invoke(forget_customer_command, ["stripe:cus_roe1", "--config", str(config)], input="n\n")
    assert declined.exit_code == 1 and "Jane" in _dump(store)
    result = runner.invoke(forget_customer_command, ["stripe:cus_roe1", "--config", str(config), "--yes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["canonical_id"] == CUSTOMER and report["links_kept"] == 3 and not report["already_erased"]
    assert {"name", "email", "phone", "address", "tax_ids", "domain", "extra"} <= set(report["fields"])

    dump = _dump(store)
    leaked = [value for value in PERSONAL if value in dump]
    assert leaked == [], leaked
    with store.transaction() as tx:
        stored = tx.get_entity(CUSTOMER)
        assert stored is not None
        data = stored.data
        assert data["name"] == ERASED and data["email"] is None and data["phone"] is None
        assert data["address"] is None and data["shipping_address"] is None and data["tax_ids"] == []
        assert data["currency"] == "GBP" and data["extra"] == {"balance": "120.00", "erased": True}
        assert tx.links_of(CUSTOMER) == links_before
        assert tx.canonical_for("stripe", "customer", "cus_roe1") == CUSTOMER
        # Never matched again by the email or name it had (nor by the placeholder).
        assert tx.entities_with_key("customer", "email", "jane.roe@example.org") == []
        assert tx.entities_with_key("customer", "name", ERASED) == []
        assert {e.id: e.data for t_ in ("invoice", "payment", "refund") for e in tx.entities_of(t_)} == ledger
        assert tx.outbox_depth() == outbox_before  # nothing queued for any vendor
        history = tx.history_of(CUSTOMER)
        erased = history[-1]
        assert erased["action"] == "erased" and erased["system"] == "privacy"
        assert set(erased["changes"]) == set(report["fields"])
        assert all(pair == [ERASED, None] for pair in erased["changes"].values())
        assert [h["action"] for h in history] == ["added", "changed", "erased"]
        finding = tx.get_finding(tx.list_findings(kind="mismatch")[0].id)
        assert finding.fields["email"] == {"hub": ERASED, "xero": ERASED}
        assert finding.fields["currency"] == {"hub": "GBP", "xero": "USD"}
        assert finding.detail == f"xero customer {ERASED} disagrees with the hub on email, currency"
        assert tx.list_findings(kind="orphan")[0].detail == "xero invoice x-9 is an orphan"
        # who erased it is in the audit log, by field name and count only (that log is never erased)
        (forgot,) = tx.list_audit(AuditFilter(action="customer.forget"))
        assert forgot.actor == cli_actor() and forgot.canonical_id == CUSTOMER
        assert forgot.after["fields"] == report["fields"] and forgot.after["links_kept"] == 3
    # The outbox item keeps its reference, the inbox event its id; both lost the name.
    assert "Duplicate Name Exists Error: [erased] (6240)" in dump and "evt_roe" in dump and "cus_roe1" in dump
    if store.engine.dialect.name == "sqlite":
        # Not in free pages or the write-ahead log either.
        db_file = Path(store.engine.url.database or "")
        raw = b"".join(p.read_bytes() for p in (db_file, Path(f"{db_file}-wal")) if p.exists())
        assert [v for v in PERSONAL if v.encode() in raw] == []

    again = runner.invoke(forget_customer_command, [CUSTOMER, "--config", str(config), "--yes", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["already_erased"] is True
    with store.transaction() as tx:
        assert [h["action"] for h in tx.history_of(CUSTOMER)] == ["added", "changed", "erased"]


def test_forget_customer_refuses_what_is_not_a_customer(store: StateStore, tmp_path: Path) -> None:
    _seed(store)
    config = write_config(tmp_path / "hub.toml", store.url, TEST_KEY)
    runner = CliRunner()
    for ident in ("inv-1", "no-such-id", "stripe:in_roe1"):
        result = runner.invoke(forget_customer_command, [ident, "--config", str(config), "--yes"])
        assert result.exit_code == 2, (ident, result.output)
    with store.transaction() as tx:
        stored = tx.get_entity(CUSTOMER)
        assert stored is not None and stored.data["name"] == "Jane Q. Roe"
