"""Xero's hosts sent to billhub's loopback Xero emulator, for a peer that names them in its code.

Imported by the runner scripts (run_tap_xero.py, run_pyxero.py) in the peer's own venv, never by
billhub's tests. tap-xero asks ``https://identity.xero.com/connect/token`` for its tokens and
``https://api.xero.com/api.xro/2.0`` for the data, both literals of its code with no setting;
pyxero's token URL is one too. Nothing of the peer is replaced: every ``requests`` session made
from now on has this transport adapter mounted, which sends a request for one of Xero's hosts to
the emulator over plain HTTP (same path, query, headers and body; the emulator serves
``/connect/token`` and ``/api.xro/2.0`` under one address) and refuses any host that is neither
Xero's nor loopback, so no request leaves the machine.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
import requests.sessions

XERO_HOSTS = frozenset({"api.xero.com", "identity.xero.com"})
LOOPBACK = frozenset({"127.0.0.1", "localhost"})


def route_xero_to(emulator: str) -> None:
    """Every ``requests`` session made after this call sends Xero's hosts to ``emulator``."""
    target = urlsplit(emulator)
    if target.scheme != "http" or target.hostname not in LOOPBACK:
        raise SystemExit(f"not a loopback emulator: {emulator}")

    class ToEmulator(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            url = urlsplit(request.url or "")
            if url.hostname in XERO_HOSTS:
                request.url = urlunsplit(("http", target.netloc, url.path, url.query, url.fragment))
            elif url.hostname not in LOOPBACK:
                raise requests.ConnectionError(f"refused, not Xero and not loopback: {request.url}")
            kwargs["proxies"] = {}  # straight to loopback, whatever the environment names
            return super().send(request, *args, **kwargs)

    # Session.__init__ mounts ``HTTPAdapter()`` by the name its module imported
    requests.sessions.HTTPAdapter = ToEmulator  # type: ignore[misc]
