"""Reads through /batch (connectors/quickbooks/batch.py, streams.Reader._pages): the SDK against the
emulator, no mocks. Pages 1-2 and a count go in one request, the rest of the stream in the next;
page boundaries (a stream of exactly n pages, records added while reading), a batch item's fault
handled alone, a throttled batch retried, the company facts asked together, a checkpoint's count
reused, a page of payouts' fee documents asked together."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from connectors.base import InvalidError
from connectors.quickbooks.emulator.app import QUERY_BATCH
from mapping.quickbooks_payouts import FEE_KEY
from tests.connectors.quickbooks.conftest import QboEnv


def _ids(pages: Any) -> list[str]:
    return [r.external_id for page in pages for r in page.records]


def _batches(qbo_env: QboEnv) -> list[list[dict[str, Any]]]:
    """The query items of each /batch answer the emulator gave, in order."""
    return [json.loads(ex["body"])["BatchItemResponse"] for ex in qbo_env.emulator.exchanges
            if ex["path"].endswith("/batch")]


def _item_kinds(items: list[dict[str, Any]]) -> list[str]:
    """Each item as ``page@start``, ``count`` or ``fault``."""
    out = []
    for item in items:
        response = item.get("QueryResponse") or {}
        out.append("fault" if "Fault" in item else "count" if "totalCount" in response
                   else f"page@{response.get('startPosition')}")
    return out


def _fault_next_item(qbo_env: QboEnv, match: str, code: int) -> None:
    """The next batch query item holding ``match`` answers Fault ``code`` inside the 200."""
    requests.post(f"{qbo_env.running.base_url}/__emulator/batch_faults",
                  json={"match": match, "code": code, "count": 1}, timeout=10).raise_for_status()


def _customers(qbo_env: QboEnv, n: int, prefix: str = "C") -> list[str]:
    ids: list[str] = qbo_env.seed(Customer=[{"DisplayName": f"{prefix} {i:04d}"} for i in range(n)])["Customer"]
    return ids


def test_a_stream_of_exactly_two_pages_is_read_in_one_call_and_no_empty_page(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 6)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    qbo_env.emulator.record_exchanges = True
    queries, batches = qbo_env.calls("/query"), qbo_env.calls(QUERY_BATCH)
    pages = list(connector.fetch_all("customer"))
    assert [len(p.records) for p in pages] == [3, 3]
    assert _ids(pages) == ids
    # pages 1 and 2 and the count (6) in one batch: page 2 is full and at the count, so no
    # empty third page is asked
    assert [_item_kinds(b) for b in _batches(qbo_env)] == [["page@1", "page@4", "count"]]
    assert qbo_env.calls(QUERY_BATCH) - batches == 1 and qbo_env.calls("/query") == queries


def test_the_rest_of_a_stream_comes_in_one_batch_ending_on_a_short_page(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 10)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    qbo_env.emulator.record_exchanges = True
    pages = list(connector.fetch_all("customer"))
    assert [len(p.records) for p in pages] == [3, 3, 3, 1]
    assert _ids(pages) == ids
    assert [_item_kinds(b) for b in _batches(qbo_env)] == [["page@1", "page@4", "count"], ["page@7", "page@10"]]


def test_records_added_while_reading_past_the_count_are_read_too(qbo_env: QboEnv) -> None:
    first = _customers(qbo_env, 7)
    connector = qbo_env.connector(config={"page_size": 3})
    pages = connector.fetch_all("customer")
    read = [r.external_id for r in next(pages).records]  # pages 1, 2 and the count (7) answered
    later = qbo_env.on_loop(lambda: [qbo_env.emulator.save(qbo_env.realm, "Customer", {"DisplayName": f"Late {i}"})["Id"]
                                     for i in range(4)])
    read += _ids(pages)
    # page 3 (asked for the count's 7th) came back full, past the count: pages 4-5 and the count
    # asked again, and page 4 is short
    assert read == first + later and len(set(read)) == 11


def test_a_faulted_batch_item_is_asked_again_alone_and_the_other_items_are_kept(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 10)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    _fault_next_item(qbo_env, "STARTPOSITION 4 ", 10000)
    qbo_env.emulator.record_exchanges = True
    queries = qbo_env.calls("/query")
    pages = list(connector.fetch_all("customer"))
    assert _ids(pages) == ids and [len(p.records) for p in pages] == [3, 3, 3, 1]
    assert [_item_kinds(b) for b in _batches(qbo_env)] == [["page@1", "fault", "count"], ["page@7", "page@10"]]
    assert qbo_env.calls("/query") - queries == 1  # page 2 alone, under the retry policy


def test_a_faulted_count_item_is_asked_again_alone(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 4)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    _fault_next_item(qbo_env, "COUNT(*)", 10000)
    queries = qbo_env.calls("/query")
    assert _ids(connector.fetch_all("customer")) == ids
    assert qbo_env.calls("/query") - queries == 1  # the count again, alone; page 2 was short


def test_an_invalid_batch_item_raises_as_that_query_alone_would(qbo_env: QboEnv) -> None:
    _customers(qbo_env, 4)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    _fault_next_item(qbo_env, "STARTPOSITION 1 ", 4000)
    queries = qbo_env.calls("/query")
    with pytest.raises(InvalidError, match="4000"):
        list(connector.fetch_all("customer"))
    assert qbo_env.calls("/query") == queries  # not asked again: it would fault again


def test_a_throttled_batch_is_retried_under_the_policy(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 4)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    qbo_env.emulator.set_faults(burst_429=1)
    assert _ids(connector.fetch_all("customer")) == ids
    assert qbo_env.emulator.stats.faults_injected["429"] == 1
    assert qbo_env.waits, "the retry waited (recorded, not slept)"


def test_the_company_facts_are_learnt_in_one_batch(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    queries, batches = qbo_env.calls("/query"), qbo_env.calls(QUERY_BATCH)
    connector.learn()
    assert connector.home_currency() == "USD"
    assert connector.company_tax.model().country == "US"
    assert qbo_env.calls(QUERY_BATCH) - batches == 1 and qbo_env.calls("/query") == queries
    connector.learn()  # known: nothing asked again
    assert qbo_env.calls(QUERY_BATCH) - batches == 1 and qbo_env.calls("/query") == queries


def test_a_resumed_first_read_sizes_its_pages_by_the_checkpoints_count(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 10)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    pages = connector.fetch_changes("customer", None)
    first = next(pages)
    assert first.cursor is not None
    checkpoint = json.loads(first.cursor)["scan"]
    assert checkpoint["next"] == 4 and checkpoint["total"] == 10
    qbo_env.emulator.record_exchanges = True
    rest = list(connector.fetch_changes("customer", first.cursor))  # as after a restart
    assert [r.external_id for r in first.records] + _ids(rest) == ids
    # pages 2-4 in one batch and no count: the checkpoint remembered it
    assert [_item_kinds(b) for b in _batches(qbo_env)] == [["page@4", "page@7", "page@10"]]
    assert rest[-1].cursor is not None and "scan" not in rest[-1].cursor


def test_a_page_of_payouts_reads_its_fee_documents_in_one_batch(qbo_env: QboEnv) -> None:
    accounts = list(qbo_env.table("Account"))
    clearing, bank = accounts[0], accounts[1]

    def book() -> list[str]:
        ids = []
        for n in range(4):
            ids.append(qbo_env.emulator.save(qbo_env.realm, "Transfer", {
                "FromAccountRef": {"value": clearing}, "ToAccountRef": {"value": bank}, "Amount": "100.00",
                "PrivateNote": f"hub:po-{n}"})["Id"])
            if n != 2:  # payout 2 has no fee document
                qbo_env.emulator.save(qbo_env.realm, "Purchase", {
                    "AccountRef": {"value": clearing}, "PaymentType": "Cash", "PrivateNote": f"hub:po-{n}",
                    "Line": [{"Amount": f"{n + 1}.00", "DetailType": "AccountBasedExpenseLineDetail",
                              "AccountBasedExpenseLineDetail": {"AccountRef": {"value": bank}}}]})
        qbo_env.emulator.save(qbo_env.realm, "Transfer", {  # a person's own transfer: no payout
            "FromAccountRef": {"value": bank}, "ToAccountRef": {"value": clearing}, "Amount": "5.00"})
        return ids

    transfers = qbo_env.on_loop(book)
    connector = qbo_env.connector()
    connector.learn()
    queries, batches = qbo_env.calls("/query"), qbo_env.calls(QUERY_BATCH)
    records = [r for page in connector.fetch_all("payout") for r in page.records]
    assert [r.external_id for r in records] == transfers
    fees = [(r.data.get(FEE_KEY) or {}).get("PrivateNote") for r in records]
    assert fees == ["hub:po-0", "hub:po-1", None, "hub:po-3"]
    # the transfers (pages 1-2 and the count) in one batch, the four fee queries in another;
    # one query per payout before
    assert qbo_env.calls(QUERY_BATCH) - batches == 2 and qbo_env.calls("/query") == queries


def test_read_batches_are_paced_by_the_realms_batch_limit(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 12)
    clock = [0.0]  # the limiter's clock: pinned, so only the limiter's own waits count
    connector = qbo_env.connector(config={"page_size": 3, "batch_per_minute": 6.0}, monotonic=lambda: clock[0])
    connector.learn()  # batch 1: the bucket's one token
    assert qbo_env.waits == []
    assert _ids(connector.fetch_all("customer")) == ids  # batches 2 and 3 wait for theirs
    # 6 a minute at 90%: a token each 60 / 5.4 s, and the second read batch waits two of them
    assert [round(w, 1) for w in qbo_env.waits] == [11.1, 22.2]


def test_a_read_that_starts_the_change_feed_asks_one_page_then_the_count_first(qbo_env: QboEnv) -> None:
    ids = _customers(qbo_env, 7)
    connector = qbo_env.connector(config={"page_size": 3})
    connector.learn()
    qbo_env.emulator.record_exchanges = True
    pages = list(connector.fetch_changes("customer", None))
    assert _ids(pages) == ids
    # the feed goes on from the first answer's time, stamped after its items ran: page 1 is read
    # with only the count after it, pages 2-3 after that time
    assert [_item_kinds(b) for b in _batches(qbo_env)] == [["page@1", "count"], ["page@4", "page@7"]]
    assert pages[-1].cursor is not None and "scan" not in pages[-1].cursor


def test_health_counts_each_batch_request_once_reads_and_writes_alike(qbo_env: QboEnv) -> None:
    from tests.connectors.quickbooks.test_writes import BATCH, _outbounds

    connector = qbo_env.connector()
    stats = qbo_env.emulator.stats.calls
    reads, writes = stats[QUERY_BATCH], stats[BATCH]
    connector.learn()  # the facts: one read batch
    items = _outbounds(qbo_env, 40)
    assert all(r.ok for r in connector.upsert("invoice", items))  # 30 + 10: two write batches
    assert (stats[QUERY_BATCH] - reads, stats[BATCH] - writes) == (1, 2)
    # reader and writer share one QueryBatch: every batch request counted once, none twice
    assert connector.health().budget["batch_calls"] == 3
