"""The emulated Stripe account itself: ``GET /v1/account``, ``GET /v1/accounts/{id}``, the
``Stripe-Account`` header, and ``GET /v1/accounts`` (connected accounts: none).

A secret key belongs to one account; ``GET /v1/account`` answers it and ``GET /v1/accounts/{id}``
answers it for its own id (the ``account`` schema of Stripe's spec: ``business_profile``,
``capabilities``, ``settings.dashboard`` ... for a US standard account settling in USD, as the
emulator's account does, see ``money.FX_TO_USD``). The emulator is no Connect platform, so any
other account id, in the path or in the ``Stripe-Account`` header, is refused as Stripe refuses an
account the key has no access to: 403 ``account_invalid``. Sync tools (tap-stripe) retrieve the
account to check the key and send its id as ``Stripe-Account`` on every call.

The account is a pure function of ``account_id``, ``account_name`` and ``account_email`` (set
them on an emulator to play another account); it is created at a fixed time long before any
object, and nothing about it changes, so it emits no events.
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import StripeAPIError, paginate

ACCOUNT_CREATED = 1546300800  # 2019-01-01T00:00:00Z: before anything the emulator holds


class AccountsMixin(StripeStore):
    """The one account the emulator's keys belong to."""

    account_id: str = "acct_1BillhubEmul0001"
    account_name: str = "Emulated Co"  # as invoices name it (account_name)
    account_email: str = "finance@billhub-emulator.test"

    def account(self) -> dict[str, Any]:
        return {
            "id": self.account_id, "object": "account",
            "business_profile": {
                "annual_revenue": None, "estimated_worker_count": None, "mcc": "5734",
                "name": self.account_name, "product_description": None, "support_address": None,
                "support_email": self.account_email, "support_phone": None, "support_url": None,
                "url": None,
            },
            "business_type": "company",
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": True, "country": "US", "created": ACCOUNT_CREATED,
            "default_currency": "usd", "details_submitted": True, "email": self.account_email,
            "metadata": {}, "payouts_enabled": True,
            "requirements": {"alternatives": [], "current_deadline": None, "currently_due": [],
                             "disabled_reason": None, "errors": [], "eventually_due": [],
                             "past_due": [], "pending_verification": []},
            "settings": {
                "bacs_debit_payments": {"display_name": None, "service_user_number": None},
                "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
                "card_payments": {"decline_on": {"avs_failure": False, "cvc_failure": False},
                                  "statement_descriptor_prefix": None,
                                  "statement_descriptor_prefix_kana": None,
                                  "statement_descriptor_prefix_kanji": None},
                "dashboard": {"display_name": self.account_name, "timezone": "Etc/UTC"},
                "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": "offer"},
                "payments": {"statement_descriptor": self.account_name.upper()[:22],
                             "statement_descriptor_kana": None, "statement_descriptor_kanji": None},
                "payouts": {"debit_negative_balances": True,
                            "schedule": {"delay_days": 2, "interval": "daily"},
                            "statement_descriptor": None},
                "sepa_debit_payments": {},
            },
            "tos_acceptance": {"date": ACCOUNT_CREATED, "ip": None, "user_agent": None},
            "type": "standard",
        }

    def _no_access(self, account_id: str) -> StripeAPIError:
        return StripeAPIError(
            403, f"The provided key does not have access to account '{account_id}' (or that account "
            "does not exist). Application access may have been revoked.", code="account_invalid")

    def retrieve_account(self, account_id: str | None = None) -> dict[str, Any]:
        if account_id is not None and account_id != self.account_id:
            raise self._no_access(account_id)
        return self.account()

    def check_stripe_account(self, header: str | None) -> None:
        """A ``Stripe-Account`` header names the key's own account or is refused."""
        if header and header.strip() != self.account_id:
            raise self._no_access(header.strip())

    def list_connected_accounts(self, params: Params) -> dict[str, Any]:
        return paginate([], params, "/v1/accounts")

    def add_account_routes(self, router: Any, r: Any) -> None:
        r(router, "GET", "/v1/account", lambda p, m: self.retrieve_account())
        r(router, "GET", "/v1/accounts", lambda p, m: self.list_connected_accounts(p))
        r(router, "GET", "/v1/accounts/{id}", lambda p, m: self.retrieve_account(m["id"]))
