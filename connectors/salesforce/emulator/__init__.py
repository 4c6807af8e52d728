"""The Salesforce emulator, split by job:

* ``app``: the aiohttp app (routing, the session check, the rolling API allocation and
  ``Sforce-Limit-Info``, ``limits``, the ``/__emulator/salesforce`` control call; fault injection
  and the shared control routes come from ``connectors.emulation``), ``SalesforceEmulator``
  itself and ``abort_connections``;
* ``oauth``: the token endpoint (the shared ``connectors.emulation_grants`` grant server under
  Salesforce's policy) and the sessions it issues;
* ``org``: the org's records (tables, ids, validation, derived fields, deletes, seeding), over
  ``schema`` (the org's sObjects and fields); ``wire``: errors, ids, datetimes, rendering;
* the REST API, each part on ``org``: ``sobjects`` (CRUD, upsert by external id, replication
  windows), ``composite`` (sObject Collections, ``allOrNone``), ``query`` (query, queryAll,
  queryMore over ``soql``, the SOQL subset), ``describe``.

Callers import the public names from here.
"""

from connectors.salesforce.emulator.app import SalesforceEmulator, abort_connections
from connectors.salesforce.emulator.oauth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REFRESH_TOKEN",
    "SalesforceEmulator",
    "abort_connections",
]
