"""Reads: query paging, CDC increments and their fall-back, and the query language via the SDK."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

from quickbooks.objects.customer import Customer as SdkCustomer

from connectors.quickbooks.emulator.app import QUERY_BATCH
from tests.connectors.quickbooks.conftest import QboEnv


def _drain(pages: object) -> tuple[list[str], list[str], str | None]:
    live: list[str] = []
    deleted: list[str] = []
    cursor = None
    for page in pages:  # type: ignore[attr-defined]
        for record in page.records:
            (deleted if record.deleted else live).append(record.external_id)
        cursor = page.cursor or cursor
    return live, deleted, cursor


def test_2500_customers_read_with_two_calls_then_ten_changes_with_one_cdc_call(qbo_env: QboEnv) -> None:
    ids = qbo_env.seed(Customer=[{"DisplayName": f"Customer {i:05d}"} for i in range(2500)])["Customer"]
    # the read a second after the bulk import: 2,500 versions in the cursor's own second are more
    # than it remembers (MAX_SEEN), and would be read again (test_tie_at_the_cursor_second)
    qbo_env.emulator.clock.advance(1)
    connector = qbo_env.connector()
    before = qbo_env.calls("/query")
    live, _deleted, cursor = _drain(connector.fetch_changes("customer", None))
    assert sorted(live) == sorted(ids) and len(live) == len(ids)
    # page 1 and the count in one /batch (a read that starts the change feed asks one page
    # first), pages 2-3 in a second; and the one Preferences query that tells the company's home
    # currency (once per process): 3 calls in all (were 4)
    assert qbo_env.calls(QUERY_BATCH) == 2
    assert qbo_env.calls("/query") - before == 1
    assert cursor is not None

    changed = ids[100:110]
    for ext in changed:
        qbo_env.on_loop(functools.partial(qbo_env.emulator.edit, qbo_env.realm, "Customer", ext,
                                          {"CompanyName": "Changed"}))
    queries, cdc = qbo_env.calls("/query"), qbo_env.calls("/cdc")
    live, _deleted, next_cursor = _drain(connector.fetch_changes("customer", cursor))
    assert sorted(live) == sorted(changed)
    assert qbo_env.calls("/cdc") - cdc == 1
    assert qbo_env.calls("/query") == queries
    assert next_cursor is not None and next_cursor != cursor


def test_full_fetch_pages_at_the_configured_size(qbo_env: QboEnv) -> None:
    ids = qbo_env.seed(Customer=[{"DisplayName": f"P {i}"} for i in range(7)])["Customer"]
    connector = qbo_env.connector(config={"page_size": 3})
    pages = list(connector.fetch_all("customer"))
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert [r.external_id for p in pages for r in p.records] == ids


def test_cursor_older_than_thirty_days_falls_back_to_a_last_updated_query(qbo_env: QboEnv) -> None:
    old, touched = qbo_env.seed(Customer=[{"DisplayName": "Old"}, {"DisplayName": "Touched"}])["Customer"]
    connector = qbo_env.connector()
    _live, _deleted, cursor = _drain(connector.fetch_changes("customer", None))
    qbo_env.on_loop(lambda: qbo_env.emulator.clock.advance(31 * 86400))
    qbo_env.on_loop(lambda: qbo_env.emulator.edit(qbo_env.realm, "Customer", touched, {"CompanyName": "T"}))
    cdc = qbo_env.calls("/cdc")
    live, _deleted, next_cursor = _drain(connector.fetch_changes("customer", cursor))
    assert live == [touched]
    assert qbo_env.calls("/cdc") == cdc, "CDC cannot look back 30 days; it must not be asked"
    assert next_cursor is not None and next_cursor > str(cursor)


def test_deleted_and_voided_invoices_are_surfaced(qbo_env: QboEnv) -> None:
    (customer,) = qbo_env.seed(Customer=[{"DisplayName": "Buyer"}])["Customer"]
    line = {"DetailType": "SalesItemLineDetail", "Amount": "10.00", "SalesItemLineDetail": {}}
    gone, voided = qbo_env.seed(Invoice=[{"CustomerRef": {"value": customer}, "Line": [line]},
                                         {"CustomerRef": {"value": customer}, "Line": [line]}])["Invoice"]
    connector = qbo_env.connector()
    _live, _deleted, cursor = _drain(connector.fetch_changes("invoice", None))
    qbo_env.on_loop(lambda: qbo_env.emulator.remove(qbo_env.realm, "Invoice", gone))
    qbo_env.on_loop(lambda: qbo_env.emulator.void(qbo_env.realm, "Invoice",
                                                  qbo_env.table("Invoice")[voided]))
    records = [r for page in connector.fetch_changes("invoice", cursor) for r in page.records]
    by_id = {r.external_id: r for r in records}
    assert by_id[gone].deleted
    assert not by_id[voided].deleted
    entity = connector.to_canonical(by_id[voided], _Refs())
    assert entity.status == "void"  # type: ignore[attr-defined]
    assert entity.total.minor == 0  # type: ignore[attr-defined]


class _Refs:
    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"{entity_type}:{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return canonical_id.split(":", 1)[1] if canonical_id.startswith(entity_type + ":") else None


def test_query_language_through_the_sdk(qbo_env: QboEnv) -> None:
    qbo_env.seed(Customer=[{"DisplayName": "O'Brien"}, {"DisplayName": "Adams"}, {"DisplayName": "Zed"},
                           {"DisplayName": "Gone", "Active": False}])
    connector = qbo_env.connector()
    qb = connector.client.qb
    connector.tokens.access_token()
    qb.session.token = {"access_token": connector.tokens.access_token(), "token_type": "Bearer"}
    assert [c.DisplayName for c in SdkCustomer.filter(DisplayName="O'Brien", qb=qb)] == ["O'Brien"]
    assert SdkCustomer.count(qb=qb) == 3  # inactive customers are not counted unless asked for
    ordered = SdkCustomer.where("Active = true", order_by="DisplayName DESC", start_position=2,
                                max_results=2, qb=qb)
    assert [c.DisplayName for c in ordered] == ["O'Brien", "Adams"]
    everyone = SdkCustomer.query("SELECT * FROM Customer WHERE Active IN (true, false) ORDER BY Id", qb=qb)
    assert len(everyone) == 4
    like = SdkCustomer.query("SELECT * FROM Customer WHERE DisplayName LIKE 'a%'", qb=qb)
    assert [c.DisplayName for c in like] == ["Adams"]


def test_concurrent_calls_overlap_up_to_the_configured_concurrency(qbo_env: QboEnv) -> None:
    """Each request has its own SDK instance and session, so several run at once (one shared
    session would serialise them: at most one in flight), and never more than configured."""
    qbo_env.seed(Customer=[{"DisplayName": f"Customer {i}"} for i in range(5)])
    qbo_env.emulator.faults.latency_ms = 1000  # each answer takes a second: the 6 threads overlap
    connector = qbo_env.connector(config={"concurrency": 3})
    connector.tokens.access_token()

    def read(_n: int) -> int:
        return len(connector.client.call(lambda qb: qb.query("SELECT * FROM Customer"))["QueryResponse"]["Customer"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(read, range(12))) == [5] * 12
    assert 2 <= qbo_env.emulator.stats.peak_in_flight <= 3
    assert connector.client.calls == 12


def test_a_like_query_sees_every_save_edit_void_and_delete_after_its_first_use(qbo_env: QboEnv) -> None:
    """The emulator answers ``LIKE '%text%'`` from a text column kept with each write."""
    ids = qbo_env.seed(Customer=[{"DisplayName": f"Customer {i}", "Notes": f"hub:c{i}"} for i in range(3)])["Customer"]
    connector = qbo_env.connector()

    def like(entity: str, text: str) -> list[str]:
        answer = connector.client.call(lambda qb: qb.query(f"SELECT * FROM {entity} WHERE Notes LIKE '%{text}%'"
                                                           if entity == "Customer" else
                                                           f"SELECT * FROM {entity} WHERE PrivateNote LIKE '%{text}%'"))
        return sorted(str(r["Id"]) for r in answer["QueryResponse"].get(entity, []))

    assert like("Customer", "HUB:C1") == [ids[1]]  # case does not matter
    assert like("Customer", "hub:c") == sorted(ids)
    edit = qbo_env.emulator.edit
    qbo_env.on_loop(functools.partial(edit, qbo_env.realm, "Customer", ids[1], {"Notes": "by hand"}))
    assert like("Customer", "hub:c1") == [] and like("Customer", "hand") == [ids[1]]
    (invoice,) = qbo_env.seed(Invoice=[{"CustomerRef": {"value": ids[0]}, "PrivateNote": "hub:i0",
                                        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": "10.00",
                                                  "SalesItemLineDetail": {}}]}])["Invoice"]
    assert like("Invoice", "hub:i0") == [invoice]
    qbo_env.on_loop(lambda: qbo_env.emulator.void(qbo_env.realm, "Invoice", qbo_env.table("Invoice")[invoice]))
    assert like("Invoice", "voided - hub:i0") == [invoice]
    qbo_env.on_loop(functools.partial(qbo_env.emulator.remove, qbo_env.realm, "Invoice", invoice))
    assert like("Invoice", "hub:i0") == []
