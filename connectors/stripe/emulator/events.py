"""The Stripe emulator's event feed and webhook endpoints: ``/v1/events`` (30 days kept, paged
newest first) and the endpoints deliveries go to.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping
from typing import Any

from connectors.stripe.emulator.store import EVENT_RETENTION_SECONDS, Params, StripeStore
from connectors.stripe.emulator.wire import (
    as_bool,
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


class EventsMixin(StripeStore):
    """Listing and retrieving events; creating and updating webhook endpoints."""

    def list_events(self, params: Params) -> dict[str, Any]:
        cutoff = self.now() - EVENT_RETENTION_SECONDS
        check = created_filter(params)
        types = [str(t) for t in as_list(params.get("types"))]
        single = params.get("type")
        if types and single:  # the spec: "You may pass either `type` or `types`, but not both."
            raise invalid("You may only specify one of these parameters: type, types.", "type",
                          code="parameters_exclusive")

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
