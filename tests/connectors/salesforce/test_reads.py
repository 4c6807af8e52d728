"""Reads: full and incremental SOQL passes, the (SystemModstamp, Id) cursor, deletions, deals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from mapping.model import Customer, Deal
from tests.connectors.salesforce.conftest import START, Built, SfEnv, drain, query_calls


def _seed_accounts(sf: SfEnv, count: int) -> list[str]:
    out = sf.emulator.seed_records({"Account": [{"Name": f"Account {i:05d}"} for i in range(count)]})
    return list(out["ids"]["Account"])


def test_5000_accounts_take_three_query_calls_then_seven_changes_come_back_exactly(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    ids = _seed_accounts(sf, 5000)
    connector = make_connector().connector

    records, cursor = drain(connector.fetch_changes("customer", None))

    assert sorted(r.external_id for r in records) == sorted(ids)
    assert query_calls(sf.emulator) == 3  # 2,000 + 2,000 + 1,000
    assert sf.emulator.stats.calls["GET query/{locator}"] == 2
    assert cursor is not None

    # A transaction that committed late: its SystemModstamp equals the cursor's timestamp.
    late = sf.emulator.insert("Account", {"Name": "Late commit", "SystemModstamp": START.isoformat()})
    sf.emulator.clock.advance(600)
    changed = ids[10:16]
    for record_id in changed:
        sf.emulator.update("Account", record_id, {"Phone": "+44 20 7946 0000"})

    again, next_cursor = drain(connector.fetch_changes("customer", cursor))

    assert sorted(r.external_id for r in again) == sorted([*changed, late])
    assert not any(r.deleted for r in again)
    assert next_cursor is not None and next_cursor != cursor
    # A third pass with nothing changed returns nothing.
    third, _ = drain(connector.fetch_changes("customer", next_cursor))
    assert third == []


def test_deleted_account_is_surfaced_as_a_deletion_on_the_next_pass(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    keep, victim = _seed_accounts(sf, 2)
    conn = make_connector().connector
    _, cursor = drain(conn.fetch_changes("customer", None))
    sf.emulator.clock.advance(120)
    sf.emulator.delete("Account", victim)

    records, _ = drain(conn.fetch_changes("customer", cursor))

    assert [(r.external_id, r.deleted) for r in records] == [(victim, True)]
    assert sf.emulator.stats.calls["GET queryAll"] == 1  # deletions come from queryAll
    assert keep not in [r.external_id for r in records]


def test_cursor_older_than_the_recycle_bin_falls_back_to_a_full_read(
        sf: SfEnv, make_connector: Callable[..., Built]) -> None:
    ids = _seed_accounts(sf, 3)
    conn = make_connector().connector
    _, cursor = drain(conn.fetch_changes("customer", None))
    sf.emulator.clock.advance(timedelta(days=16).total_seconds())

    records, _ = drain(conn.fetch_changes("customer", cursor))

    assert sorted(r.external_id for r in records) == sorted(ids)
    assert sf.emulator.stats.calls["GET queryAll"] == 0


def test_closed_won_opportunity_maps_to_a_won_deal_with_exact_lines(
        sf: SfEnv, make_connector: Callable[..., Built], sdk: object) -> None:
    out = sf.emulator.seed_records({
        "Account": [{"ref": "acme", "Name": "Acme"}],
        "Contact": [{"LastName": "Doe", "Email": "billing@acme.test", "AccountId": "@acme"}],
        "Product2": [{"ref": "seat", "Name": "Seat", "IsActive": True}],
        "PricebookEntry": [{"ref": "seat_usd", "Product2Id": "@seat", "UnitPrice": "19.99",
                            "IsActive": True, "Billing_Interval__c": "month"}],
        "Opportunity": [{"ref": "deal", "Name": "Acme seats", "AccountId": "@acme",
                         "StageName": "Negotiation", "CloseDate": "2026-11-30",
                         "line_items": [{"PricebookEntryId": "@seat_usd", "Quantity": 3}]}],
    })
    conn = make_connector().connector
    _, cursor = drain(conn.fetch_changes("deal", None))
    sf.emulator.clock.advance(60)
    sdk.Opportunity.update(out["refs"]["deal"], {"StageName": "Closed Won"})  # type: ignore[attr-defined]

    (record,), _ = drain(conn.fetch_changes("deal", cursor))
    refs = FakeRefs()
    deal = conn.to_canonical(record, refs)

    assert isinstance(deal, Deal)
    assert deal.won and deal.stage == "Closed Won"
    assert deal.amount.minor == 5997 and deal.amount.currency == "USD"
    (line,) = deal.lines
    assert line.unit_amount.minor == 1999 and str(line.quantity) == "3"
    assert line.recurring_interval == "month"
    assert deal.customer_id == refs.canonical_id("customer", out["refs"]["acme"])
    customer_records, _ = drain(conn.fetch_all("customer"))
    customer = conn.to_canonical(customer_records[0], refs)
    assert isinstance(customer, Customer)
    assert customer.email == "billing@acme.test"  # from the primary contact


class FakeRefs:
    """A RefResolver with deterministic canonical ids."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], str] = {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"{entity_type}:{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return self.links.get((entity_type, canonical_id))
