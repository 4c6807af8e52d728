"""Fixtures: a running Stripe emulator (pinned clock) and a connector pointed at it.

Time never passes on the wall clock in these tests: the connector's retry and rate-limit sleeps
are recorded and advance the emulator's clock instead, and the connector's own clock is the
emulator's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from connectors.emulation import RunningEmulator
from connectors.settings import ConnectionConfig
from connectors.stripe.connector import StripeConnector, build
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.emulator.realism import Realism

API_KEY = "sk_test_billhub_emulator"
WEBHOOK_SECRET = "whsec_test_billhub"


class Waits:
    """The injected sleep: records each wait and moves the emulator's clock by it."""

    def __init__(self, emulator: StripeEmulator) -> None:
        self.emulator = emulator
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.emulator.clock.advance(seconds)


@pytest.fixture(scope="session")
def running_stripe() -> Iterator[RunningEmulator]:
    emulator = StripeEmulator(rate_limit=100_000)
    with RunningEmulator(emulator) as running:
        yield running


@pytest.fixture
def emulator(running_stripe: RunningEmulator) -> StripeEmulator:
    emu = running_stripe.emulator
    assert isinstance(emu, StripeEmulator)
    requests.post(f"{running_stripe.base_url}/__emulator/reset", timeout=10).raise_for_status()
    emu.clock.now_value = emu.clock.__class__().now_value
    emu.rate_limit = 100_000
    emu.rate_clock = time.monotonic
    emu.api_keys = None
    emu.endpoint_secret = None
    emu.record_exchanges = False
    emu.realism = Realism()  # Stripe's behaviour, whatever an earlier test switched
    return emu


@pytest.fixture
def cards_on_file(emulator: StripeEmulator) -> StripeEmulator:
    """For tests of other things that bill the helpers' company automatically: its customers pay
    by a card on file, which the emulator's test Visa card stands in for (Stripe would leave a
    card-less customer's charge_automatically invoice open)."""
    emulator.realism.payment_method_required = False
    return emulator


@pytest.fixture
def waits(emulator: StripeEmulator) -> Waits:
    return Waits(emulator)


def make_config(base_url: str, **extra: Any) -> ConnectionConfig:
    settings = {"api_key": API_KEY, "api_base": base_url, "webhook_secret": WEBHOOK_SECRET,
                "rate_limit_per_second": 100_000.0, "timeout_seconds": 10.0, "max_attempts": 6,
                "events_overlap_seconds": 60, "page_limit": 100, **extra}
    return ConnectionConfig("stripe", "stripe", settings)


@pytest.fixture
def connector(running_stripe: RunningEmulator, emulator: StripeEmulator,
              waits: Waits) -> Iterator[StripeConnector]:
    conn = build(make_config(running_stripe.base_url), None, sleep=waits,
                 clock=emulator.clock.now)
    yield conn
    conn.close()


@pytest.fixture
def raw_client(running_stripe: RunningEmulator, emulator: StripeEmulator) -> Iterator[stripe.StripeClient]:
    """An independent SDK client for arranging state "out of band", as a person would."""
    http = stripe.RequestsClient(timeout=10)
    client = stripe.StripeClient(API_KEY, base_addresses={"api": running_stripe.base_url},
                                 max_network_retries=0, http_client=http)
    yield client
    http.close()  # type: ignore[no-untyped-call]  # stripe: RequestsClient.close is unannotated


def seed(running: RunningEmulator, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{running.base_url}/__emulator/seed", json=body, timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    assert "error" not in result, result
    return result
