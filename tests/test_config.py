"""Config: validated on load; errors name the key and what to set, and exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sync.config import Config, ConfigError, load_config, parse_config

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


# ---------------------------------------------------------------- every section validated (issue 23)

def _parse(text: str, env: dict[str, str] | None = None) -> Config:
    return parse_config(__import__("tomllib").loads(text), env=env or {})


@pytest.mark.parametrize(("snippet", "message"), [
    ('[flows]\nenabeld = ["customers"]\n', "flows.enabeld: unknown key; known keys are backoff_seconds, enabled"),
    ('[flows]\nenabled = ["customer"]\n', "flows.enabled: 'customer' is not one of customers, catalog"),
    ("[flows]\nlease_seconds = -5\n", "flows.lease_seconds: must be greater than 0, got -5"),
    ("[flows]\nmax_attempts = 0\n", "flows.max_attempts: must be at least 1, got 0"),
    ('[state]\nurl = "sqlite:///:memory:"\n', "state.url: an in-memory SQLite database keeps nothing"),
    ('[state]\nurl = "sqlite://"\n', "state.url: an in-memory SQLite database keeps nothing"),
    ('[state]\nurl = "mysql://u:pw@db/hub"\n', "state.url: mysql is not supported — set sqlite:///PATH"),
    ('[state]\nurl = "not a url"\n', "state.url: not a database URL"),
    ('[connections.stripe]\nsystem = "stripe"\napi_key = "k"\nrate_limit_per_second = 0.0\n',
     "connections.stripe.rate_limit_per_second: must be greater than 0, got 0.0"),
    ('[connections.xero]\nsystem = "xero"\nclient_id = "c"\nclient_secret = "s"\ntenant_id = "t"\n'
     "rate_limit_per_minute = nan\n", "connections.xero.rate_limit_per_minute: must be a finite number"),
    ('[connections.quickbooks]\nsystem = "quickbooks"\nrealm_id = "r"\nclient_id = "c"\nclient_secret = "s"\n'
     "batch_size = 31\n", "connections.quickbooks.batch_size: must be at most 30, got 31"),
    ('[connections.salesforce]\nsystem = "salesforce"\ninstance_url = "https://x"\nclient_id = "c"\n'
     'client_secret = "s"\nca_bundle = "/nonexistent/ca.pem"\n',
     "connections.salesforce.ca_bundle: no file at /nonexistent/ca.pem — set the path of an existing PEM file"),
    ('[schedules]\ndiff.customer = "every night"\n', "schedules.diff.customer: not a cron expression"),
    ('[schedules]\ndiff.custmer = "0 2 * * *"\n', "schedules.diff.custmer: unknown entity type; known are customer"),
    ("[schedules]\nsync_interval_seconds = 0\n", "schedules.sync_interval_seconds: must be greater than 0"),
    ('[schedules]\ndiff = "0 2 * * *"\n', "schedules.diff: expected a table, got a string"),
    ("[server]\nport = 99999\n", "server.port: must be at most 65535, got 99999"),
    ("[server]\nport = -1\n", "server.port: must be at least 0, got -1"),
    ("[server]\nworkers = 0\n", "server.workers: must be at least 1"),
    ("[diff]\ntotals_tolerance_minor = -1\n", "diff.totals_tolerance_minor: must be at least 0"),
    ("[diff]\nstale_sla = 5\n", "diff.stale_sla: unknown key; known keys are line_rounding_tolerance_minor"),
    ("[alerts]\nmin_new_findings = 0\n", "alerts.min_new_findings: must be at least 1"),
    ('[admin]\ntokn = "t"\n', "admin.tokn: unknown key; known keys are failed_tokens_per_minute, session_idle_minutes, session_max_hours, token"),
    ('[ownership.custmer]\n"*" = "stripe"\n', "ownership.custmer: unknown name; known are customer"),
    ('[ownership.customer]\nname = "hubspot"\n', "ownership.customer.name: 'hubspot' is not one of stripe"),
    ('[ownership]\ncustomer = "stripe"\n', "ownership.customer: expected a table ([ownership.customer])"),
    ('[tax_codes.xero]\n"20.0" = "OUTPUT2"\n', 'tax_codes.xero.20.0: a tax rate is a percent written plainly'),
    ('[tax_codes.xero]\n"20" = 20\n', "tax_codes.xero.20: expected a string, got int 20"),
    ('[tax_codes.sage]\n"20" = "T1"\n', "tax_codes.sage: unknown name; known are stripe"),
    ('flows = 3\n', "flows: expected a table ([flows])"),
    ('[flows]\nfirst_contact = "ask"\n', "flows.first_contact: 'ask' is not one of auto, review"),
    ('[connections.stripe]\nsystem = "stripe"\napi_key = "k"\nfirst_contact = "later"\n',
     'connections.stripe.first_contact: expected "auto" or "review", got \'later\''),
])
def test_every_section_is_validated_and_names_the_key(snippet: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _parse(snippet)


def test_a_valid_config_is_taken_with_every_section_default_filled() -> None:
    config = _parse('[flows]\nenabled = ["customers"]\n[server]\nport = 0\n'
                    '[state]\nurl = "postgresql+psycopg://u@db/hub"\n[schedules]\ndiff.invoice = "30 2 * * *"\n')
    assert config.flows == {"enabled": ["customers"], "max_attempts": 8, "backoff_seconds": 30.0,
                            "lease_seconds": 300.0, "max_amount_minor": 10**12, "first_contact": "auto"}
    assert config.server["port"] == 0
    assert config.schedules["diff"] == {"invoice": "30 2 * * *"}
    assert config.diff["stale_sla_minutes"] == 60.0


def test_a_secret_in_the_wrong_key_is_never_echoed() -> None:
    env = {"STRIPE_API_KEY": "sk_live_TOPSECRET"}
    for snippet in ('[flows]\nmax_attempts = "${STRIPE_API_KEY}"\n',
                    '[connections.stripe]\nsystem = "stripe"\napi_key = "k"\ntimeout_seconds = "sk_live_TOPSECRET"\n',
                    '[connections.stripe]\nsystem = "stripe"\napi_key = 12345678\n',
                    '[admin]\ntoken = 12345678\n'):
        with pytest.raises(ConfigError) as caught:
            _parse(snippet, env)
        assert "TOPSECRET" not in str(caught.value) and "12345678" not in str(caught.value)
        assert "expected" in str(caught.value)


def test_a_secret_in_the_state_url_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        _parse('[state]\nurl = "mysql://u:hunter2@db/hub"\n')
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("content", ["[flows]\nmax_attempts = 3\n".encode("utf-16"), b"\x00\xff\xfe\x89PNG"])
def test_a_file_that_is_not_utf8_text_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hub.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not a text file")):
        load_config(path, env={})


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: cannot read it")):
        load_config(tmp_path, env={})


@pytest.mark.parametrize(("snippet", "key"), [
    ("[server]\nport = 99999\n", "server.port"),
    ('[schedules]\ndiff.customer = "61 * * * *"\n', "schedules.diff.customer"),
    ('[state]\nurl = "mysql://db/hub"\n', "state.url"),
    ("[flows]\nlease_seconds = -5\n", "flows.lease_seconds"),
])
def test_hub_exits_2_on_a_bad_section_value(tmp_path: Path, snippet: str, key: str) -> None:
    (tmp_path / "hub.toml").write_text(snippet)
    result = hub("status", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert key in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- every problem at once (issue 20, item 4)

def _example_variables() -> list[str]:
    return list(dict.fromkeys(re.findall(r"\$\{([A-Z0-9_]+)\}", (ROOT / "config.example.toml").read_text())))


def test_a_fresh_example_config_reports_every_missing_variable_in_one_run(tmp_path: Path) -> None:
    """`cp config.example.toml hub.toml && hub init` with nothing set: one run names every
    required variable (it used to take one run per variable), and none of the optional ones."""
    (tmp_path / "hub.toml").write_text((ROOT / "config.example.toml").read_text())
    result = hub("init", cwd=tmp_path, env={name: "" for name in _example_variables()})
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    required = ["STRIPE_API_KEY", "QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "XERO_CLIENT_ID",
                "XERO_CLIENT_SECRET", "SF_CLIENT_ID", "SF_CLIENT_SECRET"]
    for name in required:
        assert f"missing — set {name}" in result.stderr, (name, result.stderr)
    assert f"{len(re.findall('missing — set', result.stderr))} problems:" in result.stderr
    optional = ["HUB_ALERT_WEBHOOK_URL", "HUB_ADMIN_TOKEN", "STRIPE_WEBHOOK_SECRET", "QBO_WEBHOOK_VERIFIER",
                "XERO_WEBHOOK_KEY", "QBO_REFRESH_TOKEN", "XERO_REFRESH_TOKEN", "SF_REFRESH_TOKEN",
                "QBO_REALM_ID", "XERO_TENANT_ID"]  # hub connect stores the realm and tenant
    for name in optional:
        assert name not in result.stderr, (name, result.stderr)


def test_problems_of_different_sections_and_kinds_are_all_listed() -> None:
    text = ('[connections.stripe]\nsystem = "stripe"\napi_key = "k"\nmax_attempts = "six"\ntimeout = 3\n'
            '[server]\nport = 99999\n[flows]\nlease_seconds = -5\n[typo]\nx = 1\n')
    with pytest.raises(ConfigError) as caught:
        _parse(text)
    assert caught.value.problems == [
        "typo: unknown section; known sections are admin, alerts, connections, diff, flows, ownership, "
        "schedules, server, state, tax_codes",
        "connections.stripe.timeout: unknown key; known keys are " + ", ".join(sorted(
            __import__("connectors.settings", fromlist=["system_keys"]).system_keys("stripe"))),
        "connections.stripe.max_attempts: expected an integer, got a string",
        "server.port: must be at most 65535, got 99999",
        "flows.lease_seconds: must be greater than 0, got -5",
    ]
    assert str(caught.value).startswith("5 problems:\n  typo: unknown section")


def test_an_optional_feature_whose_variable_is_unset_is_off() -> None:
    """"unset = off": the alert webhook and the admin token read from unset variables are
    unset, not "missing"; a reference inside a longer value still must resolve."""
    config = _parse('[alerts]\nwebhook_url = "${HUB_ALERT_WEBHOOK_URL}"\n[admin]\ntoken = "${HUB_ADMIN_TOKEN}"\n')
    assert config.alerts["webhook_url"] is None and config.admin["token"] is None
    config = _parse('[alerts]\nwebhook_url = "${HUB_ALERT_WEBHOOK_URL}"\n',
                    env={"HUB_ALERT_WEBHOOK_URL": "https://hooks.example/x"})
    assert config.alerts["webhook_url"] == "https://hooks.example/x"
    with pytest.raises(ConfigError, match=re.escape("alerts.webhook_url: missing — set HOOK_HOST")):
        _parse('[alerts]\nwebhook_url = "https://${HOOK_HOST}/x"\n')
