"""Automatic tax (Stripe Tax) in the Stripe emulator: ``automatic_tax[enabled]`` on invoices and
subscriptions, computed from the customer's location and tax ids.

Stripe facts kept (spec3 ``automatic_tax``, ``customer_tax``, the line ``taxes``; docs "Collect
taxes", "Customer tax IDs"):
- the customer's location is its address (``customer.tax.location``, source
  ``billing_address``); ``customer.tax`` is includable (``expand[]=tax``), its ``automatic_tax``
  ``supported`` where the account collects, ``not_collecting`` where it is not registered,
  ``unrecognized_location`` without a country (a US address also needs its state);
- an invoice with automatic tax and no recognised location cannot be finalized: its
  ``automatic_tax.status`` is ``requires_location_inputs`` and finalizing is a 400
  ``customer_tax_location_invalid``; otherwise the status is ``complete``, provider ``stripe``,
  liability ``{type: self}``;
- each line's ``taxes`` name a tax rate Stripe made for the jurisdiction (``tax_type`` vat,
  gst, sales_tax) and a ``taxability_reason``: ``standard_rated``, ``customer_exempt``
  (``tax_exempt=exempt``), ``reverse_charge`` (``tax_exempt=reverse``, or a business customer in
  the EU or the UK with a verified ``eu_vat``/``gb_vat`` id: the customer accounts for the VAT),
  amount 0 for the last two; where the account does not collect, lines carry no tax;
- an invoice copies the customer's tax ids into ``customer_tax_ids`` when it is finalized;
- an automatic tax invoice takes no item with tax rates of its own or a negative amount (400).

Emulator choices (not Stripe facts): the account is registered where ``TAX_REGISTRATIONS`` says
(a table of standard rates; ``StripeEmulator.tax_registrations`` can be replaced in a test); a
price or item with ``tax_behavior=unspecified`` is taxed as exclusive; tax is rounded half up per
line on its amount after discounts, as with tax rates; a VAT id is ``verified`` when it has its
country's prefix and 8-12 letters or digits after it (``catalog.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.catalog import CatalogMixin, tax_location
from connectors.stripe.emulator.invoices import InvoicesMixin
from connectors.stripe.emulator.money import round_half_up
from connectors.stripe.emulator.store import Params
from connectors.stripe.emulator.wire import StripeAPIError, as_bool, as_int, invalid

# Where the emulated account collects: jurisdiction -> (display name, tax type, percent)
TAX_REGISTRATIONS: dict[str, tuple[str, str, str]] = {
    "GB": ("VAT", "vat", "20"), "DE": ("VAT", "vat", "19"), "FR": ("VAT", "vat", "20"),
    "IE": ("VAT", "vat", "23"), "NL": ("VAT", "vat", "21"), "AU": ("GST", "gst", "10"),
    "US-NY": ("Sales Tax", "sales_tax", "8.875"),
}
EU = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
REVERSE_CHARGE_IDS = frozenset({"eu_vat", "gb_vat"})
ZERO_REASONS = frozenset({"customer_exempt", "reverse_charge"})


class AutomaticTaxMixin(InvoicesMixin, CatalogMixin):
    """Stripe Tax's calculation for invoices with ``automatic_tax[enabled]``."""

    tax_registrations: Mapping[str, tuple[str, str, str]] = TAX_REGISTRATIONS

    # ------------------------------------------------------------------ the customer's side

    def tax_location(self, cus: Mapping[str, Any]) -> dict[str, Any] | None:
        return tax_location(cus)

    def _jurisdiction(self, location: Mapping[str, Any]) -> str | None:
        """The registration the location falls under (``None``: the account does not collect)."""
        country, state = location["country"], location.get("state")
        for key in (f"{country}-{state}" if state else None, country):
            if key and key in self.tax_registrations:
                return key
        return None

    def customer_tax(self, cus: Mapping[str, Any]) -> dict[str, Any]:
        location = self.tax_location(cus)
        status = ("unrecognized_location" if location is None else
                  "supported" if self._jurisdiction(location) else "not_collecting")
        return {"automatic_tax": status, "ip_address": None, "location": location, "provider": "stripe"}

    def includable(self, node: Mapping[str, Any], field: str) -> dict[str, Any] | None:
        """A customer's ``tax`` (``expand[]=tax``)."""
        if node.get("object") == "customer" and field == "tax" and node.get("id") and not node.get("deleted"):
            cus = self.table("customer").get(str(node["id"]))
            if cus is not None:
                return self.customer_tax(cus)
        others = getattr(super(), "includable", None)
        found: dict[str, Any] | None = others(node, field) if others is not None else None
        return found

    def _reason(self, cus: Mapping[str, Any], location: Mapping[str, Any]) -> str:
        if cus.get("tax_exempt") == "exempt":
            return "customer_exempt"
        if cus.get("tax_exempt") == "reverse":
            return "reverse_charge"
        if location["country"] in EU | {"GB"} and any(
                t["customer"] == cus["id"] and not t.get("_deleted") and t["type"] in REVERSE_CHARGE_IDS
                and (t.get("verification") or {}).get("status") == "verified"
                for t in self.table("tax_id").values()):
            return "reverse_charge"
        return "standard_rated"

    # ------------------------------------------------------------------ the invoice's side

    def enable_automatic_tax(self, inv: dict[str, Any], spec: Any) -> None:
        if not (isinstance(spec, Mapping) and as_bool(spec, "enabled", False)):
            return
        cus = self.table("customer")[inv["customer"]]
        located = self.tax_location(cus) is not None
        inv["automatic_tax"] = {"enabled": True, "disabled_reason": None, "liability": {"type": "self"},
                                "provider": "stripe",
                                "status": "complete" if located else "requires_location_inputs"}

    def _auto_rate(self, jurisdiction: str, inclusive: bool) -> str:
        """The tax rate Stripe Tax names for a jurisdiction (made once per jurisdiction and kind)."""
        key = f"{jurisdiction}/{'inclusive' if inclusive else 'exclusive'}"
        for rate in self.table("tax_rate").values():
            if rate.get("_automatic") == key:
                return str(rate["id"])
        name, kind, pct = self.tax_registrations[jurisdiction]
        country, _, state = jurisdiction.partition("-")
        made = self.create_tax_rate({"display_name": name, "percentage": pct, "inclusive": "true" if inclusive else "false",
                                     "country": country, "state": state, "jurisdiction": jurisdiction,
                                     "tax_type": kind})
        self.table("tax_rate")[made["id"]]["_automatic"] = key
        return str(made["id"])

    def line_taxes(self, inv: Mapping[str, Any], line: Mapping[str, Any], base: int) -> list[dict[str, Any]]:
        if not inv["automatic_tax"]["enabled"]:
            return super().line_taxes(inv, line, base)
        cus = self.table("customer")[inv["customer"]]
        location = self.tax_location(cus)
        jurisdiction = self._jurisdiction(location) if location is not None else None
        if location is None or jurisdiction is None:
            return []  # nowhere to tax, or not registered there: no tax
        price = self.table("price").get(str(((line.get("pricing") or {}).get("price_details") or {}).get("price")))
        inclusive = (price or {}).get("tax_behavior") == "inclusive"
        reason = self._reason(cus, location)
        pct = Decimal(self.tax_registrations[jurisdiction][2])
        if reason in ZERO_REASONS:
            tax, taxable = 0, 0
        elif inclusive:
            tax = round_half_up(Decimal(base) * pct / (100 + pct))
            taxable = base - tax
        else:
            tax, taxable = round_half_up(Decimal(base) * pct / 100), base
        return [{"amount": tax, "tax_behavior": "inclusive" if inclusive else "exclusive",
                 "tax_rate_details": {"tax_rate": self._auto_rate(jurisdiction, inclusive)},
                 "taxability_reason": reason, "taxable_amount": taxable, "type": "tax_rate_details"}]

    def create_invoice_item(self, params: Params, **kwargs: Any) -> dict[str, Any]:
        target = self.table("invoice").get(str(params.get("invoice") or ""))
        if target is not None and target["automatic_tax"]["enabled"]:
            if params.get("tax_rates"):
                raise invalid("Invoice items with tax rates cannot be added to an invoice with automatic "
                              "tax enabled.", "tax_rates")
            if (as_int(params, "amount") or 0) < 0:
                raise invalid("Invoice items with negative amounts cannot be added to an invoice with "
                              "automatic tax enabled.", "amount")
        return super().create_invoice_item(params, **kwargs)

    def finalize_invoice(self, obj_id: str) -> dict[str, Any]:
        inv = self.get("invoice", obj_id)
        if inv["status"] == "draft":
            cus = self.table("customer")[inv["customer"]]
            if inv["automatic_tax"]["enabled"] and self.tax_location(cus) is None:
                inv["automatic_tax"]["status"] = "requires_location_inputs"
                raise StripeAPIError(400, "The customer's location isn't recognized. Automatic tax "
                                     "requires a valid address to calculate tax.",
                                     code="customer_tax_location_invalid", param="customer")
            if inv["automatic_tax"]["enabled"]:
                inv["automatic_tax"]["status"] = "complete"
            inv["customer_tax_ids"] = [{"type": t["type"], "value": t["value"]}
                                       for t in self.table("tax_id").values()
                                       if t["customer"] == cus["id"] and not t.get("_deleted")]
            self.recompute(inv)  # the location or tax ids may have changed since the draft
        return super().finalize_invoice(obj_id)
