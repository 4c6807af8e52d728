"""Stripe's OpenAPI spec as the fidelity test validates with (its ``SPEC`` and null branches,
``_validate`` over recorded exchanges), for other tests that validate what they received.

``older=True`` gives the spec for answers rendered in an older API version (a peer's pinned
one): Stripe publishes its spec for the current version only, so a property added or made
required since may be absent; every property present must still have its documented type, enum
and shape. Errors do not change with the version; validate them with the spec as it is.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from openapi_core import OpenAPI

from tests.connectors.stripe.test_spec_fidelity import SPEC, _add_null_branches, _validate

__all__ = ["spec_api", "validate"]

validate = _validate


def _drop_required(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("required"), list):  # a schema's required properties
            del node["required"]
        for value in node.values():
            _drop_required(value)
    elif isinstance(node, list):
        for value in node:
            _drop_required(value)


@functools.cache
def spec_api(older: bool = False) -> OpenAPI:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    _add_null_branches(spec)
    if older:
        _drop_required(spec["components"]["schemas"])
    return OpenAPI.from_dict(spec)
