"""Name-list rules: customers and items (required names, ``DisplayName``/``Name`` unique among
active records, 6240 otherwise), and references to other records (2500 when missing or inactive)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.wire import REQUIRED, Fault

NAME_KEYS = {"Customer": "DisplayName", "Item": "Name"}


def check_ref(realm: Realm, obj: Mapping[str, Any], key: str, entity: str, required: bool) -> None:
    ref = obj.get(key)
    if not ref:
        if required:
            raise Fault(2020, REQUIRED, f"Required parameter {key} is missing in the request", element=key)
        return
    value = str(ref.get("value", "")) if isinstance(ref, Mapping) else ""
    target = realm.table(entity).get(value)
    if target is None or target.get("Active") is False:
        raise Fault(2500, "Invalid Reference Id", f"Invalid Reference Id : {entity} {value!r} does not exist",
                    element=key)
    if isinstance(obj, dict):  # Intuit's references carry the target's name beside its Id
        obj[key] = {**ref, "value": value, "name": ref_name(entity, target)}


def ref_name(entity: str, target: Mapping[str, Any]) -> str:
    """The ``name`` of a reference to ``target``, as Intuit fills it in."""
    for key in ("DisplayName", "FullyQualifiedName", "Name"):
        if target.get(key):
            return str(target[key])
    return str(target.get("Id", ""))


# ``CurrencyRef.name`` as Intuit sends it (its CompanyCurrency names); others: the code itself
CURRENCY_NAMES = {"USD": "United States Dollar", "EUR": "Euro", "GBP": "British Pound Sterling",
                  "AUD": "Australian Dollar", "CAD": "Canadian Dollar", "NZD": "New Zealand Dollar",
                  "JPY": "Japanese Yen", "CHF": "Swiss Franc", "INR": "Indian Rupee"}


def currency_ref(code: str) -> dict[str, str]:
    return {"value": code, "name": CURRENCY_NAMES.get(code, code)}


def customer(realm: Realm, obj: dict[str, Any]) -> dict[str, Any]:
    name = obj.get("DisplayName") or obj.get("CompanyName") or " ".join(
        p for p in (obj.get("GivenName"), obj.get("FamilyName")) if p)
    if not name:
        raise Fault(2020, REQUIRED, "Required parameter DisplayName is missing in the request",
                    element="DisplayName")
    if ":" in name:
        raise Fault(2050, "Invalid String", "DisplayName cannot contain a colon (:)", element="DisplayName")
    obj["DisplayName"] = name
    obj.setdefault("Active", True)
    if obj["Active"]:
        _unique_name(realm, "Customer", "DisplayName", obj)
    elif not str(name).endswith("(deleted)"):
        obj["DisplayName"] = f"{name} (deleted)"
    obj["FullyQualifiedName"] = obj["DisplayName"]
    currency = str((obj.get("CurrencyRef") or {}).get("value") or realm.home_currency).upper()
    obj["CurrencyRef"] = currency_ref(currency)
    obj.setdefault("Balance", Decimal(0))
    return obj


def item(realm: Realm, obj: dict[str, Any]) -> dict[str, Any]:
    if not obj.get("Name"):
        raise Fault(2020, REQUIRED, "Required parameter Name is missing in the request", element="Name")
    obj.setdefault("Active", True)
    obj.setdefault("Type", "Service")
    if obj["Active"]:
        _unique_name(realm, "Item", "Name", obj)
    if obj["Type"] in ("Service", "NonInventory"):
        obj.setdefault("IncomeAccountRef", {"value": "1", "name": "Services"})
        check_ref(realm, obj, "IncomeAccountRef", "Account", required=True)
    obj["FullyQualifiedName"] = obj["Name"]
    return obj


def _fold(name: Any) -> str:
    return " ".join(str(name or "").split()).casefold()


def _unique_name(realm: Realm, entity: str, key: str, obj: Mapping[str, Any]) -> None:
    holder = realm.names.setdefault(entity, {}).get(_fold(obj[key]))
    if holder is not None and holder != obj["Id"]:
        raise Fault(6240, "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another {entity.lower()}, vendor or employee "
                    f"is already using this name. Please use a different name. Id={holder}",
                    element=key)


def index_name(realm: Realm, entity: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
    """Keep ``realm.names`` on the active holder of each name after a save."""
    key = NAME_KEYS.get(entity)
    if key is None:
        return
    index = realm.names.setdefault(entity, {})
    if old is not None and index.get(_fold(old.get(key))) == old["Id"]:
        del index[_fold(old.get(key))]
    if new.get("Active", True):
        index[_fold(new.get(key))] = new["Id"]
