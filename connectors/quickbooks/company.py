"""What the QuickBooks company itself says about how to post: its home currency.

Every ``ExchangeRate`` QuickBooks keeps is home units per one unit of the document's currency,
and a document without ``CurrencyRef`` is in the home currency — so the home currency is the
company's to say (``Preferences.CurrencyPrefs.HomeCurrency``), read once per process before the
first read or write. A ``home_currency`` set in the config is a check, not an override: when it
disagrees with the company, nothing is read or written (a wrong home currency would post every
foreign document at a rate for another pair).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import ConnectorError, InvalidError
from connectors.quickbooks.streams import Reader

PREFERENCES = "SELECT * FROM Preferences"


class CompanyCurrency:
    def __init__(self, reader: Reader, configured: str | None, *, system: str = "quickbooks") -> None:
        self.reader = reader
        self.configured = configured.upper() if configured else None
        self.system = system
        self._home: str | None = None

    def queries(self) -> list[str]:
        """What ``home`` would ask (none once it knows): so a caller can ask it with others."""
        return [] if self._home is not None else [PREFERENCES]

    def home(self, answers: Mapping[str, dict[str, Any]] | None = None) -> str:
        """The company's home currency (one ``Preferences`` query, unless ``answers`` holds its
        answer already; then remembered)."""
        if self._home is None:
            given = (answers or {}).get(PREFERENCES)
            answer = given if given is not None else self.reader.query(PREFERENCES)
            rows = (answer.get("QueryResponse") or {}).get("Preferences") or []
            prefs = rows[0].get("CurrencyPrefs") if rows and isinstance(rows[0], dict) else None
            home = ((prefs or {}).get("HomeCurrency") or {}).get("value") if isinstance(prefs, dict) else None
            if not isinstance(home, str) or len(home) != 3:
                raise ConnectorError("QuickBooks' Preferences name no home currency", system=self.system)
            if self.configured and self.configured != home.upper():
                raise InvalidError(f"home_currency = {self.configured!r} in the config, but this QuickBooks company's "
                                   f"home currency is {home.upper()}: remove the key (it is read from the company) "
                                   "or correct it", system=self.system)
            self._home = home.upper()
        return self._home


__all__ = ["CompanyCurrency"]
