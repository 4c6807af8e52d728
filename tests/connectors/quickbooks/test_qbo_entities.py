"""Entities of QuickBooks the emulator does not model answer as an empty company's do (issue
19, item 2): a query is an empty ``QueryResponse``, a CDC request naming one gets an empty block
for it beside the others' changes, a read of one is 610 Object Not Found; a name that is no QBO
entity at all still fails as Intuit fails it (4000 for a query, 2010 for CDC). The list of
entities is Intuit's XSD's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.quickbooks.emulator.wire import BY_NAME, INTUIT_ENTITIES, UNMODELLED
from tests.connectors.quickbooks.conftest import QboEnv

XSD = Path(__file__).resolve().parents[4] / "shared" / "specs" / "quickbooks" / "intuit-xsd"


def test_the_entity_list_is_the_xsds_intuit_objects() -> None:
    if not XSD.is_dir():
        pytest.skip(f"Intuit's XSD is not at {XSD}")
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(XSD.glob("*.xsd")))
    declared = set(re.findall(r'<xs:element name="(\w+)" type="[\w:]+" substitutionGroup="IntuitObject"', text))
    assert declared == set(INTUIT_ENTITIES) and len(declared) == 62
    assert {v for v in BY_NAME.values()} <= declared  # everything modelled is a QBO entity
    assert {"Bill", "Vendor", "Estimate", "SalesReceipt", "JournalEntry", "Class"} <= set(UNMODELLED.values())


def _query(qbo_env: QboEnv, sql: str) -> dict[str, Any]:
    result: dict[str, Any] = qbo_env.connector().client.call(lambda qb: qb.query(sql))
    return result


def test_an_unmodelled_entity_queries_empty_and_a_non_entity_fails(qbo_env: QboEnv) -> None:
    for sql in ("SELECT * FROM Bill", "select * from Vendor WHERE Active IN (true, false) MAXRESULTS 10",
                "SELECT * FROM JournalEntry WHERE MetaData.LastUpdatedTime >= '2026-01-01T00:00:00Z' "
                "ORDER BY MetaData.LastUpdatedTime ASC STARTPOSITION 1 MAXRESULTS 1000"):
        result = _query(qbo_env, sql)
        assert result["QueryResponse"] == {} and result["time"], sql
    assert _query(qbo_env, "SELECT COUNT(*) FROM Estimate")["QueryResponse"] == {"totalCount": 0}
    with pytest.raises(ConnectorError, match="4000"):
        _query(qbo_env, "SELECT * FROM Bicycle")
    assert "Bill" not in qbo_env.realm.tables  # an empty answer makes no table


def test_cdc_naming_unmodelled_entities_answers_their_empty_blocks(qbo_env: QboEnv) -> None:
    (customer,) = qbo_env.seed(Customer=[{"DisplayName": "Seen"}])["Customer"]
    connector = qbo_env.connector()
    since = (qbo_env.emulator.clock.now()).isoformat()
    result = connector.client.call(lambda qb: qb.change_data_capture("Customer,Bill,Vendor", since))
    blocks = result["CDCResponse"][0]["QueryResponse"]
    assert [b.get("Customer") and [c["Id"] for c in b["Customer"]] for b in blocks] == [[customer], None, None]
    assert [b["maxResults"] for b in blocks] == [1, 0, 0]
    with pytest.raises(ConnectorError, match="2010"):
        connector.client.call(lambda qb: qb.change_data_capture("Customer,Bicycle", since))


def test_a_read_of_an_unmodelled_entity_is_object_not_found(qbo_env: QboEnv) -> None:
    connector = qbo_env.connector()
    with pytest.raises(ConnectorError, match="610"):
        connector.client.call(lambda qb: qb.get_single_object("Bill", "1"))
