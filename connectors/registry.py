"""Builds the connector for a configured connection (one module per system)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from connectors.base import Connector

if TYPE_CHECKING:
    from connectors.settings import ConnectionConfig
    from state.store import StateStore


def build_connector(config: ConnectionConfig, store: StateStore) -> Connector:
    """``connectors.<system>.connector.build(config, store)`` for the connection's system."""
    module = importlib.import_module(f"connectors.{config.system}.connector")
    connector: Connector = module.build(config, store)
    return connector
