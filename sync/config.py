"""Config: TOML (tomllib), validated on load, ``${ENV_VAR}`` interpolation for secrets.

Every error names the key and what to set, e.g.
``connections.xero.client_secret: missing — set XERO_CLIENT_SECRET``; the CLI exits 2 on it.
A config is checked whole: every problem is reported at once (one ``ConfigError`` listing them),
so a new user fixes a fresh config in one pass instead of one run per missing variable. An
optional key whose whole value is an unset ``${VAR}`` is unset (its feature off), as the example
config's comments promise ("unset = off").
Each system's connection keys are declared by ``connectors/<system>/settings.py`` (``KEYS``).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from connectors.settings import ConnectionConfig, Key, system_keys
from mapping.tax_codes import key_problem
from state.store import url_problem
from sync.context import MAX_AMOUNT_MINOR
from sync.flows import DEFAULT_FLOWS, DEFAULT_OWNERSHIP

SYSTEMS = ("stripe", "quickbooks", "xero", "salesforce", "fake")
FIRST_CONTACT = ("auto", "review")  # sync.review
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    """One or more config problems; each names the key and what to do."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        text = problems[0] if len(problems) == 1 else \
            f"{len(problems)} problems:\n" + "\n".join(f"  {problem}" for problem in problems)
        super().__init__(text)


class _Problems:
    """Collects the problems of a config checked part by part, raising them all at the end."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def attempt(self, check: Callable[..., Any], *args: Any) -> Any:
        """``check(*args)``, or None with its problems kept."""
        try:
            return check(*args)
        except ConfigError as exc:
            self.found.extend(exc.problems)
            return None

    def raise_any(self) -> None:
        if self.found:
            raise ConfigError(*self.found)


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
        for extra in (self.encryption_key, self.admin.get("token"), self.alerts.get("webhook_url"),
                      self.alerts.get("smtp_password")):
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


def _shown(value: Any, key: Key) -> str:
    """What a wrong value was, for an error: never a secret's value, and never a string's, since
    a string in the wrong key may be a secret pasted or interpolated there (``${API_KEY}``)."""
    if key.secret or isinstance(value, (str, list, dict)):
        return _type_name(type(value))
    return f"{type(value).__name__} {value!r}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check(value: Any, key: Key, where: str) -> Any:
    """The value if it has the declared type and is within the declared bounds, else a ConfigError."""
    expected = key.type if isinstance(key.type, tuple) else (key.type,)
    if isinstance(value, bool) and bool not in expected:
        raise ConfigError(f"{where}: expected {_type_name(key.type)}, got {_shown(value, key)}")
    if not isinstance(value, expected) and not (float in expected and isinstance(value, int)):
        raise ConfigError(f"{where}: expected {_type_name(key.type)}, got {_shown(value, key)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_bounds(value, key, where)
    if key.choices is not None:
        for item in value if isinstance(value, list) else [value]:
            if item not in key.choices:
                got = "a non-string" if not isinstance(item, str) else repr(item)
                raise ConfigError(f"{where}: {got} is not one of {', '.join(map(str, key.choices))}")
    problem = key.check(value) if key.check else None
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return value


def _check_bounds(value: float, key: Key, where: str) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    if key.above is not None and not value > key.above:
        raise ConfigError(f"{where}: must be greater than {_number(key.above)}, got {value}")
    if key.minimum is not None and value < key.minimum:
        raise ConfigError(f"{where}: must be at least {_number(key.minimum)}, got {value}")
    if key.maximum is not None and value > key.maximum:
        raise ConfigError(f"{where}: must be at most {_number(key.maximum)}, got {value}")


def _table(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a table ([{name}])")
    return value


def _unset_reference(value: Any, env: Mapping[str, str]) -> bool:
    """The whole value is one ``${VAR}`` whose variable is unset or empty."""
    match = _ENV.fullmatch(value) if isinstance(value, str) else None
    return match is not None and not env.get(match.group(1))


def _section(data: Mapping[str, Any], spec: Mapping[str, Key], where: str,
             raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    problems = _Problems()
    for name in sorted(set(data) - set(spec)):
        problems.found.append(f"{where}.{name}: unknown key; known keys are {', '.join(sorted(spec))}")
    result: dict[str, Any] = {}
    for name, key in spec.items():
        result[name] = problems.attempt(_value, data, name, key, f"{where}.{name}", raw, env)
    problems.raise_any()
    return result


def _value(data: Mapping[str, Any], name: str, key: Key, path: str, raw: Mapping[str, Any],
           env: Mapping[str, str]) -> Any:
    """One key's checked value, its default when unset, or a ConfigError."""
    given = data.get(name)
    value = None if given is None or (not key.required and _unset_reference(given, env)) \
        else _interpolate(given, path, env)
    if value in (None, ""):
        if key.required:
            hint = _env_hint(str(raw.get(name, ""))) or f"{path.split('.')[-2]}_{name}".upper()
            raise ConfigError(f"{path}: missing — set {hint}" if key.secret
                              else f"{path}: missing — add `{name} = …` ({key.help or 'required'})")
        return key.default
    return _check(value, key, path)


