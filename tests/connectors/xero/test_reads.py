"""Incremental reads: the If-Modified-Since cursor moves past a burst once it has landed."""

from __future__ import annotations

from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator
from connectors.xero.streams import _parse_cursor


def test_a_quiet_pass_long_after_a_burst_moves_the_cursor_past_it(emu: XeroEmulator,
                                                                  connector: XeroConnector) -> None:
    emu.seed_now({"Contacts": [{"Name": f"Customer {i}"} for i in range(20)]})
    burst_at = emu.clock.now()
    pages = list(connector.fetch_changes("customer", None))
    cursor = pages[-1].cursor
    assert sum(len(p.records) for p in pages) == 20
    overlap = connector.reader.overlap
    emu.clock.advance(2 * overlap.total_seconds() + 1)  # two overlaps later: the burst has landed
    quiet = list(connector.fetch_changes("customer", cursor))
    assert [r for p in quiet for r in p.records] == []
    stamp, _seen = _parse_cursor(quiet[-1].cursor)
    # The next read asks Xero only for what changed after the burst (cursor less the overlap),
    # instead of re-reading all 20 contacts on every quiet pass.
    assert stamp is not None and stamp - overlap > burst_at


def test_a_server_that_caps_pages_below_the_size_asked_is_read_to_the_end(emu: XeroEmulator,
                                                                         connector: XeroConnector) -> None:
    # Real Xero may answer fewer items than pageSize asks for: a reader that stops at the first
    # short page read 307 of 1,098 records, and the diff took the rest for deletions.
    emu.max_page_size = 7
    emu.seed_now({"Contacts": [{"Name": f"Customer {i}"} for i in range(30)]})
    full = [r.external_id for p in connector.fetch_all("customer") for r in p.records]
    changes = [r.external_id for p in connector.fetch_changes("customer", None) for r in p.records]
    assert len(full) == len(set(full)) == 30
    assert sorted(changes) == sorted(full)
