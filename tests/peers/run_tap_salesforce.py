"""tap-salesforce's own ``main`` pointed at billhub's Salesforce emulator. Run by the peer venv's
python (the tap and its pins), never imported by billhub's tests.

The tap logs in with a refresh token at ``https://login.salesforce.com/services/oauth2/token``
(a host it hardcodes: ``is_sandbox`` only switches it to test.salesforce.com) and then uses the
``instance_url`` the token answer gives for every REST call. The emulator's address comes in
``BILLHUB_SALESFORCE_EMULATOR`` (loopback, https). One transport adapter is mounted for the two
login hosts on every requests session: it sends what the tap asks of them to the emulator's
token endpoint, nothing else changes (the tap's session, headers, retries and paging stay its
own), and the emulator's token answer names itself as the instance, so the REST calls go there
directly. The emulator's self-signed certificate is trusted through ``REQUESTS_CA_BUNDLE``
(set by the test), so TLS is verified as usual. No request leaves the machine.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Python put this script's folder (billhub's tests/peers) first on the path; the peer's own
# packages (singer, requests) must not be shadowed by billhub's modules of the same name.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import requests  # noqa: E402  (after the path is cleaned)
from requests import PreparedRequest, Response  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

LOGIN_HOSTS = ("https://login.salesforce.com/", "https://test.salesforce.com/")


class LoginToEmulator(HTTPAdapter):
    """Sends a login-host request to the same path on the emulator (loopback only)."""

    def __init__(self, emulator: str) -> None:
        super().__init__()
        self.emulator = urlsplit(emulator)

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        url = urlsplit(str(request.url))
        request.url = urlunsplit((self.emulator.scheme, self.emulator.netloc, url.path, url.query, ""))
        return super().send(request, *args, **kwargs)


def main() -> None:
    emulator = os.environ["BILLHUB_SALESFORCE_EMULATOR"]
    if not emulator.startswith(("https://127.0.0.1:", "https://localhost:")):
        raise SystemExit(f"not a loopback emulator: {emulator}")
    adapter = LoginToEmulator(emulator)
    plain_init = requests.Session.__init__

    def session_init(self: requests.Session) -> None:
        plain_init(self)
        for prefix in LOGIN_HOSTS:
            self.mount(prefix, adapter)

    requests.Session.__init__ = session_init  # type: ignore[method-assign]
    import tap_salesforce  # after the mount hook: the tap makes its session at start-up

    tap_salesforce.main()


if __name__ == "__main__":
    main()
