"""Shared helpers of the scale-out tests and ``bench/chaos.py``: config text for several
connections per system, emulator control over HTTP, and PostgreSQL schemas.

Everything here talks to the emulators through their ``/__emulator/`` control surface or
inspects their state objects directly; nothing mocks a vendor SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from connectors.quickbooks.emulator import (
    DEFAULT_CLIENT_ID as QBO_CLIENT_ID,
)
from connectors.quickbooks.emulator import (
    DEFAULT_CLIENT_SECRET as QBO_CLIENT_SECRET,
)
from connectors.quickbooks.emulator import DEFAULT_VERIFIER_TOKEN
from connectors.xero.emulator import (
    DEFAULT_CLIENT_ID as XERO_CLIENT_ID,
)
from connectors.xero.emulator import (
    DEFAULT_CLIENT_SECRET as XERO_CLIENT_SECRET,
)
from connectors.xero.emulator import DEFAULT_WEBHOOK_KEY

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def toml_value(value: Any) -> str:
    """Strings, numbers, booleans (JSON form is valid TOML) and inline tables."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def section(name: str, values: Mapping[str, Any]) -> str:
    body = "\n".join(f"{k} = {toml_value(v)}" for k, v in values.items() if v is not None)
    return f"[{name}]\n{body}\n"


def qbo_connection(base_url: str, realm: str, refresh_token: str, **extra: Any) -> dict[str, Any]:
    return {"system": "quickbooks", "realm_id": realm, "client_id": QBO_CLIENT_ID,
            "client_secret": QBO_CLIENT_SECRET, "refresh_token": refresh_token, "api_base": base_url,
            "discovery_url": f"{base_url}/.well-known/openid_configuration",
            "token_url": f"{base_url}/oauth2/v1/tokens/bearer",
            "webhook_verifier_token": DEFAULT_VERIFIER_TOKEN, "rate_limit_per_minute": 6000.0,
            "batch_per_minute": 600.0, "timeout_seconds": 20.0, **extra}


def xero_connection(base_url: str, tenant: str, refresh_token: str, **extra: Any) -> dict[str, Any]:
    return {"system": "xero", "client_id": XERO_CLIENT_ID, "client_secret": XERO_CLIENT_SECRET,
            "tenant_id": tenant, "refresh_token": refresh_token, "api_base": base_url,
            "identity_base": base_url, "token_url": f"{base_url}/connect/token",
            "webhook_key": DEFAULT_WEBHOOK_KEY, "rate_limit_per_minute": 6000.0, "timeout_seconds": 20.0,
            "tax_types": {"0": "NONE", "10": "OUTPUT", "20": "OUTPUT2"}, **extra}


def config_text(state_url: str, key: str, connections: Mapping[str, Mapping[str, Any]],
                **tables: Mapping[str, Any]) -> str:
    parts = [section("state", {"url": state_url, "encryption_key": key})]
    parts += [section(f"connections.{name}", values) for name, values in connections.items()]
    parts += [section(name, values) for name, values in tables.items()]
    return "\n".join(parts)


def control(base_url: str, path: str, body: Mapping[str, Any] | None = None, *, method: str = "POST",
            verify: str | bool = True) -> Any:
    """Call an emulator's control surface over HTTP (the shared ``/__emulator/`` routes)."""
    response = requests.request(method, f"{base_url}/__emulator/{path}", json=body if method == "POST" else None,
                                timeout=30, verify=verify)
    response.raise_for_status()
    return response.json() if response.content else None


def hub_cli(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "hub.py"), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)})


def wait_until(what: str, check: Callable[[], bool], timeout: float, *, poll: float = 0.1) -> None:
    """Poll a condition (not a timing assumption); raise naming ``what`` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextmanager
def pg_schema(base_url: str = PG_URL) -> Iterator[str]:
    """A fresh schema on the PostgreSQL at ``base_url`` (for the bench; tests use the fixture)."""
    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
