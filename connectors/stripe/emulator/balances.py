"""The Stripe emulator's customer invoice balance: the ledger of customer balance transactions
(``/v1/customers/{id}/balance_transactions``) and where Stripe writes to it itself.

Stripe facts kept (docs "Customer invoice balance", the customer balance transaction object): a
negative amount is a credit to the customer, a positive one a debit; ``ending_balance`` is the
balance after the transaction, and ``customer.balance`` is the running sum. Stripe adds one
- when you create one (``POST``: type ``adjustment``);
- when a credit note credits the customer's balance (``credit_amount``: type ``credit_note``,
  ``-credit_amount``, named by the note's ``customer_balance_transaction``);
- when an invoice is finalized while the customer has a balance: it applies toward the invoice
  (type ``applied_to_invoice``): a credit lowers ``amount_due`` (down to 0, and an invoice owing
  nothing is paid from the balance at once), a debit raises it; ``starting_balance`` and
  ``ending_balance`` on the invoice say what was applied;
- when such an invoice is voided, what it took is given back (type ``unapplied_from_invoice``).

Emulator choices (not Stripe facts): the balance is kept per currency and ``customer.balance``
shows the one in the customer's currency (set by its first balance transaction when it has
none); voiding a credit note that credited the balance takes the credit back with a second
``credit_note`` transaction of the opposite sign.
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import (
    as_int,
    check_known,
    created_filter,
    invalid,
    merge_metadata,
    missing,
    paginate,
)


class CustomerBalanceMixin(StripeStore):
    """Customer balance transactions and the invoice balance they sum to."""

    def balance_entry(self, customer_id: str, amount: int, currency: str, type_: str, *,
                      credit_note: str | None = None, invoice: str | None = None,
                      description: str | None = None, metadata: Any = None) -> dict[str, Any]:
        """One transaction on the customer's invoice balance, and the balance moved by it."""
        cus = self.get("customer", customer_id, "customer")
        currency = currency.lower()
        balances: dict[str, int] = cus.setdefault("_balances", {})
        if cus.get("currency") and cus["currency"] == currency:
            balances.setdefault(currency, int(cus.get("balance") or 0))
        ending = balances.get(currency, 0) + amount
        balances[currency] = ending
        entry = self.base("cbtxn", "customer_balance_transaction", amount=amount, checkout_session=None,
                          credit_note=credit_note, currency=currency, customer=customer_id,
                          customer_account=None, description=description, ending_balance=ending,
                          invoice=invoice, metadata=merge_metadata({}, metadata), type=type_)
        self._store("customer_balance_transaction", entry)
        changes: dict[str, Any] = {}
        if not cus.get("currency"):
            changes["currency"] = currency
        if changes.get("currency", cus.get("currency")) == currency:
            changes["balance"] = ending
        self._update("customer", cus, changes)
        return entry

    def customer_balance(self, customer_id: str, currency: str) -> int:
        cus = self.table("customer").get(customer_id) or {}
        balances = cus.get("_balances") or {}
        if currency in balances:
            return int(balances[currency])
        return int(cus.get("balance") or 0) if cus.get("currency") == currency else 0

    # ------------------------------------------------------------------ invoices

    def apply_customer_balance(self, inv: dict[str, Any]) -> None:
        """At finalization: the customer's balance in the invoice's currency applies toward it
        (a credit at most up to what the invoice asks for, a debit whole)."""
        start = self.customer_balance(inv["customer"], inv["currency"])
        owed = max(int(inv["total"]) - int(inv["pre_payment_credit_notes_amount"]), 0)
        applied = max(start, -owed) if start < 0 else start  # taken off (credit) or added (debit)
        inv["starting_balance"], inv["ending_balance"] = start, start - applied
        inv["_balance_applied"] = applied  # recompute: amount_due = total + applied
        if applied:
            self.balance_entry(inv["customer"], -applied, inv["currency"], "applied_to_invoice",
                               invoice=inv["id"])

    def unapply_customer_balance(self, inv: dict[str, Any]) -> None:
        """A voided invoice gives back the balance it took."""
        applied = int(inv.get("_balance_applied") or 0)
        if applied:
            self.balance_entry(inv["customer"], applied, inv["currency"], "unapplied_from_invoice",
                               invoice=inv["id"])
            inv["_balance_applied"] = 0

    # ------------------------------------------------------------------ credit notes

    def credit_note_to_balance(self, note: dict[str, Any], credit_amount: int) -> None:
        """A credit note's ``credit_amount`` credits the customer's balance."""
        if credit_amount > 0:
            entry = self.balance_entry(note["customer"], -credit_amount, note["currency"], "credit_note",
                                       credit_note=note["id"])
            note["customer_balance_transaction"] = entry["id"]

    def credit_note_voided_from_balance(self, note: dict[str, Any]) -> None:
        entry_id = note.get("customer_balance_transaction")
        entry = self.table("customer_balance_transaction").get(str(entry_id)) if entry_id else None
        if entry is not None:
            self.balance_entry(note["customer"], -int(entry["amount"]), note["currency"], "credit_note",
                               credit_note=note["id"])

    # ------------------------------------------------------------------ API

    def create_balance_entry(self, customer_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("amount", "currency", "description", "metadata"))
        amount = as_int(params, "amount")
        if amount is None:
            raise invalid("Missing required param: amount.", "amount", code="parameter_missing")
        if not params.get("currency"):
            raise invalid("Missing required param: currency.", "currency", code="parameter_missing")
        currency = str(params["currency"]).lower()
        cus = self.get("customer", customer_id, "customer")
        if cus.get("currency") and cus["currency"] != currency:
            raise invalid(f"The currency of this customer balance transaction ({currency}) must match the "
                          f"customer's currency ({cus['currency']}).", "currency")
        return self.render(self.balance_entry(customer_id, amount, currency, "adjustment",
                                              description=params.get("description") or None,
                                              metadata=params.get("metadata")))

    def _entry(self, customer_id: str, entry_id: str) -> dict[str, Any]:
        self.get("customer", customer_id, "customer")
        entry = self.table("customer_balance_transaction").get(entry_id)
        if entry is None or entry["customer"] != customer_id:
            raise missing("customer balance transaction", entry_id)
        return entry

    def retrieve_balance_entry(self, customer_id: str, entry_id: str) -> dict[str, Any]:
        return self.render(self._entry(customer_id, entry_id))

    def update_balance_entry(self, customer_id: str, entry_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("description", "metadata"))  # the amount of a ledger entry never changes
        entry = self._entry(customer_id, entry_id)
        if "description" in params:
            entry["description"] = params["description"] or None
        if "metadata" in params:
            entry["metadata"] = merge_metadata(entry["metadata"], params["metadata"])
        return self.render(entry)

    def list_balance_entries(self, customer_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("created", "ending_before", "invoice", "limit", "starting_after"))
        self.get("customer", customer_id, "customer")
        check = created_filter(params)
        invoice = params.get("invoice")
        items = [e for e in self.live("customer_balance_transaction")
                 if e["customer"] == customer_id and check(e) and (not invoice or e["invoice"] == invoice)]
        envelope = paginate(items, params, f"/v1/customers/{customer_id}/balance_transactions")
        envelope["data"] = [self.render(e) for e in envelope["data"]]
        return envelope

    def add_balance_routes(self, router: Any, route: Any) -> None:
        path = "/v1/customers/{id}/balance_transactions"
        route(router, "GET", path, lambda p, m: self.list_balance_entries(m["id"], p))
        route(router, "POST", path, lambda p, m: self.create_balance_entry(m["id"], p))
        route(router, "GET", path + "/{txn}", lambda p, m: self.retrieve_balance_entry(m["id"], m["txn"]))
        route(router, "POST", path + "/{txn}", lambda p, m: self.update_balance_entry(m["id"], m["txn"], p))
