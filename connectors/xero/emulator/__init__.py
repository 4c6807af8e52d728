"""The Xero emulator, split by job:

* ``app``: the aiohttp app (routes, bearer/tenant checks, rate limits, reads, batched writes,
  control calls), ``XeroEmulator`` itself;
* ``store``: tenants, records, saving and webhook events; ``where``: the query language;
  ``xml_wire``: XML request bodies and answers (Xero takes and gives XML beside JSON);
* ``contacts``, ``documents`` (invoices, credit notes), ``payments`` (payments, allocations):
  the ledger rules; ``validation``: field parsing and the per-item error;
* ``org_lists``: the collections an organisation answers though billhub keeps nothing in them
  (empty lists of the spec's shape, the default branding theme and the subscriber);
* ``oauth``: the token endpoint (the shared grant server under Xero's policy) and its
  control call; ``webhooks``: signed deliveries.

Callers import the public names from here.
"""

from connectors.xero.emulator.app import Limits, XeroEmulator
from connectors.xero.emulator.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
from connectors.xero.emulator.store import DEFAULT_TENANT
from connectors.xero.emulator.webhooks import DEFAULT_WEBHOOK_KEY

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REFRESH_TOKEN",
    "DEFAULT_TENANT",
    "DEFAULT_WEBHOOK_KEY",
    "Limits",
    "XeroEmulator",
]
