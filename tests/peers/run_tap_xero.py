"""tap-xero's own ``main`` against billhub's Xero emulator. Run by the peer venv's python
(tap-xero 2.6.0, requests 2.33.0, singer-python 5.18.0), never imported by billhub's tests.

The emulator's address comes in ``BILLHUB_XERO_EMULATOR`` (loopback). tap-xero names Xero's hosts
in its code (``BASE_URL = "https://api.xero.com/api.xro/2.0"`` and the token URL
``https://identity.xero.com/connect/token``) with no setting for either, so ``xero_loopback``
sends those hosts to the emulator at the transport; the tap's requests, headers, token refresh,
paging and parsing are its own.
"""

from __future__ import annotations

import os
import sys

from xero_loopback import route_xero_to  # beside this script: imported before the path is cleaned

# Python put this script's folder (billhub's tests/peers) first on the path; the peer's own
# packages (singer, tap_xero) must not be shadowed by billhub's modules of the same name.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import tap_xero  # noqa: E402  (after the path is cleaned)


def main() -> None:
    route_xero_to(os.environ["BILLHUB_XERO_EMULATOR"])
    tap_xero.main()


if __name__ == "__main__":
    main()
