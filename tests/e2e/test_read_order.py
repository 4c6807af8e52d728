"""First contact whatever order the systems are read in (issue 19): a Xero organisation that
already holds the customers, read before Stripe, gets no second contact for any of them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.e2e.conftest import Company


def test_a_ledger_read_before_the_source_gets_no_duplicate_and_every_link(company: Company) -> None:
    customers = list(company.stripe.table("customer").values())
    xero_emu: Any = company.emus.xero.emulator
    # the bookkeeper's own names (Xero's contact names are unique, so equal names would be
    # refused rather than duplicated); the emails are the customers' own
    created = xero_emu.seed_now({"Contacts": [{"Name": f"{c['name']} (accounts)", "EmailAddress": c["email"]}
                                              for c in customers]})
    existing = {c["EmailAddress"].lower(): c["ContactID"] for c in company.xero.table("Contacts").values()}
    assert len(created["Contacts"]) == len(customers) == len(existing)

    first = company.hub.engine.sync(systems=["xero"])  # the ledger first: nothing to match yet
    assert first.errors == []
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0

    emails = Counter(c["EmailAddress"].lower() for c in company.xero.table("Contacts").values())
    assert emails and max(emails.values()) == 1  # no customer twice
    with company.hub.store.transaction() as tx:
        for customer in customers:
            canonical = tx.canonical_for("stripe", "customer", customer["id"])
            assert canonical is not None
            link = tx.link_for(canonical, "xero", "customer")
            assert link is not None and link.external_id == existing[customer["email"].lower()]
    result = company.hub.differ.run(["customer"])
    assert [f for f in result.findings if f["system"] == "xero"] == []
