"""``hub connect`` and ``hub disconnect`` (the flow itself is ``sync/connect.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from connectors.oauth_connect import ConnectError
from sync.admin_commands import _opened, config_option
from sync.audit import cli_actor
from sync.connect import DEFAULT_PORT, connect, disconnect, pick_connection
from sync.terminal import fail


@click.command("connect")
@click.argument("what", metavar="SYSTEM|CONNECTION")
@click.option("--connection", "connection", default=None, help="The connection, when the system has several.")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port of the local redirect listener (register http://127.0.0.1:PORT/callback with the app).")
@click.option("--tenant", default=None, help="Xero: the tenant id, when the consent covers several organisations.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the consent.")
@config_option
@click.pass_context
def connect_command(ctx: click.Context, what: str, connection: str | None, no_browser: bool, port: int,
                    tenant: str | None, timeout: float, config_path: str | None) -> None:
    """Connect QuickBooks, Xero or Salesforce through the vendor's consent page (OAuth 2.0).

    Stores the tokens encrypted with the company / organisation / org consented to, and resumes a
    connection that needed re-authorisation. Exit 1 when the vendor refused or the callback did
    not match; 2 on a config problem.
    """
    with _opened(ctx, config_path) as (config, store):
        conn = pick_connection(config, what, connection)
        if not config.encryption_key:
            fail("state.encryption_key is not set: tokens are stored encrypted (see hub init)")
        try:
            connected = connect(conn, store, port=port, browser=not no_browser, tenant=tenant, timeout=timeout,
                                now=lambda: datetime.now(UTC), say=click.echo, actor=cli_actor())
        except ConnectError as exc:
            fail(str(exc), code=1)
        click.echo(f"connected {conn.name} ({conn.system}, {connected.place_key} {connected.place}); "
                   "tokens stored encrypted")


@click.command("disconnect")
@click.argument("connection")
@config_option
@click.pass_context
def disconnect_command(ctx: click.Context, connection: str, config_path: str | None) -> None:
    """Revoke a connection's grant at the vendor and delete its stored tokens."""
    with _opened(ctx, config_path) as (config, store):
        conn = pick_connection(config, connection, None)
        had, problem = disconnect(store, conn, actor=cli_actor())
        if problem:
            click.echo(f"warning: {problem}; the stored tokens are deleted anyway", err=True)
        click.echo(f"disconnected {conn.name}: " + ("grant revoked, tokens deleted" if had and not problem
                                                   else "tokens deleted" if had else "no stored tokens"))


__all__ = ["connect_command", "disconnect_command"]
