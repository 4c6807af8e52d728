"""The Stripe emulator's catalog and account objects: customers, products, prices, tax rates,
events, webhook endpoints and billing meters."""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.stripe.emulator_store import EVENT_RETENTION_SECONDS, Params, StripeStore
from connectors.stripe.emulator_wire import (
    as_bool,
    as_int,
    as_list,
    check_known,
    created_filter,
    created_lower_bound,
    invalid,
    merge_metadata,
    missing,
    page_down,
    paginate,
)

CUSTOMER_PARAMS = ("address", "balance", "description", "email", "invoice_prefix", "invoice_settings",
                   "metadata", "name", "next_invoice_sequence", "payment_method", "phone",
                   "preferred_locales", "shipping", "source", "tax", "tax_exempt", "tax_id_data",
                   "test_clock", "business_name", "individual_name", "currency")


class CatalogMixin(StripeStore):
    """Create/read/update of the objects billing refers to."""

    # ------------------------------------------------------------------ customers

    @staticmethod
    def _address(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        return {k: (value.get(k) or None) for k in
                ("city", "country", "line1", "line2", "postal_code", "state")}

    def create_customer(self, params: Params) -> dict[str, Any]:
        check_known(params, CUSTOMER_PARAMS)
        cus = self.base("cus", "customer", address=self._address(params.get("address")), balance=0,
                        currency=params.get("currency") or None, default_source=None,
                        delinquent=False, description=params.get("description") or None,
                        discount=None, email=params.get("email") or None,
                        invoice_prefix=params.get("invoice_prefix") or None,
                        invoice_settings={"custom_fields": None, "default_payment_method": None,
                                          "footer": None, "rendering_options": None},
                        metadata=merge_metadata({}, params.get("metadata")),
                        name=params.get("name") or None, next_invoice_sequence=1,
                        phone=params.get("phone") or None, preferred_locales=[],
                        shipping=None, tax_exempt=params.get("tax_exempt") or "none",
                        test_clock=None)
        if not cus["invoice_prefix"]:
            cus["invoice_prefix"] = cus["id"][-8:].upper()
        self._store("customer", cus)
        self.emit("customer.created", cus)
        return self.render(cus)

    def retrieve_customer(self, obj_id: str) -> dict[str, Any]:
        obj = self.table("customer").get(obj_id)
        if obj is None:
            raise missing("customer", obj_id)
        if obj.get("_deleted"):
            return {"id": obj_id, "object": "customer", "deleted": True}
        return self.render(obj)

    def update_customer(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, CUSTOMER_PARAMS + ("default_source",))
        cus = self.get("customer", obj_id)
        changes: dict[str, Any] = {}
        for name in ("email", "name", "phone", "description", "currency", "tax_exempt"):
            if name in params:
                changes[name] = params[name] or None
        if "address" in params:
            changes["address"] = self._address(params["address"])
        if "metadata" in params:
            changes["metadata"] = merge_metadata(cus["metadata"], params["metadata"])
        return self.render(self._update("customer", cus, changes))

    def delete_customer(self, obj_id: str) -> dict[str, Any]:
        cus = self.get("customer", obj_id)
        cus["_deleted"] = True
        self.emit("customer.deleted", cus)
        return {"id": obj_id, "object": "customer", "deleted": True}

    # ------------------------------------------------------------------ products, prices, tax

    def create_product(self, params: Params) -> dict[str, Any]:
        check_known(params, ("id", "name", "active", "description", "metadata", "images", "tax_code",
                             "unit_label", "url", "shippable", "statement_descriptor",
                             "default_price_data", "marketing_features", "package_dimensions"))
        if not params.get("name"):
            raise invalid("Missing required param: name.", "name", code="parameter_missing")
        if params.get("id") and params["id"] in self.table("product"):
            raise invalid(f"Product already exists with id {params['id']}", "id",
                          code="resource_already_exists")
        prod = self.base("prod", "product", id=params.get("id"), active=as_bool(params, "active", True),
                         default_price=None, description=params.get("description") or None,
                         images=[], marketing_features=[],
                         metadata=merge_metadata({}, params.get("metadata")), name=params["name"],
                         package_dimensions=None, shippable=None, statement_descriptor=None,
                         tax_code=None, unit_label=None, updated=self.now(), url=None)
        self._store("product", prod)
        self.emit("product.created", prod)
        return self.render(prod)

    def update_product(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("name", "active", "description", "metadata", "default_price", "images",
                             "tax_code", "unit_label", "url", "marketing_features"))
        prod = self.get("product", obj_id)
        changes: dict[str, Any] = {}
        if "name" in params:
            changes["name"] = params["name"]
        if "description" in params:
            changes["description"] = params["description"] or None
        if "active" in params:
            changes["active"] = as_bool(params, "active")
        if "metadata" in params:
            changes["metadata"] = merge_metadata(prod["metadata"], params["metadata"])
        if any(prod.get(k) != v for k, v in changes.items()):
            changes["updated"] = self.now()
        return self.render(self._update("product", prod, changes))

    def delete_product(self, obj_id: str) -> dict[str, Any]:
        prod = self.get("product", obj_id)
        if any(p["product"] == obj_id for p in self.live("price")):
            raise invalid("This product cannot be deleted because it has one or more user-created "
                          "prices.")
        prod["_deleted"] = True
        self.emit("product.deleted", prod)
        return {"id": obj_id, "object": "product", "deleted": True}

    def create_price(self, params: Params) -> dict[str, Any]:
        check_known(params, ("currency", "product", "product_data", "unit_amount", "unit_amount_decimal",
                             "recurring", "tax_behavior", "nickname", "active", "metadata",
                             "lookup_key", "billing_scheme", "transfer_lookup_key"))
        currency = str(params.get("currency") or "").lower()
        if not currency:
            raise invalid("Missing required param: currency.", "currency", code="parameter_missing")
        product = params.get("product")
        if not product and isinstance(params.get("product_data"), dict):
            product = self.create_product({"name": params["product_data"].get("name", "")})["id"]
        if not product:
            raise invalid("Missing required param: product.", "product", code="parameter_missing")
        self.get("product", str(product))
        if "unit_amount_decimal" in params and "unit_amount" not in params:
            decimal_amount = Decimal(str(params["unit_amount_decimal"]))
            unit_amount = int(decimal_amount) if decimal_amount == decimal_amount.to_integral_value() \
                else None
        else:
            unit_amount = as_int(params, "unit_amount")
            if unit_amount is None:
                raise invalid("Missing required param: unit_amount.", "unit_amount",
                              code="parameter_missing")
            decimal_amount = Decimal(unit_amount)
        if unit_amount is not None and unit_amount < 0:
            raise invalid("Invalid unit_amount: must be at least 0", "unit_amount")
        recurring = params.get("recurring")
        rec = None
        if isinstance(recurring, dict):
            interval = recurring.get("interval")
            if interval not in ("day", "week", "month", "year"):
                raise invalid("Invalid recurring[interval]", "recurring[interval]")
            rec = {"interval": interval, "interval_count": as_int(recurring, "interval_count", 1),
                   "meter": recurring.get("meter") or None,
                   "usage_type": recurring.get("usage_type") or "licensed"}
        price = self.base("price", "price", active=as_bool(params, "active", True),
                          billing_scheme="per_unit", currency=currency, custom_unit_amount=None,
                          lookup_key=params.get("lookup_key") or None,
                          metadata=merge_metadata({}, params.get("metadata")),
                          nickname=params.get("nickname") or None, product=str(product), recurring=rec,
                          tax_behavior=params.get("tax_behavior") or "unspecified", tiers_mode=None,
                          transform_quantity=None, type="recurring" if rec else "one_time",
                          unit_amount=unit_amount, unit_amount_decimal=format(decimal_amount, "f"))
        self._store("price", price)
        self.emit("price.created", price)
        return self.render(price)

    def update_price(self, obj_id: str, params: Params) -> dict[str, Any]:
        # Amounts are immutable: unit_amount/currency are unknown parameters on update.
        check_known(params, ("active", "metadata", "nickname", "lookup_key", "tax_behavior",
                             "transfer_lookup_key", "currency_options"))
        price = self.get("price", obj_id)
        changes: dict[str, Any] = {}
        if "active" in params:
            changes["active"] = as_bool(params, "active")
        if "nickname" in params:
            changes["nickname"] = params["nickname"] or None
        if "lookup_key" in params:
            changes["lookup_key"] = params["lookup_key"] or None
        if "metadata" in params:
            changes["metadata"] = merge_metadata(price["metadata"], params["metadata"])
        if "tax_behavior" in params:
            if price["tax_behavior"] != "unspecified" and params["tax_behavior"] != price["tax_behavior"]:
                raise invalid("tax_behavior cannot be changed once set", "tax_behavior")
            changes["tax_behavior"] = params["tax_behavior"]
        return self.render(self._update("price", price, changes))

    def create_tax_rate(self, params: Params) -> dict[str, Any]:
        check_known(params, ("display_name", "percentage", "inclusive", "active", "country",
                             "description", "jurisdiction", "metadata", "state", "tax_type"))
        for name in ("display_name", "percentage", "inclusive"):
            if params.get(name) in (None, ""):
                raise invalid(f"Missing required param: {name}.", name, code="parameter_missing")
        pct = Decimal(str(params["percentage"]))
        rate = self.base("txr", "tax_rate", active=as_bool(params, "active", True),
                         country=params.get("country") or None,
                         description=params.get("description") or None,
                         display_name=params["display_name"], effective_percentage=float(pct),
                         flat_amount=None, inclusive=as_bool(params, "inclusive"),
                         jurisdiction=params.get("jurisdiction") or None, jurisdiction_level=None,
                         metadata=merge_metadata({}, params.get("metadata")), percentage=float(pct),
                         rate_type="percentage", state=params.get("state") or None,
                         tax_type=params.get("tax_type") or None, _pct=str(pct))
        self._store("tax_rate", rate)
        self.emit("tax_rate.created", rate)
        return self.render(rate)

    # ------------------------------------------------------------------ events, endpoints, meters

    def list_events(self, params: Params) -> dict[str, Any]:
        cutoff = self.now() - EVENT_RETENTION_SECONDS
        check = created_filter(params)
        types = [str(t) for t in as_list(params.get("types"))]
        single = params.get("type")

        def wanted(event: Mapping[str, Any]) -> bool:
            if types and event["type"] not in types:
                return False
            if single:
                pattern = str(single)
                if pattern.endswith("*"):
                    return str(event["type"]).startswith(pattern[:-1])
                return bool(event["type"] == pattern)
            return True
        start = 0
        if self.events_in_order:
            start = bisect.bisect_left(self.event_created, max(cutoff, created_lower_bound(params)))

        def listed(event: Mapping[str, Any]) -> bool:
            return bool(event["created"] >= cutoff and check(event) and wanted(event))
        after = params.get("starting_after")
        position = self.event_position.get(str(after), -1) if after else len(self.events)
        if params.get("ending_before") or position < start or (after and not listed(self.events[position])):
            # Paging back, or a cursor the filter does not list (Stripe's 404): the whole list.
            items = [e for e in reversed(self.events[start:]) if listed(e)]
        else:
            # A change feed pages newest to oldest by ``starting_after`` (at 10x, listing every
            # event since the bound for each page was a third of the emulators' process).
            params = {k: v for k, v in params.items() if k != "starting_after"}
            items = page_down(self.events.__getitem__, position, start, listed, params)
        envelope = paginate(items, params, "/v1/events")
        envelope["data"] = copy.deepcopy(envelope["data"])
        return envelope

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        cutoff = self.now() - EVENT_RETENTION_SECONDS
        position = self.event_position.get(event_id)
        if position is not None and self.events[position]["created"] >= cutoff:
            return copy.deepcopy(self.events[position])
        raise missing("event", event_id)

    def create_webhook_endpoint(self, params: Params) -> dict[str, Any]:
        check_known(params, ("url", "enabled_events", "description", "metadata", "api_version",
                             "connect"))
        if not params.get("url"):
            raise invalid("Missing required param: url.", "url", code="parameter_missing")
        events = [str(e) for e in as_list(params.get("enabled_events"))]
        if not events:
            raise invalid("Missing required param: enabled_events.", "enabled_events",
                          code="parameter_missing")
        secret = self.endpoint_secret or f"whsec_{self.ids('sec').split('_', 1)[1]}"
        endpoint = self.base("we", "webhook_endpoint", api_version=params.get("api_version") or None,
                             application=None, description=params.get("description") or None,
                             enabled_events=events, metadata=merge_metadata({}, params.get("metadata")),
                             status="enabled", url=params["url"], _secret=secret)
        self._store("webhook_endpoint", endpoint)
        return {**self.render(endpoint), "secret": secret}

    def update_webhook_endpoint(self, obj_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("url", "enabled_events", "description", "metadata", "disabled"))
        endpoint = self.get("webhook_endpoint", obj_id)
        if "url" in params:
            endpoint["url"] = params["url"]
        if "enabled_events" in params:
            endpoint["enabled_events"] = [str(e) for e in as_list(params["enabled_events"])]
        if "disabled" in params:
            endpoint["status"] = "disabled" if as_bool(params, "disabled") else "enabled"
        if "metadata" in params:
            endpoint["metadata"] = merge_metadata(endpoint["metadata"], params["metadata"])
        return self.render(endpoint)

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
        value_key = meter["value_settings"]["event_payload_key"]
        cus_key = meter["customer_mapping"]["event_payload_key"]
        values = [Decimal(e["payload"].get(value_key, "1")) for e in self.meter_events.values()
                  if e["event_name"] == meter["event_name"] and e["payload"].get(cus_key) == customer
                  and start <= e["timestamp"] < end]
        formula = meter["default_aggregation"]["formula"]
        total = (Decimal(len(values)) if formula == "count" else
                 (values[-1] if values else Decimal(0)) if formula == "last" else sum(values, Decimal(0)))
        summary = {"id": f"mtrusum_{meter_id[-10:]}{start}", "object": "billing.meter_event_summary",
                   "aggregated_value": float(total), "end_time": end, "livemode": False,
                   "meter": meter_id, "start_time": start}
        return paginate([summary], params, f"/v1/billing/meters/{meter_id}/event_summaries")

