"""Raw HTTP against Xero emulators, for the emulator's own fidelity tests: Xero's accounting spec,
an emulator served for a test module, and a session that holds a token and the tenant header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from openapi_core import Config, OpenAPI

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.xero.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    XeroEmulator,
)

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "xero"
API = "/api.xro/2.0"


def accounting_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "xero_accounting.yaml"), config=Config(spec_validator_cls=None))


@pytest.fixture(scope="module", name="running")
def module_xero() -> Iterator[RunningEmulator]:
    """A Xero emulator of the module's own, on its own clock."""
    emulator = RunningEmulator(XeroEmulator(EmulatorClock())).start()
    yield emulator
    emulator.stop()


def token_session(running: RunningEmulator, emulator: XeroEmulator, *, accept_json: bool = True) -> requests.Session:
    """A session whose token the emulator issued (the refresh grant) for its tenant."""
    session = requests.Session()
    token = session.post(running.base_url + "/connect/token", auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
                         data={"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN}, timeout=10)
    assert token.status_code == 200, token.text
    session.headers.update({"Authorization": "Bearer " + token.json()["access_token"],
                            "xero-tenant-id": emulator.tenant.tenant_id})
    if accept_json:
        session.headers["Accept"] = "application/json"
    return session
