"""The context every ``hub`` command gets (``ctx.obj``): the config and the store, opened lazily."""

from __future__ import annotations

from state.store import StateStore
from sync.config import Config, load_config
from sync.runtime import Hub, open_store


class HubContext:
    """Loads config and opens the store lazily, so commands that need neither stay fast."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._store: StateStore | None = None
        self._hub: Hub | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self.store.init()
            self._hub = Hub.from_config(self.config, self.store)
        return self._hub

    def close(self) -> None:
        if self._hub is not None:
            for connector in self._hub.connectors.values():
                connector.close()
        if self._store is not None:
            self._store.dispose()


__all__ = ["HubContext"]
