"""What a connection's settings are: declared keys, and one configured connection.

Each system declares its connection keys in ``connectors/<system>/settings.py`` (``KEYS``);
``sync/config.py`` validates a config file against them and fills every unset key with its
declared default, so a connector reads ``config[key]`` and never restates a default.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Key:
    """One setting: its type, whether it must be set, its default, and a hint.

    Bounds are checked when a config file is loaded (``sync/config.py``): ``minimum`` and
    ``maximum`` inclusive, ``above`` exclusive (a rate or an interval that must be > 0),
    ``choices`` the allowed values (of the value, or of each item of a list), and ``check`` a
    function returning what is wrong with a value (a cron string, a path, a URL) or None."""

    type: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    secret: bool = False
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None


@dataclass(frozen=True)
class ConnectionConfig:
    """One configured connection. Every declared key is present in ``settings``: an unset one
    holds its declared default (filled here too, for configs built by hand), so ``config[key]``
    is the one way to read a setting and no caller restates a default."""

    name: str
    system: str
    settings: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", with_defaults(system_keys(self.system), self.settings))

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

    def get(self, key: str) -> Any:
        """The setting, or None for a key this system does not declare."""
        return self.settings.get(key)

    @property
    def secrets(self) -> list[str]:
        """Plain-text secret values (for the log redactor); never print these."""
        keys = system_keys(self.system)
        return [str(v) for k, v in self.settings.items() if k in keys and keys[k].secret and v]



def with_defaults(keys: Mapping[str, Key], settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with every declared key that is unset (missing, None or "") at its default."""
    filled = dict(settings)
    for name, key in keys.items():
        if filled.get(name) in (None, ""):
            filled[name] = key.default
    return filled


def system_keys(system: str) -> dict[str, Key]:
    module = importlib.import_module(f"connectors.{system}.settings")
    keys: dict[str, Key] = module.KEYS
    return keys


# Per-call retry settings every connection has (connectors/retry.py RetryPolicy.from_config).
RETRY_KEYS = {
    "max_attempts": Key(int, default=6, minimum=1,
                        help="tries of one call before its error is handed to the hub's policy"),
    "retry_base_seconds": Key(float, default=0.5, minimum=0,
                              help="first backoff of a failed call; doubles, with jitter"),
    "retry_max_seconds": Key(float, default=30.0, minimum=0,
                             help="longest backoff between two attempts of one call"),
}


def existing_file(value: Any) -> str | None:
    """A ``check`` for a path that must name a readable file (a CA bundle)."""
    path = Path(str(value)).expanduser()
    if not path.is_file():
        return f"no file at {value} — set the path of an existing PEM file, or remove the key"
    return None
