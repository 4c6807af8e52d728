"""``hub users``: the named people who may use the console and the API, and their roles.

Roles: read-only (look), operator (acknowledge, resync, retry, drop, run now, approve), admin
(also people and connections). A new user's API token (and a reset's) is printed once and only
its digest is kept. The configured ``[admin] token`` keeps working as the bootstrap admin
("admin") — use it to add the first admin, then rotate it out of the config if you like.
Every change is in the audit log (``hub audit list --action user``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from state.store import StateStore
from sync.audit import cli_actor
from sync.cli_context import HubContext
from sync.output_formats import Column, Listing, emit, format_option
from sync.terminal import console, fail, handles_errors, print_json
from sync.users import ROLES, UserError, add_user, disable_user, reset_user, set_role


def _store(hub: HubContext) -> StateStore:
    store = hub.store
    store.init()  # the users table may be newer than the database: migrate (idempotent)
    return store


def _user_error(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except UserError as exc:
        fail(str(exc))


def _ask_password(wanted: bool) -> str | None:
    if not wanted:
        return None
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _show_token(name: str, token: str, as_json: bool, **extra: Any) -> None:
    if as_json:
        print_json({"name": name, "token": token, **extra})
        return
    click.echo(f"API token of {name} (shown once; only its digest is kept — store it now):")
    click.echo(token)


@click.group()
def users() -> None:
    """Named users of the console and API: add, list, disable, reset, role."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What they may do.")
@click.option("--password", "with_password", is_flag=True,
              help="Also set a console password (asked for, never on the command line).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (holds the token).")
@click.pass_obj
@handles_errors
def users_add(hub: HubContext, name: str, role: str, with_password: bool, as_json: bool) -> None:
    """Add a user; prints their API token once (it also logs into the console with their name)."""
    store = _store(hub)
    password = _ask_password(with_password)
    token = _user_error(lambda: add_user(store, name, role, cli_actor(), password=password))
    _show_token(name, token, as_json, role=role)


@users.command("list")
@format_option
@click.pass_obj
@handles_errors
def users_list(hub: HubContext, fmt: str) -> None:
    """Every user, their role and state (never a secret)."""
    with _store(hub).transaction() as tx:
        listed = [u.to_json() for u in tx.list_users()]
    if not listed and fmt == "table":
        console.print("no users yet: hub users add NAME --role admin|operator|read-only")
        return
    listing = Listing("Users", [Column("name"), Column("role"), Column("state"), Column("password"),
                                Column("since", "when")])
    for u in listed:
        listing.add(u["name"], u["role"], "disabled" if u["disabled"] else "active",
                    "set" if u["password"] else "-", u["created_at"][:10])
    emit(fmt, {"users": listed}, lambda: [listing], console, print_json)


@users.command("disable")
@click.argument("name")
@click.option("--reason", help="Why (kept in the audit log).")
@click.pass_obj
@handles_errors
def users_disable(hub: HubContext, name: str, reason: str | None) -> None:
    """Stop a user logging in or calling the API (their open console session ends too)."""
    disable_user(_store(hub), name, cli_actor(), reason=reason)
    console.print(f"{name} is disabled; `hub users reset {name}` enables them with a new token")


@users.command("reset")
@click.argument("name")
@click.option("--password", "with_password", is_flag=True, help="Also set a new console password (asked for).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (holds the token).")
@click.pass_obj
@handles_errors
def users_reset(hub: HubContext, name: str, with_password: bool, as_json: bool) -> None:
    """A new API token for a user (the old one stops working); enables a disabled user."""
    store = _store(hub)
    password = _ask_password(with_password)
    token = _user_error(lambda: reset_user(store, name, cli_actor(), password=password))
    _show_token(name, token, as_json)


@users.command("role")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What they may do from now on.")
@click.pass_obj
@handles_errors
def users_role(hub: HubContext, name: str, role: str) -> None:
    """Change what a user may do."""
    _user_error(lambda: set_role(_store(hub), name, role, cli_actor()))
    console.print(f"{name} is now {role}")


__all__ = ["users"]
