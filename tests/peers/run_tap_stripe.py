"""tap-stripe's own ``main`` pointed at billhub's Stripe emulator. Run by the peer venv's python
(stripe 5.5.0 and the tap), never imported by billhub's tests.

The emulator's address comes in ``BILLHUB_STRIPE_EMULATOR`` (loopback). Only the SDK is
configured, nothing of the tap or the SDK is replaced: tap-stripe names its request-timer metric
from the URL with ``re.match(r'http[s]?://api\\.stripe\\.com/v1/(\\w+)', url)`` and fails on any
other base URL (``None.groups()``), so ``stripe.api_base`` keeps Stripe's host name over plain
HTTP and the HTTP proxy, which requests takes from ``HTTP_PROXY``, is the emulator: every request
goes to loopback, none leaves the machine.
"""

from __future__ import annotations

import os
import sys

# Python put this script's folder (billhub's tests/peers) first on the path; the peer's own
# packages (singer, stripe) must not be shadowed by billhub's modules of the same name.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import stripe  # noqa: E402  (after the path is cleaned)
import tap_stripe  # noqa: E402


def main() -> None:
    emulator = os.environ["BILLHUB_STRIPE_EMULATOR"]
    if not emulator.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit(f"not a loopback emulator: {emulator}")
    for name in ("NO_PROXY", "no_proxy"):
        os.environ.pop(name, None)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        os.environ[name] = emulator
    stripe.api_base = "http://api.stripe.com"
    tap_stripe.main()


if __name__ == "__main__":
    main()
