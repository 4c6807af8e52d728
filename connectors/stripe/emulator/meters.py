"""The Stripe emulator's usage billing: meters, meter events (each ``identifier`` once) and
their event summaries; a metered price's usage for a period (``subscriptions`` bills it at the
period's end, as Stripe bills usage in arrears).

Emulator choice (not a Stripe fact): a meter event whose ``identifier`` was already used is
answered 400 ``resource_already_exists``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import as_int, check_known, invalid, paginate


class MetersMixin(StripeStore):
    """Meters, the events reported against them, and their aggregated summaries."""

    def create_meter(self, params: Params) -> dict[str, Any]:
        check_known(params, ("display_name", "event_name", "default_aggregation", "customer_mapping",
                             "value_settings", "event_time_window"))
        for name in ("display_name", "event_name", "default_aggregation"):
            if not params.get(name):
                raise invalid(f"Missing required param: {name}.", name, code="parameter_missing")
        if any(m["event_name"] == params["event_name"] for m in self.live("billing.meter")):
            raise invalid("A meter with this event_name already exists.", "event_name")
        mapping = params.get("customer_mapping") or {}
        value = params.get("value_settings") or {}
        meter = self.base("mtr", "billing.meter",
                          customer_mapping={"event_payload_key": mapping.get("event_payload_key")
                                            or "stripe_customer_id", "type": "by_id"},
                          default_aggregation={"formula": params["default_aggregation"].get("formula")
                                               or "sum"},
                          display_name=params["display_name"], event_name=params["event_name"],
                          event_time_window=params.get("event_time_window") or None, status="active",
                          status_transitions={"deactivated_at": None}, updated=self.now(),
                          value_settings={"event_payload_key": value.get("event_payload_key") or "value"})
        self._store("billing.meter", meter)
        return self.render(meter)

    def create_meter_event(self, params: Params) -> dict[str, Any]:
        check_known(params, ("event_name", "payload", "identifier", "timestamp"))
        name = params.get("event_name")
        meter = next((m for m in self.live("billing.meter") if m["event_name"] == name), None)
        if meter is None:
            raise invalid(f"No active meter found for event_name {name}", "event_name")
        payload = params.get("payload") or {}
        cus_key = meter["customer_mapping"]["event_payload_key"]
        if not payload.get(cus_key):
            raise invalid(f"Missing required payload key: {cus_key}", f"payload[{cus_key}]")
        self.get("customer", str(payload[cus_key]), "customer")
        try:
            Decimal(str(payload.get(meter["value_settings"]["event_payload_key"], "1")))
        except ArithmeticError:
            raise invalid("The meter event value must be a number.", "payload") from None
        identifier = str(params.get("identifier") or self.ids("mev"))
        if identifier in self.meter_events:
            raise invalid(f"An event already exists with identifier {identifier}.", "identifier",
                          code="resource_already_exists")
        event = {"object": "billing.meter_event", "created": self.now(), "event_name": name,
                 "identifier": identifier, "livemode": False,
                 "payload": {k: str(v) for k, v in payload.items()},
                 "timestamp": as_int(params, "timestamp", self.now())}
        self.meter_events[identifier] = event
        return dict(event)

    def meter_summaries(self, meter_id: str, params: Params) -> dict[str, Any]:
        meter = self.get("billing.meter", meter_id, "billing.meter")
        customer = params.get("customer")
        start, end = as_int(params, "start_time"), as_int(params, "end_time")
        if not customer or start is None or end is None:
            raise invalid("Missing required param: customer, start_time and end_time.",
                          code="parameter_missing")
        total = self.meter_total(meter, str(customer), start, end)
        summary = {"id": f"mtrusum_{meter_id[-10:]}{start}", "object": "billing.meter_event_summary",
                   "aggregated_value": float(total), "end_time": end, "livemode": False,
                   "meter": meter_id, "start_time": start}
        return paginate([summary], params, f"/v1/billing/meters/{meter_id}/event_summaries")

    def meter_total(self, meter: Mapping[str, Any], customer: str, start: int, end: int) -> Decimal:
        """A customer's usage on a meter over ``start <= timestamp < end``, by its aggregation."""
        value_key = meter["value_settings"]["event_payload_key"]
        cus_key = meter["customer_mapping"]["event_payload_key"]
        values = [Decimal(e["payload"].get(value_key, "1")) for e in self.meter_events.values()
                  if e["event_name"] == meter["event_name"] and e["payload"].get(cus_key) == customer
                  and start <= e["timestamp"] < end]
        formula = meter["default_aggregation"]["formula"]
        return (Decimal(len(values)) if formula == "count" else
                (values[-1] if values else Decimal(0)) if formula == "last" else sum(values, Decimal(0)))

    def metered_usage(self, price: Mapping[str, Any], customer: str, start: int, end: int) -> Decimal:
        """What a metered price bills a customer for a period: its meter's total (0 without one)."""
        meter = self.table("billing.meter").get(str(price["recurring"].get("meter") or ""))
        return self.meter_total(meter, customer, start, end) if meter is not None else Decimal(0)
