"""Config: validated on load; errors name the key and what to set, and exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sync.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]

XERO = """
[connections.xero]
system = "xero"
client_id = "cid"
client_secret = "${XERO_CLIENT_SECRET}"
tenant_id = "t-1"
"""


def test_a_missing_secret_names_the_key_and_the_variable_to_set() -> None:
    with pytest.raises(ConfigError, match=re.escape("connections.xero.client_secret: missing — set XERO_CLIENT_SECRET")):
        parse_config(__import__("tomllib").loads(XERO), env={})


def test_a_secret_is_interpolated_from_the_environment() -> None:
    config = parse_config(__import__("tomllib").loads(XERO), env={"XERO_CLIENT_SECRET": "s3cret"})
    assert config.connections["xero"]["client_secret"] == "s3cret"
    assert "s3cret" in config.secrets
    assert config.connections["xero"]["rate_limit_per_minute"] == 60.0


@pytest.mark.parametrize(("snippet", "message"), [
    ('[connections.stripe]\nsystem = "stripe"\napi_key = "k"\nrate_limit_per_second = "fast"\n',
     "connections.stripe.rate_limit_per_second: expected a number"),
    ('[connections.stripe]\nsystem = "stripe"\napi_key = "k"\ntimeout = 3\n',
     "connections.stripe.timeout: unknown key"),
    ('[connections.q]\nsystem = "sap"\n', "connections.q.system: expected one of"),
    ('[stat]\nurl = "x"\n', "stat: unknown section"),
    ('[connections.stripe]\nsystem = "stripe"\n', "connections.stripe.api_key: missing — set STRIPE_API_KEY"),
])
def test_bad_config_is_reported_by_key(snippet: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(__import__("tomllib").loads(snippet), env={})


def test_the_example_config_documents_a_loadable_config() -> None:
    text = (ROOT / "config.example.toml").read_text()
    env = {name: "x" for name in re.findall(r"\$\{([A-Z0-9_]+)\}", text)}
    config = load_config(ROOT / "config.example.toml", env=env)
    assert set(config.connections) == {"stripe", "quickbooks", "xero", "salesforce"}
    for key in ("stripe", "quickbooks", "xero", "salesforce"):
        assert config.connections[key].system == key


def hub(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HUB_CONFIG", None)
    return subprocess.run([sys.executable, str(ROOT / "hub.py"), *args], cwd=cwd, capture_output=True,
                          text=True, env=full_env, timeout=60)


@pytest.mark.parametrize(("config", "key"), [
    (XERO, "connections.xero.client_secret: missing — set XERO_CLIENT_SECRET"),
    ('[connections.stripe]\nsystem = "stripe"\napi_key = "k"\nmax_attempts = "six"\n',
     "connections.stripe.max_attempts: expected an integer"),
])
def test_cli_exits_2_with_the_key_named_and_no_traceback(tmp_path: Path, config: str, key: str) -> None:
    (tmp_path / "hub.toml").write_text(config)
    result = hub("status", cwd=tmp_path, env={"XERO_CLIENT_SECRET": ""})
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_without_a_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    result = hub("status", cwd=tmp_path)
    assert result.returncode == 2
    assert "config.example.toml" in result.stderr
