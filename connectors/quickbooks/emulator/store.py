"""The QuickBooks emulator's state: one ``Realm`` per company (its tables, deletions, id and
document-number counters, ``requestid`` replies, throttle windows, name and text indexes), and
what a new company starts with."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.quickbooks.emulator.qbql import value_at
from connectors.quickbooks.emulator.wire import qbo_time


@dataclass
class Realm:
    realm_id: str
    home_currency: str = "USD"
    country: str = "US"  # "US": sales tax; any other: Intuit's global tax model (tax.py)
    multicurrency: bool = True
    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tombstones: list[tuple[str, str, datetime]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    doc_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: deque[float] = field(default_factory=deque)
    batches: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> folded name -> Id (active)
    # (entity, path) -> Id -> the lowered text at path, for the paths LIKE queries asked about:
    # the hub's marker lookups ('%hub:…%', one per record of unknown outcome) test a substring
    # of one short string per row instead of walking every stored object.
    texts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def table(self, entity: str) -> dict[str, dict[str, Any]]:
        return self.tables.setdefault(entity, {})

    def store(self, entity: str, obj: dict[str, Any]) -> None:
        self.table(entity)[obj["Id"]] = obj
        for (kind, path), column in self.texts.items():
            if kind == entity:
                column[obj["Id"]] = _text_at(obj, path)

    def remove(self, entity: str, object_id: str) -> None:
        del self.table(entity)[object_id]
        for (kind, _path), column in self.texts.items():
            if kind == entity:
                column.pop(object_id, None)

    def text_column(self, entity: str, path: str) -> dict[str, str]:
        column = self.texts.get((entity, path.lower()))
        if column is None:
            column = {oid: _text_at(obj, path) for oid, obj in self.table(entity).items()}
            self.texts[(entity, path.lower())] = column
        return column


def _text_at(obj: Mapping[str, Any], path: str) -> str:
    return str(value_at(obj, path) or "").lower()


@dataclass
class Throttle:
    per_minute: int = 500
    concurrent: int = 10
    batch_per_minute: int = 40
    format: str = "xml"


def new_company(realm_id: str, now: datetime) -> Realm:
    """What a new company has: accounts, tax codes, company info, preferences."""
    realm = Realm(realm_id)
    stamp = {"CreateTime": qbo_time(now), "LastUpdatedTime": qbo_time(now)}
    realm.table("Account").update({
        "1": {"Id": "1", "Name": "Services", "AccountType": "Income", "Active": True, "SyncToken": "0",
              "MetaData": stamp},
        "2": {"Id": "2", "Name": "Checking", "AccountType": "Bank", "Active": True, "SyncToken": "0",
              "MetaData": stamp},
    })
    realm.table("TaxCode").update({
        "TAX": {"Id": "TAX", "Name": "TAX", "Taxable": True, "Active": True, "SyncToken": "0", "MetaData": stamp},
        "NON": {"Id": "NON", "Name": "NON", "Taxable": False, "Active": True, "SyncToken": "0", "MetaData": stamp},
    })
    realm.table("CompanyInfo")[realm.realm_id] = {
        "Id": realm.realm_id, "CompanyName": "Emulated Company", "Country": "US", "SyncToken": "0",
        "MetaData": stamp}
    set_preferences(realm)
    for _ in range(10):  # ids 1-10 are the base records' namespace
        next(realm.ids)
    return realm


def set_preferences(realm: Realm) -> None:
    realm.table("Preferences")["1"] = {
        "Id": "1", "SyncToken": "0",
        "CurrencyPrefs": {"MultiCurrencyEnabled": realm.multicurrency,
                          "HomeCurrency": {"value": realm.home_currency}},
        "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": realm.country != "US"}}


# A company's tax set-up: (code name, its sales rates as (rate name, percent)); a rate named in
# two codes is one TaxRate (GST in "GST" and in "GST/PST BC"), a code of two rates a tax group.
TaxSetup = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

# QuickBooks Online UK's VAT codes, each its own rate
GB_VAT: TaxSetup = (("20.0% S", (("20.0% S", "20"),)), ("5.0% R", (("5.0% R", "5"),)),
                    ("0.0% Z", (("0.0% Z", "0"),)), ("Exempt", (("Exempt", "0"),)), ("No VAT", (("No VAT", "0"),)),
                    ("0.0% ECS", (("0.0% ECS", "0"),)))  # EC services: the customer accounts for it
# QuickBooks Online Australia's GST codes: GST 10 %, GST free (FRE), GST-free exports (EXP),
# input taxed sales (ITS), not reportable (N-T)
AU_GST: TaxSetup = (("GST", (("GST (sales)", "10"),)), ("FRE", (("GST free", "0"),)),
                    ("EXP", (("GST free export", "0"),)), ("ITS", (("Input taxed", "0"),)),
                    ("N-T", (("Not reportable", "0"),)))
# QuickBooks Online Canada's sales tax codes: GST 5 %, HST Ontario 13 %, PST British Columbia
# 7 %, the GST/PST BC group of both, zero-rated and exempt supplies
CA_GST: TaxSetup = (("GST", (("GST", "5"),)), ("HST ON", (("HST ON", "13"),)), ("PST BC", (("PST BC", "7"),)),
                    ("GST/PST BC", (("GST", "5"), ("PST BC", "7"))), ("Zero-rated", (("Zero-rated", "0"),)),
                    ("Exempt", (("Exempt", "0"),)))
TAX_SETUPS: dict[str, TaxSetup] = {"GB": GB_VAT, "AU": AU_GST, "CA": CA_GST}


def make_vat_company(realm: Realm, country: str = "GB", home_currency: str = "GBP", *,
                     multicurrency: bool = True, codes: TaxSetup | None = None,
                     now: datetime | None = None) -> None:
    """Turn ``realm`` into a company outside the US: its country, home currency, multicurrency
    setting and VAT/GST codes (``codes``, by default its country's set-up in ``TAX_SETUPS``;
    each code with its sales ``TaxRate``s) instead of TAX/NON."""
    realm.country, realm.home_currency, realm.multicurrency = country.upper(), home_currency.upper(), multicurrency
    setup = codes if codes is not None else TAX_SETUPS[realm.country]
    stamp = dict(next(iter(realm.table("Account").values()))["MetaData"]) if now is None else \
        {"CreateTime": qbo_time(now), "LastUpdatedTime": qbo_time(now)}
    realm.tables["TaxCode"], realm.tables["TaxRate"] = {}, {}
    rate_ids: dict[str, str] = {}
    for number, (code_name, rates) in enumerate(setup, start=2):
        for rate_name, percent in rates:
            if rate_name not in rate_ids:
                rate_id = rate_ids[rate_name] = str(len(rate_ids) + 102)
                realm.table("TaxRate")[rate_id] = {
                    "Id": rate_id, "Name": rate_name, "RateValue": percent, "Active": True, "SyncToken": "0",
                    "AgencyRef": {"value": "1"}, "MetaData": stamp}
        code_id = str(number)
        realm.table("TaxCode")[code_id] = {
            "Id": code_id, "Name": code_name, "Taxable": True, "TaxGroup": len(rates) > 1, "Active": True,
            "SalesTaxRateList": {"TaxRateDetail": [
                {"TaxRateRef": {"value": rate_ids[rate_name], "name": rate_name},
                 "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": order} for order, (rate_name, _p) in enumerate(rates)]},
            "PurchaseTaxRateList": {"TaxRateDetail": []}, "SyncToken": "0", "MetaData": stamp}
    realm.table("CompanyInfo")[realm.realm_id]["Country"] = realm.country
    set_preferences(realm)
