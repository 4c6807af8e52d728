"""Peer conformance: Stitch's tap-salesforce (2.8.1, REST API v61.0) reads the Salesforce emulator
completely and sees what billhub wrote there.

The org (``salesforce_org.py``): the e2e company set up by billhub's own flows, in two phases
with the pinned clock moved between them. The tap runs in its own venv with its own ``main``
(``run_tap_salesforce.py``: only the login host is sent to the loopback emulator, whose token
answer names itself as the instance), ``api_type`` REST: the tap's Bulk path is not used, since
the emulator serves no Bulk API (REST reads every stream here, none needs Bulk).

It discovers (global describe, one describe per sObject), every stream is selected with every
field, incremental by its replication key (``SystemModstamp``), and synced through ``queryAll``
with ``SystemModstamp >= start ORDER BY SystemModstamp ASC``. Each stream's records equal the
emulator's (deleted rows included, every field: ids, amounts, dates, references, the compound
address), and billhub's own writes are there as it wrote them: Hub_Id__c markers, invoice
amounts in minor units against the hub's invoices, Account__c / Opportunity__c / Product2Id
relations against the hub's links. A second run from the first run's state reads only what
changed at or after its bookmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mapping.money import Money
from tests.peers.salesforce_org import OrgView, SalesforceOrg, set_up_bare_org, set_up_org
from tests.peers.singer_taps import SingerRun, SingerTap, select
from tests.peers.venvs import PeerVenv

ENTRY = Path(__file__).with_name("run_tap_salesforce.py")
INVOICE = "Billing_Invoice__c"
# Every sObject the emulator models: the tap finds each in the global describe and reads it.
# The access-control objects (connectors/salesforce/emulator/tooling.py) are in every org too.
PERMISSIONS = ("FieldPermissions", "ObjectPermissions", "PermissionSet", "PermissionSetAssignment")
STREAMS = ("Account", "Contact", "Opportunity", "OpportunityLineItem", "Order", "Organization",
           "Pricebook2", "PricebookEntry", "Product2", "User", INVOICE, *PERMISSIONS)
# billhub writes no orders and the company has none; nobody ran `hub setup salesforce` (no grants)
EMPTY = ("Order", *PERMISSIONS)
NUMBER_TYPES = ("currency", "double", "percent")


@pytest.fixture(scope="module")
def salesforce_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceOrg]:
    yield from set_up_org(tmp_path_factory)


@pytest.fixture(scope="module")
def bare_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgView]:
    yield from set_up_bare_org(tmp_path_factory)


def _tap(peers: Callable[[str], PeerVenv], org: OrgView, workdir: Path) -> SingerTap:
    workdir.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "BILLHUB_SALESFORCE_EMULATOR": org.base_url,
           "REQUESTS_CA_BUNDLE": str(org.cert)}
    return SingerTap(peers("tap-salesforce"), ENTRY, env, workdir, catalog_flag="--properties")


def _incremental(catalog: dict[str, Any]) -> dict[str, Any]:
    """Each selected stream replicated by its one valid replication key, as Stitch sets it."""
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                (key,) = entry["metadata"]["valid-replication-keys"]
                entry["metadata"].update({"replication-method": "INCREMENTAL", "replication-key": key})
    return catalog


def _same(kind: str, read: Any, stored: Any) -> bool:
    """The tap's value (singer-transformed: dates as date-times, numbers as JSON floats) against the
    emulator's REST rendering of the same field."""
    if read is None or stored is None:
        return read is None and stored is None
    if kind == "datetime":
        return _instant(read) == _instant(stored)
    if kind == "date":
        moment = _instant(read)
        return moment.time() == datetime.min.time() and moment.date() == date.fromisoformat(stored)
    if kind in NUMBER_TYPES:
        return Decimal(str(read)) == Decimal(str(stored))
    if kind == "address":
        return set(read) <= set(stored) and all(
            _same("double" if k in ("latitude", "longitude") else "string", read[k], stored[k]) for k in stored)
    return bool(read == stored)


def _instant(text: str) -> datetime:
    value = text.replace("Z", "+00:00")
    if value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return datetime.fromisoformat(value).astimezone(UTC)


def _assert_equal_to_the_emulator(run: SingerRun, org: OrgView, streams: tuple[str, ...] = STREAMS) -> dict[str, int]:
    counts = {}
    for sobject in streams:
        obj = org.emulator.schema[sobject]
        stored = org.rendered(sobject)
        read = {rec["Id"]: rec for rec in run.records.get(sobject, [])}
        assert len(read) == len(run.records.get(sobject, [])), f"{sobject}: a record read twice"
        assert set(read) == set(stored), sobject
        for rid, record in read.items():
            assert set(record) == set(obj.fields), (sobject, set(record) ^ set(obj.fields))
            wrong = {name: (record[name], stored[rid][name]) for name, f in obj.fields.items()
                     if not _same(f.type, record[name], stored[rid][name])}
            assert not wrong, (sobject, rid, wrong)
        counts[sobject] = len(read)
    return counts


