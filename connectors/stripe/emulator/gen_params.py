"""Generates ``params.json``, the table the emulator checks requests against (``strict.py``).

Run it when the vendored spec changes, and check the result in::

    python -m connectors.stripe.emulator.gen_params [path/to/spec3.json]

(by default the ``shared/specs/stripe/spec3.json`` beside the checkout).

The emulator never reads the spec at runtime (it runs in ``hub demo`` on machines that have no
``shared/`` folder): it reads only the compact table written here, beside this module. From
Stripe's OpenAPI spec the table keeps, for every operation of every path:

* ``params``: the parameters the operation takes - query parameters (GET, and DELETE's query
  part), ``application/x-www-form-urlencoded`` request-body properties (POST, DELETE) - each
  mapped to the keys its object (or each object of its array) documents, or ``null`` where the
  keys are free (``metadata``) or the value is a scalar;
* ``response``: the names of the schemas its 200 answer can have, where ``expand[]`` paths
  start (a retrieve can answer an object or its deleted form).

and, under ``schemas``, each schema that has ``x-expandableFields``: its expandable fields, each
with the schemas the field can expand into that have expandable fields of their own (an
id-or-object field's ``$ref`` branches, a list's item schemas), so a path like
``data.charge.refunds`` is walked one segment at a time. Schemas defined inline (list envelopes
such as a customer's ``sources``) are named by their ``title``.

Operations are keyed ``"METHOD /v1/path/{}"`` with every path parameter written ``{}``, so the
emulator's route templates (``/v1/customers/{id}``) find the spec's (``/v1/customers/{customer}``)
whatever their placeholders are called.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

DEFAULT_SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "stripe" / "spec3.json"
if not DEFAULT_SPEC.exists():  # the checkout may live elsewhere (as test_spec_fidelity looks)
    DEFAULT_SPEC = Path("/work/shared/specs/stripe/spec3.json")
TABLE = Path(__file__).with_name("params.json")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def route_key(method: str, template: str) -> str:
    """``GET /v1/customers/{customer}`` and ``GET /v1/customers/{id}`` -> one key."""
    return f"{method.upper()} {_PLACEHOLDER.sub('{}', template)}"


class _Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.components: dict[str, Any] = spec["components"]["schemas"]
        self.schemas: dict[str, dict[str, list[str]]] = {}
        self.inline: dict[str, str] = {}  # json of an inline schema -> the name it was given
        self._pending: list[tuple[str, dict[str, Any]]] = []

    # ---------------------------------------------------------------- parameters

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.components[node["$ref"].rsplit("/", 1)[1]]
        return node

    def _keys(self, schema: dict[str, Any]) -> list[str] | None:
        """The documented keys of an object parameter (or of its array's objects)."""
        schema = self._deref(schema)
        branches = schema.get("anyOf") or schema.get("oneOf") or [schema]
        keys: set[str] = set()
        closed = False
        for branch in branches:
            branch = self._deref(branch)
            if branch.get("type") == "array" and isinstance(branch.get("items"), dict):
                found = self._keys(branch["items"])
                if found is not None:
                    keys |= set(found)
                    closed = True
                continue
            if branch.get("type") != "object":
                continue
            if branch.get("additionalProperties") not in (None, False) or not branch.get("properties"):
                return None  # free keys (metadata) or an undocumented object
            keys |= set(branch["properties"])
            closed = True
        return sorted(keys) if closed else None

    def params(self, operation: dict[str, Any]) -> dict[str, list[str] | None]:
        out: dict[str, list[str] | None] = {}
        for param in operation.get("parameters", []):
            if param.get("in") == "query":
                out[param["name"]] = self._keys(param.get("schema") or {})
        body = (operation.get("requestBody") or {}).get("content", {})
        form = body.get("application/x-www-form-urlencoded") or body.get("multipart/form-data") or {}
        for name, schema in (form.get("schema") or {}).get("properties", {}).items():
            out[name] = self._keys(schema)
        return dict(sorted(out.items()))

    # ---------------------------------------------------------------- expansions

    def _name(self, schema: dict[str, Any], fallback: str) -> str | None:
        """The name a response or field schema is known by (registered when expandable)."""
        if "$ref" in schema:
            name = str(schema["$ref"].rsplit("/", 1)[1])
            self._pending.append((name, self.components[name]))
            return name
        if not schema.get("x-expandableFields"):
            return None
        text = json.dumps(_strip_descriptions(schema), sort_keys=True)
        if text not in self.inline:
            base = str(schema.get("title") or fallback)
            name, n = base, 1
            while name in self.inline.values() or name in self.components:
                n += 1
                name = f"{base}_{n}"
            self.inline[text] = name
            self._pending.append((name, schema))
        return self.inline[text]

    def _targets(self, schema: dict[str, Any], fallback: str) -> list[str]:
        names: list[str] = []
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            for branch in branches:
                names += self._targets(branch, fallback)
        elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            names += self._targets(schema["items"], fallback)
        else:
            name = self._name(schema, fallback)
            if name:
                names.append(name)
        return sorted(set(names))

    def expandables(self) -> None:
        while self._pending:
            name, schema = self._pending.pop()
            if name in self.schemas:
                continue
            fields = schema.get("x-expandableFields") or []
            self.schemas[name] = {}
            for field in fields:
                prop = (schema.get("properties") or {}).get(field) or {}
                self.schemas[name][field] = self._targets(prop, f"{name}.{field}")
        self.schemas = {k: v for k, v in sorted(self.schemas.items()) if v}

    def response(self, operation: dict[str, Any], key: str) -> list[str]:
        ok = (operation.get("responses") or {}).get("200") or {}
        schema = ((ok.get("content") or {}).get("application/json") or {}).get("schema")
        return self._targets(schema, key) if isinstance(schema, dict) else []

    def prune(self, operations: dict[str, dict[str, Any]]) -> None:
        """Only schemas with expandable fields are kept, so names of others are dropped too (a
        segment into a schema the table does not list cannot be expanded further)."""
        for fields in self.schemas.values():
            for field, names in fields.items():
                fields[field] = [n for n in names if n in self.schemas]
        for operation in operations.values():
            operation["response"] = [n for n in operation["response"] if n in self.schemas]


def _strip_descriptions(node: Any) -> Any:
    """An inline schema as far as expansion goes: two copies that differ only in their prose
    (a list envelope described per field) are the same schema."""
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def build(spec: dict[str, Any]) -> dict[str, Any]:
    gen = _Generator(spec)
    operations: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "delete"):
                continue
            key = route_key(method, path)
            if key in operations:
                raise SystemExit(f"two spec paths share the key {key}")
            operations[key] = {"params": gen.params(operation), "response": gen.response(operation, key)}
    gen.expandables()
    gen.prune(operations)
    return {"spec_version": spec["info"]["version"], "operations": dict(sorted(operations.items())),
            "schemas": gen.schemas}


def dump(table: dict[str, Any]) -> str:
    """One operation and one schema a line: small diffs when the spec moves."""
    lines = ["{", f'"spec_version": {json.dumps(table["spec_version"])},', '"operations": {']
    ops = list(table["operations"].items())
    lines += [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" + ("," if i < len(ops) - 1 else "")
              for i, (k, v) in enumerate(ops)]
    lines += ["},", '"schemas": {']
    schemas = list(table["schemas"].items())
    lines += [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" + ("," if i < len(schemas) - 1 else "")
              for i, (k, v) in enumerate(schemas)]
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    spec_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SPEC
    table = build(json.loads(spec_path.read_text(encoding="utf-8")))
    TABLE.write_text(dump(table), encoding="utf-8")
    print(f"{TABLE}: {len(table['operations'])} operations, {len(table['schemas'])} expandable schemas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
