"""Webhook endpoints: Stripe's registered through its API, QuickBooks' and Xero's as instructions.

Stripe (``POST /v1/webhook_endpoints``): the endpoint ``<public_url>/webhooks/<connection>`` with
exactly the event types the connector reads (``connectors.stripe.webhooks.webhook_events``, from
its streams). An endpoint already registered with that URL is updated (events, enabled), never
duplicated. Stripe shows a signing secret only in the create answer; it is stored encrypted in the
state store (credentials row ``webhook:<connection>``), where the connector reads it when the
config sets no ``webhook_secret``. Updating an endpoint whose secret was never stored cannot learn
it: the output says where to copy it from.

QuickBooks and Xero register webhooks only in their developer portals: the URL, the entities or
categories to tick, and the key to put in the config are printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.stripe.webhooks import secret_key, webhook_events
from connectors.xero import webhooks as xero_webhooks
from mapping.quickbooks import CANONICAL_TYPES
from state.store import StateStore


@dataclass(frozen=True)
class StripeEndpoint:
    endpoint_id: str
    action: str  # "created" | "updated"
    events: list[str]
    secret_note: str


def register_stripe(connector: Any, url: str, store: StateStore) -> StripeEndpoint:
    """Create or update the Stripe endpoint for ``url``; store the signing secret when created."""
    events = webhook_events()
    params: dict[str, Any] = {"enabled_events": events}
    existing = None
    starting_after: str | None = None
    while existing is None:  # list every endpoint (Stripe allows 16 per account in test mode)
        page_params: dict[str, Any] = {"limit": 100, **({"starting_after": starting_after} if starting_after else {})}
        page = connector.api.call(lambda c, p=page_params: c.v1.webhook_endpoints.list(params=p))
        existing = next((e for e in page.data if e["url"] == url), None)
        if not page.has_more or not page.data:
            break
        starting_after = str(page.data[-1]["id"])
    key = secret_key(connector.name)
    if existing is not None:
        endpoint_id = str(existing["id"])
        connector.api.call(lambda c: c.v1.webhook_endpoints.update(endpoint_id, params={**params, "disabled": False}))
        with store.transaction() as tx:
            stored = tx.load_credentials(key) or {}
        if stored.get("endpoint_id") == endpoint_id:
            note = "signing secret already stored (encrypted) in the state store"
        else:
            note = ("Stripe shows an endpoint's signing secret only when it is created: copy it from Dashboard > "
                    f"Developers > Webhooks > {endpoint_id} > Signing secret into webhook_secret of "
                    f"[connections.{connector.name}]")
        return StripeEndpoint(endpoint_id, "updated", events, note)
    created = connector.api.call(lambda c: c.v1.webhook_endpoints.create(params={
        **params, "url": url, "description": f"billhub connection {connector.name}"}))
    endpoint_id, secret = str(created["id"]), str(created["secret"])
    with store.transaction() as tx:
        tx.save_credentials(key, {"webhook_secret": secret, "endpoint_id": endpoint_id})
    return StripeEndpoint(endpoint_id, "created", events,
                          "signing secret stored (encrypted) in the state store; the connector uses it "
                          "while the config sets no webhook_secret")


def ledger_instructions(system: str, connection: str, url: str) -> str:
    """What to do by hand in QuickBooks' or Xero's developer portal for this connection."""
    if system == "quickbooks":
        entities = ", ".join(sorted(CANONICAL_TYPES))
        return (f"{connection} (quickbooks): in developer.intuit.com > My Apps > your app > Webhooks "
                f"(Production or Development), set the endpoint URL to {url}, tick these entities with "
                f"Create, Update, Delete, Merge and Void: {entities}; save, copy the Verifier Token and set "
                f"webhook_verifier_token in [connections.{connection}] (e.g. \"${{QBO_WEBHOOK_VERIFIER}}\").")
    categories = ", ".join(sorted(xero_webhooks.CATEGORY_TO_ENTITY))
    return (f"{connection} (xero): in developer.xero.com > My Apps > your app > Webhooks, set the delivery URL "
            f"to {url}, tick the event categories {categories}, save, copy the Webhooks key and set "
            f"webhook_key in [connections.{connection}] (e.g. \"${{XERO_WEBHOOK_KEY}}\"), start `hub run`, then "
            "press Send 'Intent to receive' (billhub answers Xero's signed check).")
