"""The QuickBooks Online emulator, split by job:

* ``app``: the aiohttp app (routes, bearer check, realm throttles, fault injection, the
  ``/__emulator/`` control calls), ``QuickBooksEmulator`` itself;
* ``api``: the ``/v3/company/{realm}`` handlers (read, write, batch, exchange rate, query, CDC);
* ``records``: create/update/delete/void with ``SyncToken``; ``names`` (customers, items,
  references) and ``transactions`` (documents, totals, payments, balances, exchange rates): the
  ledger rules; ``query``: ``/query`` and ``/cdc``; ``qbql``: the query language parser;
* ``reports``: ``/reports/{name}`` in Intuit's report shape (ProfitAndLoss, CustomerBalance,
  AgedReceivables computed; Intuit's other reports empty);
* ``store``: realms and what a new company holds; ``wire``: constants, faults, response shapes
  and Intuit's entity list (one the emulator does not model answers as an empty company's);
* ``oauth``: Intuit's token endpoint on the shared ``connectors.emulation_grants`` server;
  ``webhooks``: signed deliveries.

Callers import the public names from here.
"""

from connectors.quickbooks.emulator.app import QuickBooksEmulator
from connectors.quickbooks.emulator.oauth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.webhooks import DEFAULT_VERIFIER_TOKEN, sign
from connectors.quickbooks.emulator.wire import DEFAULT_REALM

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REALM",
    "DEFAULT_REFRESH_TOKEN",
    "DEFAULT_VERIFIER_TOKEN",
    "QuickBooksEmulator",
    "Realm",
    "sign",
]