def _tables(data: Any, where: str, names: tuple[str, ...], value: Key,
            env: Mapping[str, str], field_check: Callable[[str], str | None] | None = None,
            ) -> dict[str, dict[str, Any]]:
    """A section of named tables (``[ownership.customer]``, ``[tax_codes.xero]``): each name one
    of ``names``, each table's keys free (checked by ``field_check``), each value a ``value``."""
    result: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        path = f"{where}.{name}"
        if name not in names:
            raise ConfigError(f"{path}: unknown name; known are {', '.join(names)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: expected a table ([{path}])")
        checked: dict[str, Any] = {}
        for field_name, item in table.items():
            field_path = f"{path}.{field_name}"
            problem = field_check(field_name) if field_check else None
            if problem:
                raise ConfigError(f"{field_path}: {problem}")
            checked[field_name] = _check(_interpolate(item, field_path, env), value, field_path)
        result[name] = checked
    return result


def _cron(value: str) -> str | None:
    try:
        CronTrigger.from_crontab(value, timezone=UTC)
    except ValueError as exc:
        return f"not a cron expression ({exc}) — set five fields, e.g. \"0 2 * * *\""
    return None


def _tax_code_key(key: str) -> str | None:
    """A ``[tax_codes.<ledger>]`` key: RATE, RATE/TREATMENT or RATE/TREATMENT/COUNTRY
    (``mapping.tax_codes``, documented in config.example.toml)."""
    return key_problem(key)


# Ledgers whose connections take their tax codes from [tax_codes.<system>]
TAX_CODE_SYSTEMS = ("quickbooks", "xero")


def _tax_codes_into_connections(tax_codes: dict[str, dict[str, str]],
                                connections: dict[str, ConnectionConfig]) -> None:
    """One source of truth: each ledger connection gets its system's [tax_codes] table (as the
    declared ``tax_codes`` key). Xero's old ``connections.<name>.tax_types`` (rate -> TaxType) is
    still read for this release, folded into [tax_codes.xero], and refused when the two disagree."""
    for conn in connections.values():
        legacy = conn.get("tax_types") if conn.system == "xero" else None
        if isinstance(legacy, dict) and legacy:
            table = tax_codes.setdefault("xero", {})
            for key, code in legacy.items():
                where = f"connections.{conn.name}.tax_types.{key}"
                problem = key_problem(str(key))
                if problem:
                    raise ConfigError(f"{where}: {problem}")
                if not isinstance(code, str):
                    raise ConfigError(f"{where}: expected a string, got {type(code).__name__} {code!r}")
                if table.get(str(key), code) != code:
                    raise ConfigError(f"{where} = {code!r} disagrees with tax_codes.xero.{key} = "
                                      f"{table[str(key)]!r}: tax_types is deprecated, keep the codes "
                                      "under [tax_codes.xero] only")
                table[str(key)] = code
    for name, conn in list(connections.items()):
        if conn.system in TAX_CODE_SYSTEMS:
            settings = {**conn.settings, "tax_codes": dict(tax_codes.get(conn.system, {}))}
            connections[name] = ConnectionConfig(conn.name, conn.system, settings)


