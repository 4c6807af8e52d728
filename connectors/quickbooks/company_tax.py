"""What the QuickBooks company says about tax: its country (which of Intuit's two tax models it
posts by) and its tax codes with their sales rates, read once per process before the first
invoice is mapped (``mapping.quickbooks_tax`` is the pure half)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.quickbooks.streams import Reader
from mapping.quickbooks_tax import CompanyTaxCode, QboTax
from mapping.tax_codes import TaxCodes


class CompanyTax:
    def __init__(self, reader: Reader, configured: Mapping[str, str] | None) -> None:
        self.reader = reader
        self.codes = TaxCodes(dict(configured or {}), "quickbooks")
        self._model: QboTax | None = None

    @staticmethod
    def _sql(entity: str) -> str:
        return f"SELECT * FROM {entity} MAXRESULTS 1000"

    def queries(self) -> list[str]:
        """What ``model`` would ask first (none once it knows): CompanyInfo, and the tax lists
        when codes are configured (they are read then whatever the country)."""
        if self._model is not None:
            return []
        return [self._sql(e) for e in ("CompanyInfo", *(("TaxRate", "TaxCode") if self.codes else ()))]

    def _rows(self, entity: str, answers: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
        given = answers.get(self._sql(entity))
        answer = given if given is not None else self.reader.query(self._sql(entity))
        rows = (answer.get("QueryResponse") or {}).get(entity) or []
        return [r for r in rows if isinstance(r, dict)]

    def model(self, answers: Mapping[str, dict[str, Any]] | None = None) -> QboTax:
        """The company's tax model (one CompanyInfo query; for a non-US company its TaxCode and
        TaxRate lists too; none that ``answers`` holds already), then remembered."""
        if self._model is None:
            known = answers or {}
            info = self._rows("CompanyInfo", known)
            country = str((info[0].get("Country") if info else None) or "US").upper()
            by_key: dict[str, CompanyTaxCode] = {}
            if country != "US" or self.codes:
                lists = [self._sql("TaxRate"), self._sql("TaxCode")]
                if lists[0] not in known:  # a non-US company found just now: both lists in one request
                    known = {**known, **dict(zip(lists, self.reader.query_many(lists), strict=True))}
                percents = {str(r["Id"]): Decimal(str(r.get("RateValue") or 0))
                            for r in self._rows("TaxRate", known)}
                for row in self._rows("TaxCode", known):
                    details = ((row.get("SalesTaxRateList") or {}).get("TaxRateDetail")) or []
                    rates = tuple((str(d["TaxRateRef"]["value"]), percents.get(str(d["TaxRateRef"]["value"]),
                                                                               Decimal(0)))
                                  for d in details if isinstance(d, dict) and d.get("TaxRateRef"))
                    code = CompanyTaxCode(str(row["Id"]), str(row.get("Name") or row["Id"]), rates)
                    by_key[code.id] = by_key[code.name] = code
            self._model = QboTax(self.codes, country, by_key)
        return self._model


__all__ = ["CompanyTax"]
