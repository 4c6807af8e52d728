"""What the QuickBooks company itself says about how to post: its home currency.

Every ``ExchangeRate`` QuickBooks keeps is home units per one unit of the document's currency,
and a document without ``CurrencyRef`` is in the home currency — so the home currency is the
company's to say (``Preferences.CurrencyPrefs.HomeCurrency``), read once per process before the
first read or write. A ``home_currency`` set in the config is a check, not an override: when it
disagrees with the company, nothing is read or written (a wrong home currency would post every
foreign document at a rate for another pair).
"""

from __future__ import annotations

from connectors.base import ConnectorError, InvalidError
from connectors.quickbooks.streams import Reader


class CompanyCurrency:
    def __init__(self, reader: Reader, configured: str | None, *, system: str = "quickbooks") -> None:
        self.reader = reader
        self.configured = configured.upper() if configured else None
        self.system = system
        self._home: str | None = None

    def home(self) -> str:
        """The company's home currency (one ``Preferences`` query, then remembered)."""
        if self._home is None:
            answer = self.reader.query("SELECT * FROM Preferences")
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
