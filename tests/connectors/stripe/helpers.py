"""Small helpers shared by the Stripe tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connectors.base import Page, Record
from connectors.stripe.emulator import StripeEmulator
from mapping.model import stable_id


def drain(pages: Iterable[Page]) -> tuple[list[Record], str | None]:
    records: list[Record] = []
    cursor = None
    for page in pages:
        records += page.records
        if page.cursor is not None:
            cursor = page.cursor
    return records, cursor


def calls(emulator: StripeEmulator, key: str) -> int:
    return int(emulator.stats.calls.get(key, 0))


class Refs:
    """A RefResolver over an in-memory link table (what the engine's store provides)."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], str] = {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        for (etype, canonical), ext in self.links.items():
            if etype == entity_type and ext == external_id:
                return canonical
        return stable_id("stripe", entity_type, external_id)

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return self.links.get((entity_type, canonical_id))

    def link(self, entity_type: str, canonical_id: str, external_id: str) -> None:
        self.links[(entity_type, canonical_id)] = external_id


def company(emulator: StripeEmulator) -> dict[str, Any]:
    """A small realistic company, created in-process as if through the API."""
    return emulator.seed_objects({
        "tax_rates": [
            {"ref": "vat", "display_name": "VAT", "percentage": "20", "inclusive": False, "country": "DE"},
            {"ref": "gst", "display_name": "GST", "percentage": "10", "inclusive": True, "country": "AU"},
        ],
        "customers": [
            {"ref": "acme", "name": "Acme Inc", "email": "billing@acme.test"},
            {"ref": "kaisha", "name": "Kaisha KK", "email": "keiri@kaisha.test", "currency": "jpy"},
            {"ref": "gmbh", "name": "Beispiel GmbH", "email": "rechnung@beispiel.test"},
        ],
        "products": [{"ref": "basic", "name": "Basic"}, {"ref": "pro", "name": "Pro"},
                     {"ref": "setup", "name": "Setup"}],
        "prices": [
            {"ref": "basic_m", "product": "@basic", "currency": "usd", "unit_amount": 2000,
             "recurring": {"interval": "month"}},
            {"ref": "pro_m", "product": "@pro", "currency": "usd", "unit_amount": 5000,
             "recurring": {"interval": "month"}},
            {"ref": "setup_jpy", "product": "@setup", "currency": "jpy", "unit_amount": 12345},
            {"ref": "setup_eur", "product": "@setup", "currency": "eur", "unit_amount": 1999},
        ],
    })


class WebhookReceiver:
    """A webhook receiver on loopback; ``fail_first`` answers the first delivery 500 (to
    exercise the emulator's retries). ``received``: (headers, body, status) per delivery."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.done = threading.Event()  # set once a delivery was answered 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if fail_first and not receiver.received else 200
                receiver.received.append(({k: v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 200:
                    receiver.done.set()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/stripe"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the deliveries answered 200."""
        return [json.loads(body) for _h, body, status in self.received if status == 200]


@contextmanager
def webhook_receiver(*, fail_first: bool = False) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=fail_first)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(5)