def _minor(value: Any, currency: str) -> int:
    return Money.from_decimal(Decimal(str(value)), currency).minor


def _assert_billhubs_writes(run: SingerRun, org: SalesforceOrg) -> None:
    records = {s: {r["Id"]: r for r in run.records.get(s, [])} for s in STREAMS}
    for entity, sobject in (("customer", "Account"), ("product", "Product2"), ("price", "PricebookEntry"),
                            ("invoice", INVOICE)):
        linked = org.links(entity)
        assert linked and set(linked) <= set(records[sobject]), entity
        for sf_id, hub_id in linked.items():
            assert records[sobject][sf_id]["Hub_Id__c"] == hub_id, (entity, sf_id)
    for sf_id, hub_id in org.links("invoice").items():
        row, invoice = records[INVOICE][sf_id], org.entity(hub_id)
        currency = invoice["currency"]
        assert row["CurrencyIsoCode"] == currency and row["Invoice_Number__c"] == invoice["number"], sf_id
        assert _minor(row["Amount__c"], currency) == invoice["total"]["minor"], sf_id
        assert _minor(row["Amount_Paid__c"], currency) == invoice["amount_paid"]["minor"], sf_id
        assert row["Account__c"] == org.link_of(invoice["customer_id"], "customer"), sf_id
        if invoice.get("deal_id"):
            assert row["Opportunity__c"] == org.link_of(invoice["deal_id"], "deal"), sf_id
    assert any(row["Opportunity__c"] for row in records[INVOICE].values())  # the won deal's invoices
    for sf_id, hub_id in org.links("price").items():
        entry, price = records["PricebookEntry"][sf_id], org.entity(hub_id)
        unit = price["unit_amount"]
        assert (entry["CurrencyIsoCode"], _minor(entry["UnitPrice"], unit["currency"])) == \
            (unit["currency"], unit["minor"]), sf_id
        assert entry["Product2Id"] == org.link_of(price["product_id"], "product"), sf_id
    # the product billhub's Stripe writer made reached Salesforce as the same hub record
    written = org.canonical("stripe", "product", org.ids["product"])
    (added,) = [p for p in records["Product2"].values() if p["Name"] == "Peer add-on"]
    assert added["Hub_Id__c"] == written and org.link_of(written, "product") == added["Id"]
    deal = next(o for o in records["Opportunity"].values() if o["Name"] == "Peerco Pro")
    lines = [line for line in records["OpportunityLineItem"].values() if line["OpportunityId"] == deal["Id"]]
    assert sorted((line["Quantity"], line["UnitPrice"]) for line in lines) == [(1.0, 500.0), (2.0, 99.0)]
    assert (deal["StageName"], deal["IsWon"], deal["Amount"]) == ("Closed Won", True, 698.0)
    contact = records["Contact"][org.deleted_contact]  # queryAll: a deleted row, marked so
    assert contact["IsDeleted"] is True and contact["Email"] == "billing@peerco.example"
    typed_in = records["Account"][org.addressed_account]
    assert (typed_in["NumberOfEmployees"], typed_in["Industry"]) == (42, "Technology")  # an int field as an int
    address = typed_in["BillingAddress"]
    assert (address["street"], address["city"], address["state"], address["postalCode"], address["country"]) == \
        ("1 Market St\nSuite 5", "San Francisco", "CA", "94105", "US")


