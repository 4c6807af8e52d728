"""The write core every route shares (the API, batch items, seeding, edits behind the hub's
back): create, full and sparse update with ``SyncToken`` (stale -> 5010; a voided transaction
refuses updates, 6000), delete and void of transactions, deactivation of names. A mutation is
stamped with the emulator clock as it stands: several may share a second, as Intuit's do."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.emulation import EmulatorClock
from connectors.quickbooks.emulator.balances import (
    documents,
    keep_read_only,
    move_customer_balances,
    open_amounts,
)
from connectors.quickbooks.emulator.banking import BANKING, banking, move_balances
from connectors.quickbooks.emulator.names import customer, index_name, item
from connectors.quickbooks.emulator.store import Realm, new_company
from connectors.quickbooks.emulator.transactions import (
    apply_payment,
    put_exchange_rate,
    transaction,
)
from connectors.quickbooks.emulator.wire import (
    BUSINESS_RULE,
    NAME_LISTS,
    READ_ONLY,
    TRANSACTIONS,
    Fault,
    clean,
    money,
    qbo_time,
)


class RecordsMixin:
    clock: EmulatorClock
    realms: dict[str, Realm]

    def realm(self, realm_id: str) -> Realm:
        """The company ``realm_id``, opened with its base records on first use."""
        if realm_id not in self.realms:
            self.realms[realm_id] = new_company(realm_id, self.clock.now())
        return self.realms[realm_id]

    def stamp(self) -> datetime:
        """A mutation's time: the clock's, no tick of its own (Intuit stamps to the second, and
        writes in one second share it; readers must take ties at a second boundary)."""
        return self.clock.now()

    def put_exchange_rate(self, realm: Realm, rate: Mapping[str, Any]) -> None:
        put_exchange_rate(realm, rate, self.clock.now())

    def save(self, realm: Realm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create, or (with ``Id``) full/sparse update. Raises ``Fault``."""
        if entity in READ_ONLY:
            raise Fault(6000, BUSINESS_RULE, f"{entity} cannot be written through this operation")
        body = clean(body)
        body.pop("domain", None)
        sparse = bool(body.pop("sparse", False))
        table = realm.table(entity)
        ext_id = str(body["Id"]) if body.get("Id") else None
        existing = table.get(ext_id) if ext_id else None
        if ext_id and existing is None:
            raise Fault(610, "Object Not Found", f"Object Not Found : Something you're trying to use has been "
                        f"made inactive. Check the fields with accounts, customers, items, vendors or employees. "
                        f"{entity} Id={ext_id}")
        if existing is not None:
            if entity in TRANSACTIONS and str(existing.get("PrivateNote") or "").startswith("Voided"):
                # QuickBooks Online has no un-void: a voided transaction keeps its zero amounts
                # (it is re-entered as a new one). An update must not bring the amounts back.
                raise Fault(6000, BUSINESS_RULE, f"{entity} {ext_id} is voided and cannot be changed; "
                            "enter a new transaction instead")
            if str(body.get("SyncToken", "")) != existing["SyncToken"]:
                raise Fault(5010, "Stale Object Error",
                            f"Stale Object Error : You and {entity.lower()} were working on this at the same "
                            f"time. {entity.lower()} finished before you did, so your work was not saved.")
            merged = {**existing, **body} if sparse else {**body, "Id": ext_id}
            merged["MetaData"] = dict(existing["MetaData"])
        else:
            merged = {**body, "Id": str(next(realm.ids))}
            merged["MetaData"] = {}
        obj = self._normalise(realm, entity, merged, existing)
        if entity == "Customer":
            keep_read_only(existing, obj)
        docs = documents(entity, existing, obj)  # whose open amounts this write may move
        owed = open_amounts(realm, docs)
        stamp = qbo_time(self.stamp())
        obj["SyncToken"] = str(int(existing["SyncToken"]) + 1) if existing else "0"
        obj["MetaData"]["LastUpdatedTime"] = stamp
        obj["MetaData"].setdefault("CreateTime", stamp)
        obj["domain"], obj["sparse"] = "QBO", False
        if entity == "Payment":
            if existing is not None:
                apply_payment(realm, existing, +1, self.clock.now())
            apply_payment(realm, obj, -1, self.clock.now())
        index_name(realm, entity, existing, obj)
        move_balances(realm, entity, existing, obj)
        realm.store(entity, obj)
        move_customer_balances(realm, owed, open_amounts(realm, docs))
        return obj

    def _normalise(self, realm: Realm, entity: str, obj: dict[str, Any],
                   existing: Mapping[str, Any] | None) -> dict[str, Any]:
        if entity == "Customer":
            return customer(realm, obj)
        if entity == "Item":
            return item(realm, obj)
        if entity in BANKING:
            return banking(realm, entity, obj, self.clock.now())
        if entity in TRANSACTIONS:
            return transaction(realm, entity, obj, existing, self.clock.now())
        obj.setdefault("Active", True)
        return obj

    def _current(self, realm: Realm, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The transaction a delete or void names, at the ``SyncToken`` it names."""
        current = realm.table(entity).get(str(body.get("Id", "")))
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {body.get('Id')} not found")
        if str(body.get("SyncToken", "")) != current["SyncToken"]:
            raise Fault(5010, "Stale Object Error", "Stale Object Error : the object was changed")
        return current

    def delete(self, realm: Realm, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if entity not in TRANSACTIONS:
            raise Fault(6000, BUSINESS_RULE, f"You can't delete a {entity}; make it inactive instead (Active=false)")
        current = self._current(realm, entity, body)
        if entity == "Invoice" and money(current.get("Balance")) != money(current.get("TotalAmt")):
            raise Fault(6000, BUSINESS_RULE,
                        "This invoice has payments applied; delete or unapply the payments first")
        docs = documents(entity, current)
        owed = open_amounts(realm, docs)
        if entity == "Payment":
            apply_payment(realm, current, +1, self.clock.now())
        move_balances(realm, entity, current, None)
        realm.remove(entity, current["Id"])
        move_customer_balances(realm, owed, open_amounts(realm, docs))
        realm.tombstones.append((entity, current["Id"], self.stamp()))
        return {"Id": current["Id"], "status": "Deleted", "domain": "QBO"}

    def void(self, realm: Realm, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if entity not in TRANSACTIONS:
            raise Fault(6000, BUSINESS_RULE, f"{entity} cannot be voided")
        current = self._current(realm, entity, body)
        docs = documents(entity, current)
        owed = open_amounts(realm, docs)
        if entity == "Payment":
            apply_payment(realm, current, +1, self.clock.now())
        voided = dict(current)
        note = current.get("PrivateNote", "")
        voided["PrivateNote"] = "Voided" + (f" - {note}" if note and not note.startswith("Voided") else "")
        voided["Line"] = [{**line, "Amount": Decimal(0)} for line in current.get("Line", [])]
        for key in ("TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "UnappliedAmt", "RemainingCredit"):
            if key in voided:
                voided[key] = Decimal(0)
        if "TxnTaxDetail" in voided:
            voided["TxnTaxDetail"] = {**voided["TxnTaxDetail"], "TotalTax": Decimal(0)}
        voided["SyncToken"] = str(int(current["SyncToken"]) + 1)
        voided["MetaData"] = {**current["MetaData"], "LastUpdatedTime": qbo_time(self.stamp())}
        move_balances(realm, entity, current, voided)
        realm.store(entity, voided)
        move_customer_balances(realm, owed, open_amounts(realm, docs))
        return voided

    def edit(self, realm: Realm, entity: str, ext_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """A sparse change made directly in QuickBooks (a person in the UI)."""
        current = realm.table(entity).get(ext_id)
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {ext_id} not found")
        return self.save(realm, entity, {**changes, "Id": ext_id, "SyncToken": current["SyncToken"],
                                         "sparse": True})

    def remove(self, realm: Realm, entity: str, ext_id: str) -> dict[str, Any]:
        """Delete a transaction, or deactivate a name, directly in QuickBooks."""
        current = realm.table(entity).get(ext_id)
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {ext_id} not found")
        if entity in NAME_LISTS:
            return self.edit(realm, entity, ext_id, {"Active": False})
        return self.delete(realm, entity, {"Id": ext_id, "SyncToken": current["SyncToken"]})
