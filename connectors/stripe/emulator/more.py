"""The Stripe emulator's further endpoints a real account serves, in one piece for ``app``:
customer balance transactions (``balances``), payment methods (``payment_methods``), payment
intents and charges created through the API (``intents``), disputes and transfers
(``disputes``), credit note lines and the switchable realism (``realism``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.stripe.emulator.balances import CustomerBalanceMixin
from connectors.stripe.emulator.intents import IntentsMixin
from connectors.stripe.emulator.realism import RealismMixin


class MoreEndpointsMixin(RealismMixin, IntentsMixin, CustomerBalanceMixin):
    """Routes of the parts above."""

    def add_more_routes(self, router: web.UrlDispatcher, route: Any) -> None:
        self.add_realism_routes(router, route)  # also GET /v1/credit_notes/{id}/lines
        self.add_balance_routes(router, route)
        self.add_payment_method_routes(router, route)
        self.add_intent_routes(router, route)
        self.add_dispute_routes(router, route)  # and transfers
