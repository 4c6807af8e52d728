"""The emulator holds requests to what Stripe accepts, as Stripe does (it stopped ignoring
unrecognised parameters in API version 2011-06-21):

* a parameter the operation does not take, or a key its object parameter does not document, is
  400 ``parameter_unknown`` ("Received unknown parameter: address[foo]", ``param`` the same);
* an ``expand[]`` path through a field that cannot be expanded is 400 "This property cannot be
  expanded (data.foo)." (no ``code`` or ``param``, as Stripe sends it), more than four levels is
  400 ``property_expansion_max_depth`` ("Expanding responses": expansions have a maximum depth of
  four levels);
* a path or method Stripe does not serve is 404 "Unrecognized request URL (GET: /v1/foo). ..."
  in the JSON error envelope (Stripe answers an unknown method on a known path the same way);
* the API key arrives as ``Authorization: Bearer sk_…`` or by HTTP Basic auth, the key the user
  name and the password empty ("Authentication": Basic is the documented way, Bearer the
  alternative).

What each operation takes, and what its answer can expand, comes from ``params.json``, generated
from Stripe's OpenAPI spec by ``gen_params.py`` (see there): the emulator never reads the spec
itself. ``expand`` is taken by every operation; ``metadata`` keys are free. Only the top level of
an object parameter, or of each object of an array parameter, is checked. The spec describes one
API version: requests answered in an older one (a tool pinned to 2022-11-15) are not checked
against it, since Stripe took other parameters and expansions then.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from connectors.stripe.emulator.gen_params import route_key
from connectors.stripe.emulator.wire import StripeAPIError, as_list

TABLE = Path(__file__).with_name("params.json")
MAX_EXPAND_DEPTH = 4


@cache
def table() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TABLE.read_text(encoding="utf-8"))
    return loaded


def operation(method: str, template: str) -> dict[str, Any] | None:
    """The spec's record of an emulator route (``None``: the spec has no such operation)."""
    found: dict[str, Any] | None = table()["operations"].get(route_key(method, template))
    return found


def check_request(method: str, resource: web.AbstractResource | None, params: Mapping[str, Any],
                  version: str) -> None:
    """400 for a parameter or an ``expand[]`` path the route's operation does not take, in the
    API ``version`` the request is answered in. The table knows the spec's version only: a route
    the spec does not have, or a request pinned to an older version than the spec's (whose
    Stripe took other parameters and expanded other fields, such as an invoice's ``charge`` or
    ``total_tax_amounts.tax_rate`` before 2025-03-31), is not checked."""
    op = operation(method, resource.canonical) if resource is not None else None
    if op is None or version[:10] < str(table()["spec_version"])[:10]:
        return
    check_params(op, params)
    check_expand(op, [str(path) for path in as_list(params.get("expand"))])


def unknown_parameter(name: str) -> StripeAPIError:
    return StripeAPIError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def check_params(op: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """400 ``parameter_unknown`` for the first parameter (or documented key) the operation does
    not take."""
    accepted: Mapping[str, list[str] | None] = op["params"]
    for name, value in params.items():
        if name == "expand":
            continue
        if name not in accepted:
            raise unknown_parameter(name)
        keys = accepted[name]
        if keys is None:
            continue
        if isinstance(value, dict):
            _check_keys(name, value, keys)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _check_keys(f"{name}[{index}]", item, keys)


def _check_keys(prefix: str, value: Mapping[str, Any], keys: Iterable[str]) -> None:
    allowed = set(keys)
    for key in value:
        if key not in allowed:
            raise unknown_parameter(f"{prefix}[{key}]")


def check_expand(op: Mapping[str, Any], paths: Iterable[str]) -> None:
    """400 for an ``expand[]`` path Stripe would not expand on this operation's answer."""
    schemas: Mapping[str, Mapping[str, list[str]]] = table()["schemas"]
    for path in paths:
        segments = path.split(".")
        if len(segments) > MAX_EXPAND_DEPTH:
            raise StripeAPIError(400, "You cannot expand more than 4 levels of a property. "
                                 f"Property: {path}", code="property_expansion_max_depth")
        names: list[str] = list(op.get("response") or [])
        for segment in segments:
            targets: set[str] = set()
            found = False
            for name in names:
                fields = schemas.get(name, {})
                if segment in fields:
                    found = True
                    targets.update(fields[segment])
            if not found:
                raise StripeAPIError(400, f"This property cannot be expanded ({path}).")
            names = sorted(targets)


def api_key_from(header: str) -> str:
    """The key an ``Authorization`` header carries (Bearer, or Basic with the key as the user
    name), or ``""``."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        user, _, _password = decoded.partition(":")
        return user.strip()
    return ""


def unrecognized_url(method: str, path: str) -> StripeAPIError:
    """Stripe's answer to a path (or a method on it) it does not serve."""
    hint = ""
    if path.endswith("/"):
        hint = (" If you are trying to list objects, remove the trailing slash. If you are trying to "
                "retrieve an object, make sure you passed a valid (non-empty) identifier in your code.")
    return StripeAPIError(404, f"Unrecognized request URL ({method}: {path}).{hint} Please see "
                          "https://stripe.com/docs or we can help at https://support.stripe.com/.")
