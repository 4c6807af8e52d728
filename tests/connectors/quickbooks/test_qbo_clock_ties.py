"""The QuickBooks clock as Intuit's (issue 19): it follows the wall clock unless a test pins it,
writes share a second (no tick per write), and billhub's incremental read takes ties at the
cursor's second: a change in that second after the read still comes, none comes twice."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from connectors.base import Page
from connectors.emulation import WallClock
from connectors.quickbooks.emulator import QuickBooksEmulator
from tests.connectors.quickbooks.conftest import QboEnv


def _read(pages: list[Page]) -> tuple[list[str], str | None]:
    ids: list[str] = []
    cursor: str | None = None
    for page in pages:
        ids.extend(r.external_id for r in page.records)
        cursor = page.cursor or cursor
    return ids, cursor


def test_the_default_clock_follows_the_wall_and_can_be_moved() -> None:
    emulator = QuickBooksEmulator()
    assert isinstance(emulator.clock, WallClock)
    assert abs(emulator.clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    emulator.clock.advance(3600)  # a shift, from which it keeps following the wall
    assert timedelta(seconds=3595) < emulator.clock.now() - datetime.now(UTC) < timedelta(seconds=3605)


def test_writes_in_one_second_share_it(qbo_env: QboEnv) -> None:
    at = qbo_env.emulator.clock.now()
    ids = qbo_env.seed(Customer=[{"DisplayName": f"Tie {i}"} for i in range(3)])["Customer"]
    stamps = {qbo_env.table("Customer")[i]["MetaData"]["LastUpdatedTime"] for i in ids}
    assert len(stamps) == 1 and datetime.fromisoformat(stamps.pop()) == at.replace(microsecond=0)
    assert qbo_env.emulator.clock.now() == at  # nothing ticked


def test_tie_at_the_cursor_second_is_read_once_and_never_lost(qbo_env: QboEnv) -> None:
    (first, other) = qbo_env.seed(Customer=[{"DisplayName": "First"}, {"DisplayName": "Other"}])["Customer"]
    connector = qbo_env.connector()
    ids, cursor = _read(list(connector.fetch_changes("customer", None)))  # the full read, at second T
    assert sorted(ids) == sorted([first, other]) and cursor is not None

    # Two writes in the same second T, after the read's answer: a new customer and an edit
    edit = functools.partial(qbo_env.emulator.edit, qbo_env.realm, "Customer", other, {"CompanyName": "Moved"})
    (new,) = qbo_env.seed(Customer=[{"DisplayName": "New"}])["Customer"]
    qbo_env.on_loop(edit)
    ids, cursor = _read(list(connector.fetch_changes("customer", cursor)))
    assert sorted(ids) == sorted([new, other])  # both, once; ``first`` (read at T) not again
    assert qbo_env.calls("/cdc") == 1

    ids, cursor = _read(list(connector.fetch_changes("customer", cursor)))  # still second T
    assert ids == []

    qbo_env.emulator.clock.advance(1)
    (later,) = qbo_env.seed(Customer=[{"DisplayName": "Later"}])["Customer"]
    ids, cursor = _read(list(connector.fetch_changes("customer", cursor)))
    assert ids == [later]
    ids, _cursor = _read(list(connector.fetch_changes("customer", cursor)))
    assert ids == []


def test_a_plain_time_cursor_still_reads_from_its_second(qbo_env: QboEnv) -> None:
    """A cursor stored before ties were remembered (a plain server time) keeps working: the
    second's records come again (harmless: the content hash drops them), nothing is lost."""
    (one,) = qbo_env.seed(Customer=[{"DisplayName": "One"}])["Customer"]
    connector = qbo_env.connector()
    ids, _ = _read(list(connector.fetch_changes("customer", qbo_env.emulator.clock.now().isoformat())))
    assert ids == [one]
