"""Structured JSON logs with every configured secret (and any bearer token) redacted.

Redaction happens on the fully formatted line, after ``%`` arguments and exception text are
merged in, so a secret cannot slip through an argument, a traceback or an ``extra`` field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# Tokens the hub never configured (issued and rotated at run time) still appear under their key
# in SDK debug lines: {'access_token': '…'}, refresh_token=…&…, "client_secret": "…".
_KEYED = re.compile(r"""(?i)((?:access|refresh|id)_token|client_secret|api_key|password|x-api-key)"""
                    r"""(\\?["']?\s*[:=]\s*\\?["']?)([^"'\\,\s&}]{4,})""")
# LogRecord attributes that are not "extra" context.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class Redactor:
    """Replaces each secret value and bearer token in a string."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _KEYED.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extra fields, exception."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redactor(json.dumps(entry, default=str, sort_keys=False))


LIBRARY_LOGGERS = ("aiohttp.access", "apscheduler", "urllib3", "stripe", "intuitlib", "quickbooks",
                   "simple_salesforce", "xero_python", "alembic")


def configure_logging(secrets: Iterable[str], *, level: int = logging.INFO,
                      stream: IO[str] | None = None) -> logging.Handler:
    """Route the root logger to one JSON handler; returns it (tests remove it again)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(Redactor(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old.formatter, JsonFormatter):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # What the hub did is billhub's to say at INFO (one line per job that did work); the
    # libraries' chatter (the scheduler's "Running job ...", HTTP pools) only from WARNING up.
    for noisy in LIBRARY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def redact_also(secrets: Iterable[str]) -> None:
    """Add secrets to the log handlers' redaction (a reloaded config may bring new ones; the
    old ones stay redacted too — a line about the old config may still be written)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.redactor = Redactor([*handler.formatter.redactor.secrets, *secrets])


__all__ = ["REDACTED", "JsonFormatter", "Redactor", "configure_logging", "redact_also"]
