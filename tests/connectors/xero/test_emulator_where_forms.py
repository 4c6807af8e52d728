"""The ``where`` forms Xero documents and the ``IDs`` forms it reads (issue 19): Guid("…")
comparisons in any Guid form, Contains/StartsWith/EndsWith, ToLower(), ``=``/``!=``/``<>``,
AND/OR/&&/||/NOT with parentheses, DateTime(…) ranges, null tests, names in any case (pyxero
writes ``Name.contains(…)``), a method on a null element refused as Xero does; ``IDs=`` with
undashed or upper-case Guids, and GET by such an id. The grammar on records directly, the
query parameters over HTTP through xero-python."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from xero_python.accounting import AccountingApi

from connectors.emulation import RunningEmulator
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator
from connectors.xero.emulator.validation import Invalid
from connectors.xero.emulator.where import compile_where

GUID = "5cc8cf28-567e-4d43-b287-687cfcaec47c"
PETER: dict[str, Any] = {"ContactID": GUID, "Name": "Peter Pan", "EmailAddress": None, "IsCustomer": True,
         "Contact": {"ContactID": GUID}, "Type": "ACCREC", "Total": Decimal("20.00"),
         "Date": datetime(2020, 1, 2, tzinfo=UTC)}
WENDY_ID = str(uuid.uuid4())
WENDY: dict[str, Any] = {**PETER, "ContactID": WENDY_ID, "Contact": {"ContactID": WENDY_ID}, "Name": "Wendy Darling", "EmailAddress": "wendy@example.com",
         "IsCustomer": False, "Type": "ACCPAY", "Total": Decimal("5"), "Date": datetime(2021, 6, 1, tzinfo=UTC)}


def matches(text: str) -> list[str]:
    test = compile_where(text)
    return [r["Name"] for r in (PETER, WENDY) if test(r)]


@pytest.mark.parametrize(("text", "names"), [
    (f'ContactID==Guid("{GUID}")', ["Peter Pan"]),
    (f'ContactID==GUID("{GUID.upper()}")', ["Peter Pan"]),
    (f'Contact.ContactID = Guid("{GUID.replace("-", "")}")', ["Peter Pan"]),
    (f'ContactID!=Guid("{GUID}")', ["Wendy Darling"]),
    ('Name.Contains("Pan")', ["Peter Pan"]),
    ('Name.StartsWith("W")', ["Wendy Darling"]),
    ('Name.EndsWith("n")', ["Peter Pan"]),
    ('name.contains("Dar")', ["Wendy Darling"]),  # pyxero's lower-case method names
    ('Name.ToLower()=="peter pan"', ["Peter Pan"]),
    ('Name.tolower()=="PETER PAN"', []),
    ('EmailAddress!=null', ["Wendy Darling"]),
    ('EmailAddress==null', ["Peter Pan"]),
    ('EmailAddress!=null&&EmailAddress.StartsWith("wendy")', ["Wendy Darling"]),
    ('Type=="ACCREC" OR Type=="ACCPAY"', ["Peter Pan", "Wendy Darling"]),
    ('Type=="ACCREC" || Total < 10 && IsCustomer', ["Peter Pan"]),  # && binds tighter
    ('(Type=="ACCREC" || Total < 10) and IsCustomer==false', ["Wendy Darling"]),
    ('NOT (Type=="ACCREC") AND Type<>"ACCREC"', ["Wendy Darling"]),
    ('!IsCustomer', ["Wendy Darling"]),
    ('Date >= DateTime(2020, 01, 01) && Date < DateTime(2020, 12, 31)', ["Peter Pan"]),
    ('Date > DateTime(2021,6,1,0,0,0)', []),
    ('Total = 20.00', ["Peter Pan"]),
    ('Total >= 5 AND Total <= 5.00', ["Wendy Darling"]),
    ('Name=="Peter \\"P\\" Pan" OR Name=="Peter Pan"', ["Peter Pan"]),
])
def test_documented_where_forms(text: str, names: list[str]) -> None:
    assert matches(text) == names


@pytest.mark.parametrize("text", ['Name===1', 'Name.Foo("x")', 'Guid(1)==ContactID', 'Date>DateTime(2020,13,1)',
                                  'Name=="x" AND', '(Name=="x"', 'Name.ToLower("x")=="y"', 'Name.Contains()'])
def test_malformed_where_is_refused(text: str) -> None:
    with pytest.raises(Invalid):
        compile_where(text)(PETER)


def test_a_method_on_a_null_element_is_refused_unless_tested_first() -> None:
    with pytest.raises(Invalid, match="EmailAddress"):
        [compile_where('EmailAddress.StartsWith("w")')(r) for r in (PETER, WENDY)]


def test_ids_and_get_by_id_read_every_guid_form(
        emu: XeroEmulator, xero_emulator: RunningEmulator, connector: XeroConnector) -> None:
    created = emu.seed_now({"Contacts": [{"Name": "Alpha"}, {"Name": "Beta"}, {"Name": "Gamma"}],
                            "Invoices": []})
    alpha, beta, _gamma = created["Contacts"]
    api: AccountingApi = connector.client.accounting
    tenant = emu.tenant.tenant_id

    def names(**kwargs: Any) -> list[str]:
        return sorted(c.name for c in api.get_contacts(tenant, **kwargs).contacts or [])

    assert names(i_ds=[uuid.UUID(alpha).hex, beta.upper()]) == ["Alpha", "Beta"]  # undashed, upper case
    assert names(i_ds=[alpha]) == ["Alpha"]
    assert names(where=f'ContactID==Guid("{uuid.UUID(beta).hex.upper()}")') == ["Beta"]
    assert names(where='Name.StartsWith("G") OR Name.EndsWith("ta")') == ["Beta", "Gamma"]
    (found,) = api.get_contact(tenant, uuid.UUID(alpha).hex).contacts
    assert str(found.contact_id) == alpha
