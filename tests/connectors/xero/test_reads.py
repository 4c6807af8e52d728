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
