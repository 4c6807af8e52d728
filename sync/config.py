"""Config: TOML (tomllib), validated on load, ``${ENV_VAR}`` interpolation for secrets.

Every error names the key and what to set, e.g.
``connections.xero.client_secret: missing — set XERO_CLIENT_SECRET``; the CLI exits 2 on it.
Each system's connection keys are declared by ``connectors/<system>/settings.py`` (``KEYS``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.settings import ConnectionConfig, Key, system_keys

SYSTEMS = ("stripe", "quickbooks", "xero", "salesforce", "fake")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    """A config problem; the message names the key and what to do."""


@dataclass(frozen=True)
class Config:
    path: Path | None
    state_url: str
    encryption_key: str | None
    connections: dict[str, ConnectionConfig]
    flows: dict[str, Any] = field(default_factory=dict)
    ownership: dict[str, dict[str, str]] = field(default_factory=dict)
    schedules: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
    admin: dict[str, Any] = field(default_factory=dict)
    tax_codes: dict[str, dict[str, str]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def connections_of(self, system: str) -> list[ConnectionConfig]:
        return [c for c in self.connections.values() if c.system == system]

    @property
    def secrets(self) -> list[str]:
        values = [s for c in self.connections.values() for s in c.secrets]
        for extra in (self.encryption_key, self.admin.get("token"), self.alerts.get("webhook_url")):
            if extra:
                values.append(str(extra))
        return values


def _env_hint(text: str) -> str | None:
    match = _ENV.search(text)
    return match.group(1) if match else None


def _interpolate(value: Any, where: str, env: Mapping[str, str]) -> Any:
    """Replace ``${VAR}``; an unset variable is reported as missing with the variable to set."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env or env[name] == "":
                raise _Missing(name)
            return env[name]
        try:
            return _ENV.sub(sub, value)
        except _Missing as missing:
            raise ConfigError(f"{where}: missing — set {missing.name}") from None
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    return value


class _Missing(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _type_name(tp: type | tuple[type, ...]) -> str:
    names = [t.__name__ for t in (tp if isinstance(tp, tuple) else (tp,))]
    return {"str": "a string", "int": "an integer", "bool": "true or false", "float": "a number",
            "list": "a list", "dict": "a table"}.get(names[0], names[0]) if len(names) == 1 else \
        " or ".join(names)


def _check(value: Any, key: Key, where: str) -> Any:
    expected = key.type if isinstance(key.type, tuple) else (key.type,)
    if float in expected and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bool) and bool not in expected:
        raise ConfigError(f"{where}: expected {_type_name(key.type)}, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {_type_name(key.type)}, got {type(value).__name__} {value!r}")
    return value


def _section(data: Mapping[str, Any], spec: Mapping[str, Key], where: str,
             raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; known keys are {', '.join(sorted(spec))}")
    result: dict[str, Any] = {}
    for name, key in spec.items():
        path = f"{where}.{name}"
        if name not in data or data[name] in (None, ""):
            if key.required:
                hint = _env_hint(str(raw.get(name, ""))) or f"{where.split('.')[-1]}_{name}".upper()
                raise ConfigError(f"{path}: missing — set {hint}" if key.secret
                                  else f"{path}: missing — add `{name} = …` ({key.help or 'required'})")
            result[name] = key.default
            continue
        value = _interpolate(data[name], path, env)
        result[name] = _check(value, key, path)
    return result


STATE_KEYS = {
    "url": Key(str, default="sqlite:///hub.db", help="sqlite:///hub.db or postgresql+psycopg://…"),
    "encryption_key": Key(str, secret=True, help="Fernet key(s), newest first, comma-separated"),
}
SERVER_KEYS = {
    "host": Key(str, default="127.0.0.1"),
    "port": Key(int, default=8080),
    "max_body_bytes": Key(int, default=1_000_000),
    "workers": Key(int, default=4, help="threads for blocking SDK calls"),
    "public_url": Key(str, default=""),
}


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file (``--config``, else ``HUB_CONFIG``, else ``hub.toml``)."""
    env = os.environ if env is None else env
    chosen = Path(path or env.get("HUB_CONFIG") or "hub.toml")
    if not chosen.exists():
        raise ConfigError(f"config file {chosen} not found — copy config.example.toml to {chosen} "
                          "or pass --config PATH")
    try:
        raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{chosen}: not a text file; the config is TOML") from None
    except OSError as exc:  # a folder, or not readable
        raise ConfigError(f"{chosen}: cannot read it ({exc.strerror})") from None
    return parse_config(raw, env=env, path=chosen)


def parse_config(raw: dict[str, Any], *, env: Mapping[str, str] | None = None,
                 path: Path | None = None) -> Config:
    env = os.environ if env is None else env
    known = {"state", "connections", "flows", "ownership", "schedules", "diff", "alerts", "admin",
             "tax_codes", "server"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; known sections are {', '.join(sorted(known))}")
    state_raw = raw.get("state", {})
    state = _section(state_raw, STATE_KEYS, "state", state_raw, env)
    connections: dict[str, ConnectionConfig] = {}
    for name, table in (raw.get("connections") or {}).items():
        where = f"connections.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table ([{where}])")
        system = table.get("system", name if name in SYSTEMS else None)
        if system not in SYSTEMS:
            raise ConfigError(f"{where}.system: expected one of {', '.join(SYSTEMS[:4])}, got {system!r}")
        if table.get("enabled", True) is False:
            continue
        body = {k: v for k, v in table.items() if k not in ("system", "enabled")}
        settings = _section(body, system_keys(system), where, body, env)
        connections[name] = ConnectionConfig(name, system, settings)
    server = _section(raw.get("server", {}), SERVER_KEYS, "server", raw.get("server", {}), env)
    sections = {k: _interpolate(raw.get(k, {}), k, env) for k in
                ("flows", "ownership", "schedules", "diff", "alerts", "admin", "tax_codes")}
    for name, value in sections.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a table ([{name}])")
    return Config(path=path, state_url=state["url"], encryption_key=state["encryption_key"],
                  connections=connections, server=server, raw=raw, **sections)