ENTITY_TYPES = tuple(DEFAULT_OWNERSHIP)
FLOW_NAMES = tuple(dict.fromkeys(flow.name for flow in DEFAULT_FLOWS))
OWNERS = Key(str, choices=SYSTEMS)
TAX_CODE = Key(str)
STATE_KEYS = {
    "url": Key(str, default="sqlite:///hub.db", check=url_problem,
               help="sqlite:///hub.db or postgresql+psycopg://…"),
    "encryption_key": Key(str, secret=True, help="Fernet key(s), newest first, comma-separated"),
}
SERVER_KEYS = {
    "host": Key(str, default="127.0.0.1"),
    "port": Key(int, default=8080, minimum=0, maximum=65535, help="0 = any free port"),
    "max_body_bytes": Key(int, default=1_000_000, minimum=1),
    "workers": Key(int, default=4, minimum=1, help="threads for blocking SDK calls"),
    "public_url": Key(str, default=""),
    "shutdown_seconds": Key(float, default=10.0, minimum=1,
                            help="SIGTERM: exit within this, leaving a hung vendor call uncommitted"),
}
# What sync/runtime.py, sync/flows.py, sync/scheduler.py, sync/diff.py, sync/alerts.py and
# sync/web read from each section; their defaults are the ones those readers fall back to.
FLOWS_KEYS = {
    "enabled": Key(list, choices=FLOW_NAMES, help="the default flows to run; unset = all"),
    "max_attempts": Key(int, default=8, minimum=1, help="a write is dead-lettered after this many"),
    "backoff_seconds": Key(float, default=30.0, minimum=0, help="first retry delay of a write"),
    "lease_seconds": Key(float, default=300.0, above=0, help="a claimed write returns after this"),
    "max_amount_minor": Key(int, default=MAX_AMOUNT_MINOR, minimum=1,
                            help="a write with a larger amount (minor units) is held, not made"),
    "first_contact": Key(str, default="auto", choices=FIRST_CONTACT,
                         help='"review": no connection is written to before `hub review approve`'),
}
SCHEDULES_KEYS = {
    "sync_interval_seconds": Key(float, default=300.0, above=0),
    "outbox_interval_seconds": Key(float, default=15.0, above=0),
    "inbox_interval_seconds": Key(float, default=2.0, above=0),
    "token_refresh_seconds": Key(float, default=600.0, above=0),
    "diff": Key(dict, default={}, help="cron per entity type, e.g. customer = \"0 2 * * *\""),
    "side_by_side_lanes": Key(bool, default=False,
                              help="PostgreSQL: the inbox, outbox and change feeds run side by side"),
}
DIFF_KEYS = {
    "line_rounding_tolerance_minor": Key(int, default=1, minimum=0),
    "totals_tolerance_minor": Key(int, default=0, minimum=0),
    "stale_sla_minutes": Key(float, default=60.0, above=0),
}
ALERTS_KEYS = {
    "webhook_url": Key(str, secret=True, help="Slack-compatible webhook URL"),
    "min_new_findings": Key(int, default=1, minimum=1),
    "sync_sla_minutes": Key(float, default=60.0, above=0,
                            help="alert when a connection had no successful sync for this long"),
    "smtp_host": Key(str, help="SMTP server for email alerts; unset = no email"),
    "smtp_port": Key(int, default=587, minimum=1, maximum=65535),
    "smtp_starttls": Key(bool, default=True),
    "smtp_username": Key(str),
    "smtp_password": Key(str, secret=True),
    "smtp_from": Key(str, default="billhub@localhost"),
    "email_to": Key(list, default=[], help="addresses that get the alert emails"),
}
ADMIN_KEYS = {
    "token": Key(str, secret=True, help="bearer token for /api and the console; unset = API off"),
    "session_idle_minutes": Key(float, default=30.0, above=0, help="a console session left alone ends"),
    "session_max_hours": Key(float, default=12.0, above=0, help="no console session outlives this"),
    "failed_tokens_per_minute": Key(int, default=10, minimum=1, help="per address, then 429"),
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
    problems = _Problems()
    known = {"state", "connections", "flows", "ownership", "schedules", "diff", "alerts", "admin",
             "tax_codes", "server"}
    for name in sorted(set(raw) - known):
        problems.found.append(f"{name}: unknown section; known sections are {', '.join(sorted(known))}")
    tables = {name: problems.attempt(_table, raw, name) or {} for name in known - {"connections"}}
    state = problems.attempt(_section, tables["state"], STATE_KEYS, "state", tables["state"], env) or {}
    connections: dict[str, ConnectionConfig] = {}
    connection_tables = raw.get("connections") or {}
    if not isinstance(connection_tables, dict):
        problems.found.append("connections: expected tables ([connections.NAME])")
        connection_tables = {}
    for name, table in connection_tables.items():
        conn = problems.attempt(_connection, name, table, env)
        if conn is not None:
            connections[name] = conn
    server = problems.attempt(_section, tables["server"], SERVER_KEYS, "server", tables["server"], env)
    sections: dict[str, Any] = {
        name: problems.attempt(_section, tables[name], keys, name, tables[name], env) or {}
        for name, keys in (("flows", FLOWS_KEYS), ("schedules", SCHEDULES_KEYS), ("diff", DIFF_KEYS),
                           ("alerts", ALERTS_KEYS), ("admin", ADMIN_KEYS))}
    sections["schedules"]["diff"] = problems.attempt(
        _tables, {"diff": sections["schedules"].get("diff") or {}}, "schedules", ("diff",),
        Key(str, check=_cron), env, lambda entity: None if entity in ENTITY_TYPES else
        f"unknown entity type; known are {', '.join(ENTITY_TYPES)}") or {"diff": {}}
    sections["schedules"]["diff"] = sections["schedules"]["diff"]["diff"]
    sections["ownership"] = problems.attempt(_tables, tables["ownership"], "ownership", ENTITY_TYPES,
                                             OWNERS, env) or {}
    sections["tax_codes"] = problems.attempt(_tables, tables["tax_codes"], "tax_codes", SYSTEMS,
                                             TAX_CODE, env, _tax_code_key) or {}
    problems.attempt(_tax_codes_into_connections, sections["tax_codes"], connections)
    problems.raise_any()
    return Config(path=path, state_url=state["url"], encryption_key=state["encryption_key"],
                  connections=connections, server=server, raw=raw, **sections)


def _connection(name: str, table: Any, env: Mapping[str, str]) -> ConnectionConfig | None:
    """One ``[connections.NAME]`` table checked (None when ``enabled = false``), or a ConfigError."""
    where = f"connections.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table ([{where}])")
    system = table.get("system", name if name in SYSTEMS else None)
    if system not in SYSTEMS:
        raise ConfigError(f"{where}.system: expected one of {', '.join(SYSTEMS[:4])}, got {system!r}")
    if table.get("enabled", True) is False:
        return None
    body = {k: v for k, v in table.items() if k not in ("system", "enabled", "first_contact")}
    mode = table.get("first_contact")  # every system's key (sync.review), so not in its KEYS
    if mode is not None and mode not in FIRST_CONTACT:
        raise ConfigError(f'{where}.first_contact: expected "auto" or "review", got {mode!r}')
    if "tax_codes" in body:
        raise ConfigError(f"{where}.tax_codes: tax codes are set per ledger, under [tax_codes.{system}]")
    settings = _section(body, system_keys(system), where, body, env)
    if mode is not None:
        settings["first_contact"] = mode
    return ConnectionConfig(name, system, settings)
