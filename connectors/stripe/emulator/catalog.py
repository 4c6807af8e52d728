"""The Stripe emulator's catalog: customers, products, prices and tax rates, the objects
billing refers to."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.store import Params, StripeStore
from connectors.stripe.emulator.wire import (
    StripeAPIError,
    as_bool,
    as_int,
    check_known,
    invalid,
    merge_metadata,
    missing,
)

CUSTOMER_PARAMS = ("address", "balance", "description", "email", "invoice_prefix", "invoice_settings",
                   "metadata", "name", "next_invoice_sequence", "payment_method", "phone",
                   "preferred_locales", "shipping", "source", "tax", "tax_exempt", "tax_id_data",
                   "test_clock", "business_name", "individual_name", "currency")


def tax_location(cus: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where Stripe Tax places a customer: its address's country (and state: a US address needs
    one), source ``billing_address``; ``None`` when it cannot (``unrecognized_location``)."""
    address = cus.get("address") or {}
    country = str(address.get("country") or "").upper()
    state = str(address.get("state") or "").upper() or None
    if not country or (country == "US" and not state):
        return None
    return {"country": country, "source": "billing_address", "state": state}


def _validate_location(params: Params, cus: Mapping[str, Any]) -> None:
    """``tax[validate_location]=immediately``: an address Stripe Tax cannot place is a 400."""
    tax = params.get("tax")
    if isinstance(tax, Mapping) and tax.get("validate_location") == "immediately" and tax_location(cus) is None:
        raise StripeAPIError(400, "The customer's location isn't recognized.",
                             code="customer_tax_location_invalid", param="tax[validate_location]")


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
        _validate_location(params, cus)
        self._store("customer", cus)
        data = params.get("tax_id_data")
        for spec in (data.values() if isinstance(data, dict) else data or []):
            self._add_tax_id(cus, spec)  # before the event: created with them, as Stripe does
        self.emit("customer.created", cus)
        return self.render(cus)

    # A customer's tax ids (VAT numbers): ``tax_id`` objects, on the customer only when expanded
    # (``expand[]=tax_ids``, an includable field), and under /v1/customers/{id}/tax_ids.
    TAX_ID_TYPES = frozenset("eu_vat gb_vat au_abn ca_bn ch_vat no_vat nz_gst us_ein za_vat in_gst".split())

    def _add_tax_id(self, cus: dict[str, Any], spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict) or not spec.get("type") or not spec.get("value"):
            raise invalid("Missing required param: type and value.", "tax_id_data", code="parameter_missing")
        kind = str(spec["type"])
        if kind not in self.TAX_ID_TYPES:
            raise invalid(f"Invalid value for type: {kind}.", "type")
        value = str(spec["value"]).replace(" ", "")
        country = value[:2].upper() if kind in ("eu_vat", "gb_vat") else None
        # A VAT id is checked against its registry (VIES, HMRC): the emulator's check is its form
        # (the country's prefix, Greece's EL, then 8-12 letters or digits); other kinds stay pending
        status = "pending"
        if kind in ("eu_vat", "gb_vat"):
            prefix_ok = country in ("GB", "XI") if kind == "gb_vat" else country not in ("GB", None)
            body = value[2:]
            status = "verified" if prefix_ok and 8 <= len(body) <= 12 and body.isalnum() else "unverified"
            country = "GR" if country == "EL" else country
        tax_id = self.base("txi", "tax_id", country=country, customer=cus["id"], type=kind, value=value,
                           verification={"status": status, "verified_address": None,
                                         "verified_name": None})
        self._store("tax_id", tax_id)
        return tax_id

    def create_tax_id(self, cus_id: str, params: Params) -> dict[str, Any]:
        check_known(params, ("type", "value"))
        cus = self.get("customer", cus_id)
        tax_id = self._add_tax_id(cus, params)
        self.emit("customer.tax_id.created", tax_id)
        return self.render(tax_id)

    def customer_tax_id(self, cus_id: str, tax_id: str) -> dict[str, Any]:
        found = self.table("tax_id").get(tax_id)
        if found is None or found["customer"] != cus_id or found.get("_deleted"):
            raise missing("tax_id", tax_id)
        return found

    def delete_tax_id(self, cus_id: str, tax_id: str) -> dict[str, Any]:
        found = self.customer_tax_id(cus_id, tax_id)
        found["_deleted"] = True
        self.emit("customer.tax_id.deleted", found)
        return {"id": tax_id, "object": "tax_id", "deleted": True}

    def customer_tax_ids(self, cus_id: str) -> dict[str, Any]:
        self.get("customer", cus_id)
        rows = [self.render(t) for t in self.table("tax_id").values()
                if t["customer"] == cus_id and not t.get("_deleted")]
        return {"object": "list", "data": rows, "has_more": False, "url": f"/v1/customers/{cus_id}/tax_ids"}

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
        settings = params.get("invoice_settings")
        if isinstance(settings, dict) and "default_payment_method" in settings:
            method = str(settings["default_payment_method"] or "") or None
            pm = self.table("payment_method").get(method or "")
            if method and (pm is None or pm.get("customer") != cus["id"]):
                raise invalid(f"No such PaymentMethod: '{method}'; it must be attached to the customer.",
                              "invoice_settings[default_payment_method]", code="resource_missing")
            changes["invoice_settings"] = {**cus["invoice_settings"], "default_payment_method": method}
        _validate_location(params, {**cus, **changes})
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
            if rec["usage_type"] not in ("licensed", "metered"):
                raise invalid("Invalid recurring[usage_type]: must be one of licensed or metered",
                              "recurring[usage_type]")
            if rec["usage_type"] == "metered":  # usage is reported to a meter (Stripe, since Basil)
                if not rec["meter"]:
                    raise invalid("Missing required param: recurring[meter].", "recurring[meter]",
                                  code="parameter_missing")
                if str(rec["meter"]) not in self.table("billing.meter"):
                    raise invalid(f"No such billing meter: '{rec['meter']}'", "recurring[meter]",
                                  code="resource_missing")
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
