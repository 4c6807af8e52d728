"""API versions: the account's default version, the version each request is answered in, and
the version each event is rendered in.

Stripe's rules (docs.stripe.com/api-versions, /libraries/set-version, the Events API reference):
a request is answered in the version of its ``Stripe-Version`` header, else in the account's
default version, and the response's ``Stripe-Version`` header says which; an event is rendered
once, when it happens, in the account's default version at that moment (its ``api_version``),
and ``GET /v1/events`` gives it in that version whatever version the request asks for; a webhook
endpoint created with an ``api_version`` receives events rendered in that version instead.

Objects are stored in the newest shape (``API_VERSION``); older versions are rendered from it by
``version_shapes.down_convert`` (the documented changes it models are listed there). Any dated
version up to ``API_VERSION`` is accepted (``2022-11-15``, ``2024-06-20``, ``2025-03-31.basil``
…); anything else is answered 400, as Stripe answers an unknown version.

Control surface: ``GET``/``POST /__emulator/api_version`` ``{"version": "2022-11-15"}`` reads or
sets the account's default version (a reset restores the constructor's ``account_version``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL
from connectors.stripe.emulator.store import API_VERSION, StripeStore
from connectors.stripe.emulator.version_shapes import down_convert, previous_in
from connectors.stripe.emulator.wire import StripeAPIError

_VERSION = re.compile(r"(\d{4}-\d{2}-\d{2})(\.[a-z]+)?")


def checked_version(value: str) -> str:
    """A ``Stripe-Version`` value, or Stripe's 400 for one it does not know."""
    text = value.strip()
    match = _VERSION.fullmatch(text)
    if match is None or match[1] > API_VERSION[:10] or (match[1] == API_VERSION[:10] and text != API_VERSION):
        raise StripeAPIError(400, f"Invalid Stripe API version: {text}")
    return text


class VersionsMixin(StripeStore):
    """The account's default version; requests, events and deliveries rendered per version."""

    default_account_version: str = API_VERSION  # the constructor's ``account_version``
    account_version: str = API_VERSION
    # (sizes, invoice -> (payment intent, charge), payment intent -> invoice): see ``_payments``
    _pay_index: tuple[tuple[int, int], dict[str, tuple[str, str | None]], dict[str, str]] = ((-1, -1), {}, {})

    def reset_state(self) -> None:
        super().reset_state()
        self.account_version = self.default_account_version
        self._pay_index = ((-1, -1), {}, {})

    # ------------------------------------------------------------------ rendering per version

    def request_version(self, headers: Mapping[str, str]) -> str:
        header = headers.get("Stripe-Version")
        return checked_version(header) if header else self.account_version

    def in_version(self, body: Any, version: str) -> Any:
        """A response body (newest shape) as ``version`` renders it."""
        return down_convert(body, version[:10], self)

    def event_data(self, obj: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
        return self._event_data(obj, previous, self.account_version)

    def _event_data(self, obj: Mapping[str, Any], previous: Mapping[str, Any] | None,
                    version: str) -> dict[str, Any]:
        current = self.render(obj)
        if version == API_VERSION:
            data: dict[str, Any] = {"object": current}
            if previous:
                data["previous_attributes"] = copy.deepcopy(dict(previous))
            return data
        data = {"object": self.in_version(current, version)}
        if previous:
            changed = previous_in(current, copy.deepcopy(dict(previous)), lambda o: self.in_version(o, version))
            if changed:
                data["previous_attributes"] = changed
        return data

    def delivered_event(self, event: dict[str, Any], endpoint: Mapping[str, Any], obj: Mapping[str, Any],
                        previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """The event as ``endpoint`` receives it: in the endpoint's own ``api_version`` when it
        was created with one, else as recorded (the account's version at the time)."""
        version = endpoint.get("api_version")
        if not version or version == event["api_version"]:
            return event
        return {**event, "api_version": version, "data": self._event_data(obj, previous, str(version))}

    # ------------------------------------------------------------------ what the converters read

    def stored(self, obj_id: str) -> Mapping[str, Any] | None:
        return self.find(obj_id)

    def rendered(self, obj_id: str) -> dict[str, Any] | None:
        found = self.find(obj_id)
        return self.render(found) if found is not None else None

    def invoice_payment(self, invoice_id: str) -> tuple[str | None, str | None]:
        """The payment intent and charge an invoice's older ``payment_intent``/``charge`` name."""
        pi, charge = self._payments()[0].get(invoice_id, (None, None))
        return pi, charge

    def invoice_of_payment(self, payment_intent_id: str) -> str | None:
        return self._payments()[1].get(payment_intent_id)

    def _payments(self) -> tuple[dict[str, tuple[str, str | None]], dict[str, str]]:
        """Invoice -> (payment intent, its latest charge), from the Invoice Payments
        (``invoice_payments.py``: the link Basil made the only one); the newest payment of an
        invoice is the one the older fields name. Links are only ever added, and a payment
        intent never changes its invoice, so the index is rebuilt only when links were added."""
        intents, links = self.table("payment_intent"), self.table("invoice_payment")
        key = (len(intents), len(links))
        if self._pay_index[0] == key:
            return self._pay_index[1], self._pay_index[2]
        index: dict[str, tuple[str, str | None]] = {}
        for link in links.values():  # in creation order: the newest of each invoice wins
            payment = link.get("payment") or {}
            pi_id = payment.get("payment_intent") if isinstance(payment, Mapping) else None
            if link.get("invoice") and isinstance(pi_id, str):
                pi = intents.get(pi_id) or {}
                index[str(link["invoice"])] = (pi_id, pi.get("latest_charge"))
        by_intent = {pi_id: invoice for invoice, (pi_id, _charge) in index.items()}
        self._pay_index = (key, index, by_intent)
        return index, by_intent

    # ------------------------------------------------------------------ control route

    def add_version_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(CONTROL + "api_version", self._get_version)
        router.add_post(CONTROL + "api_version", self._set_version)

    async def _get_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.account_version})

    async def _set_version(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            self.account_version = checked_version(str(body.get("version") or ""))
        except StripeAPIError as exc:
            return exc.response()
        return web.json_response({"version": self.account_version})
