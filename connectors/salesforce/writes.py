"""Idempotent writes: sObject Collections upserts keyed by the hub's external-id field.

Items without a linked record are upserted by marker (``PATCH composite/sobjects/{T}/{field}``):
a retry after an unknown outcome matches the record the first attempt created, so there is no
look-up-then-create race at all. Items already linked are updated by Id (``PATCH
composite/sobjects``) with the marker stamped, so a record a person created and the hub linked
by natural key is never duplicated. Chunks of 200 (the API's maximum); one result per item,
in order; a per-record failure is a ``WriteResult(error=...)``; duplicates (300,
``DUPLICATE_VALUE``, ``DUPLICATE_EXTERNAL_ID``) become ``DuplicateError`` findings, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from connectors.base import (
    AuthError,
    ConnectorError,
    InvalidError,
    Outbound,
    QuotaExhausted,
    RetryableError,
    WriteResult,
)
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import item_error
from mapping import exact_json

CHUNK = 200
Item = tuple[int, Outbound, dict[str, Any]]


def chunks(items: Sequence[Item], size: int = CHUNK) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_batch(client: SalesforceClient, sobject: str, hub_field: str, batch: Sequence[Outbound],
                *, extra: dict[str, Any] | None = None) -> list[WriteResult]:
    results: list[WriteResult | None] = [None] * len(batch)
    by_marker: list[Item] = []
    by_id: list[Item] = []
    deletes: list[Item] = []
    for index, item in enumerate(batch):
        body = {**(extra or {}), **item.payload, hub_field: item.hub_id}
        try:
            exact_json.dumps(body)
        except (TypeError, ValueError) as exc:
            results[index] = WriteResult(item.idempotency_key, error=InvalidError(
                f"payload cannot be sent exactly: {exc}", system=client.name))
            continue
        if item.operation == "delete":
            if item.external_id:
                deletes.append((index, item, body))
            else:
                results[index] = WriteResult(item.idempotency_key)  # nothing linked: nothing to delete
        elif item.external_id:
            by_id.append((index, item, {**body, "Id": item.external_id}))
        else:
            by_marker.append((index, item, body))
    for chunk in chunks(by_marker):
        _send(client, f"composite/sobjects/{sobject}/{hub_field}", "PATCH", sobject, chunk, results)
    for chunk in chunks(by_id):
        _send(client, "composite/sobjects", "PATCH", sobject, chunk, results)
    for chunk in chunks(deletes):
        _send(client, "composite/sobjects", "DELETE", sobject, chunk, results)
    return [r if r is not None else WriteResult(batch[i].idempotency_key, error=RetryableError(
        "no result for this record", system=client.name)) for i, r in enumerate(results)]


def _send(client: SalesforceClient, path: str, method: str, sobject: str, chunk: Sequence[Item],
          results: list[WriteResult | None]) -> None:
    if method == "DELETE":
        ids = ",".join(str(item.external_id) for _i, item, _b in chunk)
        call = lambda sf: sf.restful(path, method="DELETE",  # noqa: E731
                                     params={"ids": ids, "allOrNone": "false"})
    else:
        payload = exact_json.dumps({"allOrNone": False, "records": [
            {"attributes": {"type": sobject}, **body} for _i, _item, body in chunk]})
        call = lambda sf: sf.restful(path, method=method, data=payload)  # noqa: E731
    try:
        answer = client.call(call)
    except (AuthError, QuotaExhausted):
        raise  # the connection, not the records, is the problem
    except ConnectorError as exc:
        for index, item, _body in chunk:
            results[index] = WriteResult(item.idempotency_key, external_id=item.external_id, error=exc)
        return
    if not isinstance(answer, list) or len(answer) != len(chunk):
        error = RetryableError(f"unexpected answer to {method} {path}: outcome unknown", system=client.name)
        for index, item, _body in chunk:
            results[index] = WriteResult(item.idempotency_key, error=error)
        return
    for (index, item, _body), outcome in zip(chunk, answer, strict=True):
        if isinstance(outcome, dict) and outcome.get("success"):
            results[index] = WriteResult(item.idempotency_key, external_id=str(outcome.get("id")),
                                         created=bool(outcome.get("created", False)))
        else:
            errors = outcome.get("errors") if isinstance(outcome, dict) else outcome
            results[index] = WriteResult(item.idempotency_key, external_id=item.external_id,
                                         error=item_error(errors, system=client.name))
