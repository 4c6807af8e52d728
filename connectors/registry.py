"""Builds the connector for a configured connection (one module per system)."""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import TYPE_CHECKING

from connectors.base import Connector, ConnectorError
from connectors.oauth_connect import PLACE_KEYS
from state.errors import StateError

if TYPE_CHECKING:
    from connectors.settings import ConnectionConfig
    from state.store import StateStore


def build_connector(config: ConnectionConfig, store: StateStore) -> Connector:
    """``connectors.<system>.connector.build(config, store)`` for the connection's system."""
    module = importlib.import_module(f"connectors.{config.system}.connector")
    connector: Connector = module.build(with_connected_place(config, store), store)
    return connector


def with_connected_place(config: ConnectionConfig, store: StateStore) -> ConnectionConfig:
    """The config with the realm / tenant / instance ``hub connect`` stored beside the tokens:
    the stored one wins (it is what the person consented to), the config's is the fallback for a
    connection whose tokens were made elsewhere. Neither: say how to get one."""
    key = PLACE_KEYS.get(config.system)
    if key is None:
        return config
    stored = None
    if store.cipher is not None:
        try:
            with store.transaction() as tx:
                stored = (tx.load_credentials(config.name) or {}).get(key)
        except StateError:
            stored = None  # no store yet (before hub init) or unreadable: hub check reports those
    if stored:
        return replace(config, settings={**config.settings, key: stored})
    if not config[key]:
        raise ConnectorError(f"connections.{config.name}.{key}: not set and {config.name} is not connected: "
                             f"run `hub connect {config.name}` (or set {key})", system=config.name)
    return config
