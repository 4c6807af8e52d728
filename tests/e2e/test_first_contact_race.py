"""First contact under concurrent passes (PostgreSQL): the Stripe customer and the Salesforce
account of one company, read by two transactions at once (two `hub run` processes, or two lanes
of one), become one hub customer — not two, each then written to the ledgers, one of them
dead-lettered there as "already linked" with its invoices missing (the chaos runs' failure).

The two reads meet inside their transactions, each about to store its record: before the fix
both had looked for a match and found none (neither had committed), and both made a hub record.
With first contacts taking turns (``sync.first_contact.take_turns``) the second waits at its
lock, and the first goes on once it sees the second waiting (``pg_locks``): the barrier is
opened by the second's arrival or its wait, whichever comes, so the test passes or fails on
what the code does, never on timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from state.crypto import generate_key
from state.store import StateStore
from sync.config import load_config
from sync.demo import seed_company, start_emulators
from sync.runtime import Hub
from sync.summary import SyncSummary
from tests.e2e.conftest import Company

WAIT_SECONDS = 30.0


@pytest.fixture
def pg_company(tmp_path: Path, pg_schema_url: str) -> Iterator[Company]:
    """``tests.e2e.conftest.start_company`` on PostgreSQL: the schema made before the hub opens it."""
    emus = start_emulators(tmp_path)
    facts = seed_company(emus, customers=2, invoices=3)
    config_path = tmp_path / "hub.toml"
    config_path.write_text(emus.config_toml(pg_schema_url, generate_key()))
    store = StateStore(pg_schema_url)
    store.init()
    store.dispose()
    company = Company(emus, Hub.from_config(load_config(config_path)), facts, config_path)
    yield company
    company.hub.close()
    company.emus.stop()


def _someone_waits_for_a_lock(company: Company) -> bool:
    with company.hub.store.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar_one())


def test_a_stripe_customer_and_its_salesforce_account_read_at_once_make_one_hub_customer(
        pg_company: Company) -> None:
    company = pg_company
    hub = company.hub
    readers = ("stripe", "salesforce")
    arrived = {name: threading.Event() for name in readers}
    errors: list[BaseException] = []

    def meet(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        # each reader, about to store its first customer (its match looked for), waits for the
        # other to get as far — or to be seen waiting for a lock (it then comes after this one)
        me = threading.current_thread().name
        if me not in arrived or arrived[me].is_set() or not statement.lstrip().upper().startswith(
                "INSERT INTO ENTITIES"):
            return
        arrived[me].set()
        other = arrived[next(r for r in readers if r != me)]
        deadline = time.monotonic() + WAIT_SECONDS
        while not other.is_set() and not _someone_waits_for_a_lock(company):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{me}: the other reader neither arrived nor waited")
            time.sleep(0.01)  # polling a condition, not waiting for time to pass

    def read(connection: str) -> None:
        try:
            hub.engine.pull(connection, "customer", SyncSummary(), None)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    event.listen(hub.store.engine, "before_cursor_execute", meet)
    try:
        threads = [threading.Thread(target=read, args=(name,), name=name) for name in readers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_SECONDS * 2)
    finally:
        event.remove(hub.store.engine, "before_cursor_execute", meet)
    assert not errors, errors
    assert all(e.is_set() for e in arrived.values())  # both stored something: both really ran

    accounts = {a["Name"]: a["Id"] for a in company.salesforce.records("Account")}
    customers = {c["name"]: c_id for c_id, c in company.stripe.table("customer").items()}
    shared = sorted(set(accounts) & set(customers))
    assert len(shared) == 2  # the seed: each Stripe customer has its Salesforce account
    with hub.store.transaction() as tx:
        for name in shared:
            from_stripe = tx.canonical_for("stripe", "customer", customers[name])
            from_salesforce = tx.canonical_for("salesforce", "customer", accounts[name])
            assert from_stripe is not None and from_stripe == from_salesforce, name
        hub_customers = tx.conn.execute(text(
            "SELECT count(*) FROM entities WHERE type = 'customer' AND NOT deleted")).scalar_one()
    assert hub_customers == 2
