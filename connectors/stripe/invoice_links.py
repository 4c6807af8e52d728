"""Which invoice a payment paid, from Stripe's Invoice Payments, for the payment and refund reads.

Since API version 2025-03-31 a PaymentIntent does not name its invoice (``payment_intent.invoice``
is gone; ``payment_details.order_reference`` is whatever the business put there): the link is an
``invoice_payment`` (``GET /v1/invoice_payments``: ``invoice``, ``payment.payment_intent``). The
connector adds the invoice to each payment and refund record it reads (``mapping.stripe.INVOICE_KEY``);
an object in an older version's shape names it itself (``invoice``), and is taken as it is.

Reads stay at about one request per page of payments, never one per payment in a bulk read:

* a page of a full list with more than a few intents this process has not seen linked loads
  every invoice payment once (``limit=100`` pages, newest first) into a map intent -> invoice;
  the link never changes once made, so the map holds for the life of the connector;
* after that, a read (a full or incremental read, a batch of webhook events) that meets an intent
  the map does not know lists only the invoice payments created since the newest one seen (less
  the events overlap, for late-listed ones), once per read: a payment made since is found, and an
  intent still unknown has no invoice (a payment not made through an invoice);
* before any load (a short-lived process reading a few changes), each unknown intent is one
  filtered request (``payment[type]=payment_intent&payment[payment_intent]=…``), up to
  ``COLD_QUERIES`` of them; past that the whole map is loaded.

An intent several invoice payments name (a declined attempt canceled, then paid by another
intent: each intent has its own) is linked to the invoice of its paid one when there is one.
Errors are raised, never taken for "no invoice": a payment stored without its invoice would be
booked unapplied.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.stripe.streams import ListPage
from mapping.stripe import INVOICE_KEY

PATH = "/v1/invoice_payments"
COLD_QUERIES = 100  # single look-ups before the whole map is loaded instead
BULK_UNKNOWN = 5  # unknown intents on one page of a full list that make the map load


def _intent_of(entity_type: str, data: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The payment intent a payment or refund record stands on, and whether the object names its
    invoice itself (an older API version's ``invoice`` field)."""
    pi = data if entity_type == "payment" else data.get("payment_intent")
    if isinstance(pi, Mapping):
        return (str(pi["id"]) if pi.get("id") else None), "invoice" in pi
    return (str(pi) if isinstance(pi, str) and pi else None), False


class InvoiceLinks:
    """Payment intent id -> invoice id, read from ``/v1/invoice_payments`` (thread-safe: webhook
    batches re-read objects side by side)."""

    def __init__(self, list_page: Callable[[str, dict[str, Any]], ListPage], *, overlap_seconds: int) -> None:
        self._list = list_page
        self.overlap = overlap_seconds
        self._lock = threading.Lock()
        self._invoice: dict[str, str] = {}
        self._paid: set[str] = set()  # intents whose link is a paid invoice payment
        self._loaded = False
        self._newest = 0  # ``created`` of the newest invoice payment listed, once loaded
        self._topped_up = False  # in this read
        self._single = 0  # look-ups one by one so far (before a load)

    def new_read(self) -> None:
        """A read begins: invoice payments made since the last one may be listed again (once)."""
        with self._lock:
            self._topped_up = False

    def annotate(self, entity_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """A payment or refund record with the invoice its payment intent paid, if any."""
        pi, names_itself = _intent_of(entity_type, data)
        if pi is None or names_itself:
            return data
        invoice = self.invoice_of(pi)
        return {**data, INVOICE_KEY: invoice} if invoice else data

    def prepare_page(self, entity_type: str, objects: Sequence[Mapping[str, Any]]) -> None:
        """A page of a full list is about to be read: load the whole map rather than look its
        intents up one by one."""
        if entity_type not in ("payment", "refund"):
            return
        with self._lock:
            if self._loaded:
                return
            unknown = {pi for pi, itself in (_intent_of(entity_type, o) for o in objects)
                       if pi is not None and not itself and pi not in self._invoice}
            if len(unknown) > BULK_UNKNOWN:
                self._load()

    def invoice_of(self, pi: str) -> str | None:
        with self._lock:
            if pi in self._invoice:
                return self._invoice[pi]
            if not self._loaded and self._single >= COLD_QUERIES:
                self._load()
            if self._loaded:
                if not self._topped_up:
                    self._top_up()
                return self._invoice.get(pi)
            self._single += 1
        page = self._list(PATH, {"payment": {"type": "payment_intent", "payment_intent": pi}, "limit": 100})
        with self._lock:
            self._take(page.data)
            return self._invoice.get(pi)

    # -- under the lock ------------------------------------------------------------------------

    def _load(self) -> None:
        self._pages({})
        self._loaded = self._topped_up = True

    def _top_up(self) -> None:
        self._pages({"created": {"gte": max(self._newest - self.overlap, 0)}})
        self._topped_up = True

    def _pages(self, params: dict[str, Any]) -> None:
        after: str | None = None
        while True:
            query = {**params, "limit": 100, **({"starting_after": after} if after else {})}
            page = self._list(PATH, query)
            self._take(page.data)
            if not page.has_more or not page.data:
                return
            after = str(page.data[-1]["id"])

    def _take(self, links: Sequence[Mapping[str, Any]]) -> None:
        for link in links:
            payment = link.get("payment")
            pi = payment.get("payment_intent") if isinstance(payment, Mapping) else None
            pi = pi.get("id") if isinstance(pi, Mapping) else pi
            invoice = link.get("invoice")
            invoice = invoice.get("id") if isinstance(invoice, Mapping) else invoice
            if isinstance(link.get("created"), int):
                self._newest = max(self._newest, int(link["created"]))
            if not isinstance(pi, str) or not isinstance(invoice, str) or pi in self._paid:
                continue
            self._invoice[pi] = invoice
            if link.get("status") == "paid":
                self._paid.add(pi)
