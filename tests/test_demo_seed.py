"""The seeded company's Stripe history never runs ahead of Stripe's clock.

An event dated after the clock it was seeded under makes every later event look older than one
already seen, and a change-feed cursor anchored at the newest event would skip them (found by
the 1x chaos run, whose seeding spread 2,500 invoices days past "now").
"""

from __future__ import annotations

from pathlib import Path

from connectors.stripe.emulator import StripeEmulator
from sync.demo import seed_company, start_emulators


def test_a_large_seed_keeps_every_stripe_event_at_or_before_the_clock(tmp_path: Path) -> None:
    emus = start_emulators(tmp_path)
    try:
        seed_company(emus, customers=50, invoices=2400)  # 800 a month: the spread would pass 30 days
        stripe = emus.stripe.emulator
        assert isinstance(stripe, StripeEmulator)
        assert stripe.clock.now() == emus.now
        assert max(e["created"] for e in stripe.events) <= stripe.clock.timestamp()
    finally:
        emus.stop()
