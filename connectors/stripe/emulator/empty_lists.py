"""List endpoints of things the emulated account has none of, answered as an empty Stripe
account answers them: the list envelope (``object: list``, ``data: []``, ``has_more: false``,
the list's ``url``), never an error. Sync tools (airbyte-source-stripe, tap-stripe) list every
kind their catalog names, and a 404 where Stripe lists nothing either fails their stream or,
where they ignore errors, hides a real failure among expected ones.

Kept empty because billhub neither writes nor reads them: Connect (application fees, external
accounts, persons), Checkout, Issuing, Radar (reviews, early fraud warnings), setup intents,
subscription schedules, top-ups, shipping rates, files and file links. Each list takes the
parameters Stripe's spec gives it (``strict.py``); a list under an object (an account, a
subscription item) answers 404 or 403 for an object the account does not have, as Stripe does.

``GET /v1/subscription_items/{id}/usage_record_summaries`` is legacy usage billing, gone from the
current spec since 2025-03-31 (Basil); requests pinned to older versions (airbyte-source-stripe
sends 2022-11-15) still list it, and the emulator keeps no usage records.
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.accounts import AccountsMixin
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import missing, paginate

EMPTY_LISTS = (
    "/v1/application_fees", "/v1/checkout/sessions", "/v1/file_links", "/v1/files",
    "/v1/issuing/authorizations", "/v1/issuing/cardholders", "/v1/issuing/cards",
    "/v1/issuing/transactions", "/v1/radar/early_fraud_warnings", "/v1/reviews", "/v1/setup_intents",
    "/v1/shipping_rates", "/v1/subscription_schedules", "/v1/topups",
)


class EmptyListsMixin(AccountsMixin):
    """Empty lists of the kinds the account has none of."""

    def empty_list(self, params: Params, url: str) -> dict[str, Any]:
        return paginate([], params, url)

    def add_empty_list_routes(self, router: Any, r: Any) -> None:
        for path in EMPTY_LISTS:
            r(router, "GET", path, lambda p, m, url=path: self.empty_list(p, url))
        r(router, "GET", "/v1/accounts/{id}/external_accounts", lambda p, m: self._own_account_list(
            m["id"], p, "external_accounts"))
        r(router, "GET", "/v1/accounts/{id}/persons", lambda p, m: self._own_account_list(m["id"], p, "persons"))
        r(router, "GET", "/v1/subscription_items/{id}/usage_record_summaries",
          lambda p, m: self._usage_record_summaries(m["id"], p))

    def _own_account_list(self, account_id: str, params: Params, what: str) -> dict[str, Any]:
        self.retrieve_account(account_id)  # another account: 403
        return paginate([], params, f"/v1/accounts/{account_id}/{what}")

    def _usage_record_summaries(self, item_id: str, params: Params) -> dict[str, Any]:
        found = any(str(item.get("id")) == item_id for sub in self.live("subscription")
                    for item in (sub.get("items") or {}).get("data") or [])
        if not found:
            raise missing("subscription_item", item_id)
        return paginate([], params, f"/v1/subscription_items/{item_id}/usage_record_summaries")