def test_tap_salesforce_reads_every_modelled_stream_completely_and_equal_to_the_emulator(
        peers: Callable[[str], PeerVenv], salesforce_org: SalesforceOrg, tmp_path: Path) -> None:
    org = salesforce_org
    tap = _tap(peers, org, tmp_path / "tap-salesforce")
    emu = org.emulator
    emu.received.clear()
    mark = len(emu.stats.requests)
    catalog = tap.discover(org.config())
    streams = {s["tap_stream_id"] for s in catalog["streams"]}
    assert streams == set(STREAMS), sorted(streams)
    assert emu.clock.now() <= datetime.now(UTC)  # the tap's bookmarks end at its wall clock
    run = tap.sync(org.config(), _incremental(select(catalog, streams)))

    counts = _assert_equal_to_the_emulator(run, org)
    print("tap-salesforce records per stream:", counts)
    for sobject in EMPTY:
        assert counts[sobject] == 0 and sobject in run.schemas
    _assert_billhubs_writes(run, org)
    # the compound address arrives as the object the tap's schema for type "address" expects
    assert run.schemas["Account"]["properties"]["BillingAddress"]["type"] == ["null", "object"]
    queries = [r["soql"] for r in emu.received if r["path"].endswith("/queryAll")]
    assert len(queries) == len(STREAMS) and all(
        " WHERE SystemModstamp >= " in q and q.endswith("ORDER BY SystemModstamp ASC") for q in queries), queries

    # A second run from the first one's state: an invoice paid in Stripe reaches Salesforce
    # through billhub; the tap reads only what was stamped at or after each stream's bookmark.
    tap_answers = emu.stats.requests[mark:]
    emu.clock.advance(2)
    paid_row = org.pay_open_invoice()
    state = run.states[-1]
    mark, seen = len(emu.stats.requests), len(emu.received)
    again = tap.sync(org.config(), _incremental(select(catalog, streams)), state)
    bookmark = _instant(state["bookmarks"][INVOICE]["SystemModstamp"])
    assert bookmark == org.phase_two
    expected = {rid for rid, r in org.rendered(INVOICE).items() if _instant(r["SystemModstamp"]) >= bookmark}
    read_again = {r["Id"]: r for r in again.records.get(INVOICE, [])}
    assert paid_row in read_again and set(read_again) == expected
    assert len(expected) < counts[INVOICE]  # a strict subset: the first phase's rows are not read again
    assert read_again[paid_row]["Status__c"] == "Paid" and read_again[paid_row]["Amount_Paid__c"] == \
        read_again[paid_row]["Amount__c"]
    # the bookmark goes back as singer writes it, microseconds and all (2026-12-03T18:30:06.000000Z)
    resumed = [r["soql"] for r in list(emu.received)[seen:] if r["path"].endswith("/queryAll")]
    assert f"FROM {INVOICE} WHERE SystemModstamp >= {state['bookmarks'][INVOICE]['SystemModstamp']} " in \
        " ".join(resumed) and state["bookmarks"][INVOICE]["SystemModstamp"].endswith(".000000Z")
    # Everything the tap asked was answered 2xx: the login, the global describe, one describe per
    # sObject and the queries (REST only; the tap's Bulk path and its limits call are not used).
    answers = tap_answers + emu.stats.requests[mark:]
    assert [a for a in answers if a["status"] >= 400] == []
    kinds = {(a["method"], a["path"].rstrip("/").rsplit("/", 1)[-1]) for a in answers}
    assert kinds == {("POST", "token"), ("GET", "sobjects"), ("GET", "describe"), ("GET", "queryAll")}, kinds


def test_tap_salesforce_reads_a_single_currency_org_without_billhubs_schema(
        peers: Callable[[str], PeerVenv], bare_org: OrgView, tmp_path: Path) -> None:
    """The org shapes issue 19 asks for, seen by a client nobody here wrote: a fresh EUR org
    (Salesforce's default of one currency) before billhub's setup describes no CurrencyIsoCode, no
    Hub_Id__c or Billing_*__c field and no invoice object, and reads like any other."""
    tap = _tap(peers, bare_org, tmp_path / "tap-salesforce-bare")
    catalog = tap.discover(bare_org.config())
    streams = {s["tap_stream_id"] for s in catalog["streams"]}
    assert streams == set(STREAMS) - {INVOICE}, sorted(streams)
    for stream in catalog["streams"]:
        custom = [name for name in stream["schema"]["properties"] if name == "CurrencyIsoCode" or name.endswith("__c")]
        assert custom == [], (stream["tap_stream_id"], custom)
    run = tap.sync(bare_org.config(), _incremental(select(catalog, streams)))
    counts = _assert_equal_to_the_emulator(run, bare_org, tuple(sorted(streams)))
    assert {s: n for s, n in counts.items() if n} == {"Account": 1, "Contact": 1, "Opportunity": 1,
                                                     "OpportunityLineItem": 1, "Organization": 1, "Pricebook2": 1,
                                                     "PricebookEntry": 1, "Product2": 1, "User": 1}
    (org,) = run.records["Organization"]
    assert org["DefaultCurrencyIsoCode"] == "EUR"  # where a single-currency org says its currency
    (line,) = run.records["OpportunityLineItem"]
    assert (line["Quantity"], line["UnitPrice"], line["TotalPrice"]) == (3.0, 49.0, 147.0)
    (deal,) = run.records["Opportunity"]
    assert (deal["Amount"], line["OpportunityId"]) == (147.0, deal["Id"])  # rolled up from its product
