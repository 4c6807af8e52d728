"""Wires a config into a running hub: store, connectors, engine, differ."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.base import Connector
from connectors.registry import build_connector
from state.crypto import Cipher
from state.store import StateStore
from sync.config import Config
from sync.context import MAX_AMOUNT_MINOR
from sync.diff import Differ, Tolerances
from sync.engine import Engine
from sync.flows import Routing, routing_from_config
from sync.review import review_connections


def open_store(config: Config) -> StateStore:
    cipher = Cipher(config.encryption_key) if config.encryption_key else None
    return StateStore(config.state_url, cipher=cipher)


@dataclass
class Hub:
    config: Config
    store: StateStore
    connectors: dict[str, Connector]
    routing: Routing
    engine: Engine
    differ: Differ

    @classmethod
    def from_config(cls, config: Config, store: StateStore | None = None,
                    connectors: Mapping[str, Connector] | None = None) -> Hub:
        store = store or open_store(config)
        built = dict(connectors) if connectors is not None else {
            name: build_connector(conn, store) for name, conn in config.connections.items()}
        routing = routing_from_config(config.flows, config.ownership)
        engine = Engine(store, built, routing, tax_codes=config.tax_codes,
                        max_attempts=int(config.flows.get("max_attempts", 8)),
                        backoff_seconds=float(config.flows.get("backoff_seconds", 30.0)),
                        lease_seconds=float(config.flows.get("lease_seconds", 300.0)),
                        max_amount_minor=int(config.flows.get("max_amount_minor", MAX_AMOUNT_MINOR)))
        engine.review_connections = review_connections(
            {name: conn.settings for name, conn in config.connections.items()}, config.flows.get("first_contact"))
        differ = Differ(store, built, routing, Tolerances.from_config(config.diff))
        return cls(config, store, built, routing, engine, differ)

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        self.store.dispose()
