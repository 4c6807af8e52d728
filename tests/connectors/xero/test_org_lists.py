"""The collections an organisation answers though it never used them (issue 19; org_lists.py):
the envelope of the spec with an empty list, the default branding theme and the subscriber,
/Organisations beside /Organisation, 404 for what is not there (Employees: removed by Xero) and
400 for a malformed ``where``. Raw HTTP, every answer validated against xero_accounting.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.emulation import RunningEmulator
from connectors.xero.emulator import (
    XeroEmulator,
)
from connectors.xero.emulator.org_lists import EMPTY, PAGINATED
from tests.connectors.xero.raw_http import API, accounting_spec, token_session


@pytest.fixture(scope="module")
def accounting() -> OpenAPI:
    return accounting_spec()


@pytest.fixture
def http(xero_emulator: RunningEmulator, emu: XeroEmulator) -> Iterator[requests.Session]:
    session = token_session(xero_emulator, emu)
    yield session
    session.close()


def _validated(spec: OpenAPI, answer: requests.Response) -> Any:
    url = urlsplit(answer.url)
    path = url.path
    if path.endswith("/Organisations"):  # the spec names only /Organisation; the answer is the same
        path = path[: -len("s")]
    request = MockRequest("https://api.xero.com", answer.request.method.lower(), path,  # type: ignore[union-attr]
                          args=dict(parse_qsl(url.query)))
    spec.validate_response(request, MockResponse(answer.content, status_code=answer.status_code,
                                                 content_type=answer.headers.get("Content-Type", "application/json")))
    return answer.json()


def test_unused_collections_answer_the_empty_envelope_of_the_spec(
        xero_emulator: RunningEmulator, http: requests.Session, accounting: OpenAPI) -> None:
    base = xero_emulator.base_url + API
    for collection in EMPTY:
        params = {"page": "1"} if collection in PAGINATED else {}
        body = _validated(accounting, http.get(f"{base}/{collection}", params=params, timeout=10))
        assert body["Status"] == "OK" and body[collection] == [], collection
        assert set(body) - {collection, "pagination"} == {"Id", "Status", "ProviderName", "DateTimeUTC"}
        if collection in PAGINATED:
            assert body["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 0, "itemCount": 0}
    journals = _validated(accounting, http.get(f"{base}/Journals", params={"offset": "0"}, timeout=10))
    assert journals["Journals"] == []
    since = {"If-Modified-Since": "2026-01-01T00:00:00"}
    assert http.get(f"{base}/Overpayments", headers=since, timeout=10).json()["Overpayments"] == []
    missing = http.get(f"{base}/Overpayments/00000000-0000-0000-0000-000000000001", timeout=10)
    assert missing.status_code == 404
    bad = http.get(f"{base}/Quotes", params={"where": "Status=="}, timeout=10)
    assert bad.status_code == 400 and bad.json()["Type"] == "ValidationException"
    # Xero removed the accounting Employees endpoints (28 April 2026): an unknown path
    assert http.get(f"{base}/Employees", timeout=10).status_code == 404


def test_every_organisation_has_its_standard_branding_theme_and_its_subscriber(
        xero_emulator: RunningEmulator, emu: XeroEmulator, http: requests.Session, accounting: OpenAPI) -> None:
    base = xero_emulator.base_url + API
    (theme,) = _validated(accounting, http.get(f"{base}/BrandingThemes", timeout=10))["BrandingThemes"]
    assert (theme["Name"], theme["SortOrder"], theme["Type"]) == ("Standard", 0, "INVOICE")
    assert theme["CreatedDateUTC"].startswith("/Date(")
    by_id = _validated(accounting, http.get(f"{base}/BrandingThemes/{theme['BrandingThemeID']}", timeout=10))
    assert by_id["BrandingThemes"] == [theme]
    (user,) = _validated(accounting, http.get(f"{base}/Users", timeout=10))["Users"]
    assert user["IsSubscriber"] is True and user["UserID"] == next(iter(emu.tenant.table("Users")))
    later = {"If-Modified-Since": "2099-01-01T00:00:00"}
    assert http.get(f"{base}/Users", headers=later, timeout=10).json()["Users"] == []
    # another organisation has its own
    xero_emulator.on_loop(lambda: emu.add_tenant("tenant-b", "Org B"))
    other = emu.tenants["tenant-b"].table("Users")
    assert len(other) == 1 and set(other) != set(emu.tenant.table("Users"))


def test_organisations_is_the_organisation(xero_emulator: RunningEmulator, http: requests.Session,
                                           accounting: OpenAPI) -> None:
    base = xero_emulator.base_url + API
    one = _validated(accounting, http.get(f"{base}/Organisation", timeout=10))["Organisations"]
    plural = _validated(accounting, http.get(f"{base}/Organisations", timeout=10))["Organisations"]
    assert one == plural and len(one) == 1 and one[0]["BaseCurrency"] == "USD"


def test_currencies_always_list_the_base_currency(xero_emulator: RunningEmulator, emu: XeroEmulator,
                                                  http: requests.Session, accounting: OpenAPI) -> None:
    base = xero_emulator.base_url + API
    listed = _validated(accounting, http.get(f"{base}/Currencies", timeout=10))["Currencies"]
    assert {"Code": "USD", "Description": "United States Dollar"} in listed and len(listed) == 6
    emu.tenant.base_currency = "CAD"  # as make_gst_organisation and the e2e tests set it
    listed = _validated(accounting, http.get(f"{base}/Currencies", timeout=10))["Currencies"]
    assert {"Code": "CAD", "Description": "Canadian Dollar"} in listed and len(listed) == 7
    where = {"where": 'Code=="CAD"'}
    assert http.get(f"{base}/Currencies", params=where, timeout=10).json()["Currencies"] == \
        [{"Code": "CAD", "Description": "Canadian Dollar"}]
