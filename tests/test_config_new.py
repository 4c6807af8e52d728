"""``hub init --interactive`` (issue 20, item 4): a hub.toml written from answers that
``load_config`` accepts, secrets only as ${VAR} references, an existing file kept without --force."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub import cli
from state.crypto import generate_key
from sync.config import ConfigError, load_config

ANSWERS = "\n".join([
    "postgresql+psycopg://hub@db.internal/billhub",  # database URL
    "",  # encryption key variable: the default
    "y", "", "",  # Stripe: use it, name "stripe", STRIPE_API_KEY
    "y", "books", "n", "", "",  # QuickBooks as "books", not a sandbox, default variables
    "n",  # no Xero
    "y", "", "https://acme.my.salesforce.com", "n", "SFDC_ID", "",  # Salesforce
]) + "\n"
ENV = {"HUB_ENCRYPTION_KEY": generate_key(), "STRIPE_API_KEY": "sk_test_x", "QBO_CLIENT_ID": "qid",
       "QBO_CLIENT_SECRET": "qsecret", "SFDC_ID": "sid", "SF_CLIENT_SECRET": "ssecret"}


def test_init_interactive_writes_a_config_load_config_accepts(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    done = CliRunner().invoke(cli, ["--config", str(path), "init", "--interactive"], input=ANSWERS)
    assert done.exit_code == 0, done.output
    text = path.read_text()
    assert '"${STRIPE_API_KEY}"' in text and '"${SFDC_ID}"' in text and "[connections.xero]" not in text
    config = load_config(path, env=ENV)
    assert sorted(config.connections) == ["books", "salesforce", "stripe"]
    assert config.connections["books"].system == "quickbooks"
    assert config.connections["books"]["client_secret"] == "qsecret"
    assert config.connections["salesforce"]["instance_url"] == "https://acme.my.salesforce.com"
    assert config.state_url == "postgresql+psycopg://hub@db.internal/billhub" and config.encryption_key == ENV["HUB_ENCRYPTION_KEY"]
    for variable in ENV:  # every variable to set is listed, and what it is for
        assert variable in done.stdout
    assert "hub connect books" in done.stdout and "hub setup salesforce" in done.stdout
    with pytest.raises(ConfigError) as unset:  # without the variables: every one named at once
        load_config(path, env={})
    assert all(v in str(unset.value) for v in ("STRIPE_API_KEY", "QBO_CLIENT_SECRET", "SF_CLIENT_SECRET"))


def test_init_interactive_refuses_an_existing_file_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("# mine\n")
    refused = CliRunner().invoke(cli, ["--config", str(path), "init", "--interactive"], input=ANSWERS)
    assert refused.exit_code == 2 and "--force" in refused.output and path.read_text() == "# mine\n"
    forced = CliRunner().invoke(cli, ["--config", str(path), "init", "--interactive", "--force"], input=ANSWERS)
    assert forced.exit_code == 0, forced.output
    assert load_config(path, env=ENV).connections["stripe"]["api_key"] == "sk_test_x"


def test_the_example_config_names_every_key_the_connectors_read() -> None:
    """Each declared connection key appears in config.example.toml (set, or commented out with
    its default), so no key the connectors read is undocumented (tax_codes come from
    [tax_codes.<ledger>])."""
    import re

    from connectors.quickbooks.settings import KEYS as QUICKBOOKS
    from connectors.salesforce.settings import KEYS as SALESFORCE
    from connectors.stripe.settings import KEYS as STRIPE
    from connectors.xero.settings import KEYS as XERO

    text = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text()
    undocumented = [f"{system}.{key}" for system, keys in (("stripe", STRIPE), ("quickbooks", QUICKBOOKS),
                                                           ("xero", XERO), ("salesforce", SALESFORCE))
                    for key in keys if key != "tax_codes" and not re.search(rf"^#? ?{key} = ", text, re.M)]
    assert undocumented == []
