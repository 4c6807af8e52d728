"""``hub init --interactive``: a working ``hub.toml`` from answers (click prompts).

Asked: the database URL, then per system whether to use it, its connection name and the values
that are not secret (Salesforce's instance URL, the vendor's base URL). Every secret is written as
a ``${VARIABLE}`` reference, never its value; the variables to export are listed at the end. The
result is what ``load_config`` accepts once those variables are set; an existing file is kept
unless ``--force``.
"""

from __future__ import annotations

from pathlib import Path

import click

# system -> (its config keys holding secrets, their default variable names); the non-secret
# prompts are asked in ``_connection``.
SECRETS: dict[str, tuple[tuple[str, str], ...]] = {
    "stripe": (("api_key", "STRIPE_API_KEY"),),
    "quickbooks": (("client_id", "QBO_CLIENT_ID"), ("client_secret", "QBO_CLIENT_SECRET")),
    "xero": (("client_id", "XERO_CLIENT_ID"), ("client_secret", "XERO_CLIENT_SECRET")),
    "salesforce": (("client_id", "SF_CLIENT_ID"), ("client_secret", "SF_CLIENT_SECRET")),
}
LABELS = {"stripe": "Stripe", "quickbooks": "QuickBooks Online", "xero": "Xero", "salesforce": "Salesforce"}
NEXT_STEP = {"stripe": "hub setup webhooks --url https://<where hub run is reachable>",
             "quickbooks": "hub connect {name}", "xero": "hub connect {name}",
             "salesforce": "hub connect {name}, then hub setup salesforce"}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connection(system: str, variables: list[str]) -> tuple[str, list[str]]:
    name = click.prompt(f"  connection name for {LABELS[system]}", default=system)
    lines = [f"[connections.{name}]", f"system = {_quote(system)}"]
    if system == "salesforce":
        url = click.prompt("  Salesforce instance URL (blank: the one hub connect learns)", default="",
                           show_default=False)
        if url:
            lines.append(f"instance_url = {_quote(url)}")
        if click.confirm("  a sandbox (test.salesforce.com)?", default=False):
            lines += ['token_url = "https://test.salesforce.com/services/oauth2/token"',
                      'authorize_url = "https://test.salesforce.com/services/oauth2/authorize"']
    if system == "quickbooks" and click.confirm("  a sandbox company?", default=False):
        lines.append('api_base = "https://sandbox-quickbooks.api.intuit.com"')
    for key, default in SECRETS[system]:
        variable = click.prompt(f"  environment variable holding {key}", default=default)
        lines.append(f"{key} = \"${{{variable}}}\"")
        variables.append(f"{variable}  ({name}.{key})")
    return name, lines


def new_config() -> tuple[str, list[str], list[str]]:
    """Ask; return the TOML text, the variables to set and the next commands."""
    url = click.prompt("database URL (sqlite:///hub.db, or postgresql+psycopg://user@host/db)",
                       default="sqlite:///hub.db")
    key_variable = click.prompt("environment variable holding the encryption key", default="HUB_ENCRYPTION_KEY")
    variables = [f"{key_variable}  (state.encryption_key: a Fernet key, e.g. python -c \"from "
                 "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\")"]
    sections = ["# written by `hub init --interactive`; every key is documented in config.example.toml",
                "[state]", f"url = {_quote(url)}", f"encryption_key = \"${{{key_variable}}}\""]
    steps: list[str] = []
    for system in SECRETS:
        if not click.confirm(f"use {LABELS[system]}?", default=True):
            continue
        name, lines = _connection(system, variables)
        sections += ["", *lines]
        steps.append(NEXT_STEP[system].format(name=name))
    return "\n".join(sections) + "\n", variables, steps


def write_new_config(path: Path, *, force: bool) -> tuple[list[str], list[str]]:
    """Ask and write ``path`` (refusing an existing one unless ``force``)."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    text, variables, steps = new_config()
    path.write_text(text, encoding="utf-8")
    return variables, steps


def new_config_command(path: Path, *, force: bool) -> None:
    """``hub init --interactive``: write the file, then say what to set and run."""
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to replace it")
    variables, steps = write_new_config(path, force=force)
    click.echo(f"wrote {path}. Set these environment variables (never put their values in the file):")
    for variable in variables:
        click.echo(f"  {variable}")
    click.echo("then run: hub init" + "".join(f"; {step}" for step in steps) + "; hub check")
