"""tap-quickbooks' own ``main`` pointed at billhub's QuickBooks emulator. Run by the peer venv's
python (singer-python 6.1.1, requests-oauthlib 2.0.0 and the tap), never imported by billhub's
tests.

The emulator's address comes in ``BILLHUB_QBO_EMULATOR`` (loopback). The tap has no setting for
its hosts: it joins every API path to ``tap_quickbooks.client.PROD_ENDPOINT_BASE``
(``https://quickbooks.api.intuit.com``) at request time and refreshes its token at
``TOKEN_REFRESH_URL`` (Intuit's ``oauth.platform.intuit.com``), both module constants. This
script rewrites those two host names to the emulator, and nothing else: the tap's requests, its
OAuth2 refresh (client id and secret in the form body, client_secret_post), its batch queries,
CDC call and report windows are its own. oauthlib refuses plain http unless told the transport
is local (``OAUTHLIB_INSECURE_TRANSPORT``), which it is: loopback only.
"""

from __future__ import annotations

import os
import sys

# Python put this script's folder (billhub's tests/peers) first on the path; the peer's own
# packages (singer, tap_quickbooks) must not be shadowed by billhub's modules of the same name.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import tap_quickbooks  # noqa: E402  (after the path is cleaned)
import tap_quickbooks.client  # noqa: E402


def main() -> None:
    emulator = os.environ["BILLHUB_QBO_EMULATOR"].rstrip("/")
    if not emulator.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit(f"not a loopback emulator: {emulator}")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    tap_quickbooks.client.PROD_ENDPOINT_BASE = emulator
    tap_quickbooks.client.SANDBOX_ENDPOINT_BASE = emulator
    tap_quickbooks.client.TOKEN_REFRESH_URL = emulator + "/oauth2/v1/tokens/bearer"
    tap_quickbooks.main()


if __name__ == "__main__":
    main()
