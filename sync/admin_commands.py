"""Operator commands: ``hub rotate-key`` and ``hub forget-customer``.

Both take ``--config`` (else the group's ``--config``, else ``$HUB_CONFIG``, else ``hub.toml``)
and exit 2 on a config or database problem with a one-line message, like every other command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from cryptography.fernet import InvalidToken

from state.crypto import Cipher
from state.errors import CredentialsError, StateError
from state.store import StateStore
from sync.audit import cli_actor, record_action
from sync.config import Config, ConfigError, load_config
from sync.runtime import open_store
from sync.terminal import fail

CONFIG_HELP = "Config file (default: the group's --config, $HUB_CONFIG, else hub.toml)."


@contextmanager
def _opened(ctx: click.Context, config_path: str | None) -> Iterator[tuple[Config, StateStore]]:
    """The config and an initialised store; config and database errors end the command (exit 2)."""
    path = config_path or getattr(ctx.obj, "config_path", None)
    store: StateStore | None = None
    try:
        config = load_config(path)
        store = open_store(config)
        store.init()
        yield config, store
    except ConfigError as exc:
        fail(f"config: {exc}")
    except (StateError, LookupError) as exc:
        fail(str(exc))
    finally:
        if store is not None:
            store.dispose()


def config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--config", "config_path", envvar="HUB_CONFIG", default=None, help=CONFIG_HELP)(fn)


@click.command("rotate-key")
@config_option
@click.pass_context
def rotate_key_command(ctx: click.Context, config_path: str | None) -> None:
    """Re-encrypt every stored credential with the newest key.

    Put the new key first in state.encryption_key, keep the old one after it ("NEW,OLD"), run
    this, then remove the old key: every credential now opens with the new key alone.
    """
    with _opened(ctx, config_path) as (config, store):
        if not config.encryption_key:
            fail("state.encryption_key is not set: nothing is encrypted with a key to rotate")
        newest = Cipher(str(config.encryption_key).split(",")[0])
        try:
            with store.transaction() as tx:
                rotated = tx.rotate_credentials()
                # Check before committing: each credential must now open with the newest key alone.
                for ciphertext in tx.credential_ciphertexts():
                    newest.decrypt(ciphertext)
                record_action(tx, cli_actor(), "key.rotate", "credentials", "all", after={"rotated": rotated})
        except (InvalidToken, CredentialsError):
            fail("a stored credential opens with none of the configured keys: add the key it was "
                  "encrypted with after the new one (state.encryption_key = \"NEW,OLD\"); nothing was changed")
        keys = len([k for k in str(config.encryption_key).split(",") if k.strip()])
        click.echo(f"re-encrypted {rotated} credential(s) with the newest key"
                   + ("; every one opens with it alone, so the older key(s) can be removed from "
                      "state.encryption_key" if keys > 1 else ""))


@click.command("forget-customer")
@click.argument("customer_id")
@config_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what was erased as JSON.")
@click.pass_context
def forget_customer_command(ctx: click.Context, customer_id: str, config_path: str | None, yes: bool,
                            as_json: bool) -> None:
    """Erase a customer's personal data from the hub's store (GDPR).

    CUSTOMER_ID is the hub id or CONNECTION:EXTERNAL_ID (e.g. stripe:cus_123). Name, email,
    phone, addresses and tax ids go from the record, its history and its findings; links and
    the amounts of its invoices, payments and refunds stay. Nothing is sent to any vendor.
    """
    from sync.privacy import forget_customer, purge_old_copies, resolve_customer

    with _opened(ctx, config_path) as (_config, store):
        with store.transaction() as tx:
            canonical_id = resolve_customer(tx, customer_id)
        if not yes:
            click.confirm(f"Erase the personal data of hub customer {canonical_id}? This cannot be undone",
                          abort=True)
        with store.transaction() as tx:
            result = forget_customer(tx, canonical_id)
            # what was erased, by field name and count: never the values (this log is never erased)
            record_action(tx, cli_actor(), "customer.forget", "record", canonical_id,
                          after={k: v for k, v in result.to_json().items() if k != "canonical_id"})
        purge_old_copies(store)
        if as_json:
            click.echo(json.dumps(result.to_json(), sort_keys=True))
        elif result.already_erased:
            click.echo(f"customer {canonical_id} was already erased; scrubbed {result.findings} finding(s), "
                       f"{result.history_rows} history row(s) again")
        else:
            click.echo(f"erased {', '.join(result.fields) or 'nothing'} of customer {canonical_id}: "
                       f"{result.history_rows} history row(s), {result.findings} finding(s), "
                       f"{result.inbox_rows} inbox payload(s) scrubbed; {result.links} link(s) and all amounts "
                       "kept; nothing sent to any vendor")


__all__ = ["forget_customer_command", "rotate_key_command"]
