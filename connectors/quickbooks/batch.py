"""Queries sent together through ``POST /batch``: one request carrying several ``Query`` items.

Intuit's limits (api-facts §2.6, §5; Intuit's "API call limits and throttles" page): a
recommended maximum of 30 payloads per batch request (the batch page itself says 10: hence the
``batch_size`` setting) and 40 batch requests a minute per realm and app, 120 per realm, within
500 requests a minute. Intuit's 2017 "batch operations important" post: the items run serially
but do not see earlier items of the same request, so no query here relies on another item's
answer. Each item is answered on its own, matched by ``bId``:
``{"bId": ..., "QueryResponse": {...}}`` or ``{"bId": ..., "Fault": {...}}`` inside a 200. So a
fault is one item's, never the request's: each query gets its own answer or its own error here,
and the caller decides per item (``Reader.query_many`` asks a retryable one again on its own).

The whole request is paced by the batch limiter and goes through the client's retry policy
(throttle, 5xx, one token refresh), like any read: reads change nothing, so retrying is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import ConnectorError, RetryableError
from connectors.quickbooks.client import QboClient
from connectors.quickbooks.errors import item_fault
from connectors.ratelimit import RateLimiter
from mapping.exact_json import dumps

MAX_ITEMS = 30  # Intuit's limits page: the recommended maximum of payloads in a batch request

Answer = dict[str, Any] | ConnectorError


class QueryBatch:
    def __init__(self, client: QboClient, limiter: RateLimiter | None, *, max_items: int = MAX_ITEMS) -> None:
        self.client = client
        self.limiter = limiter
        self.max_items = max(1, min(MAX_ITEMS, max_items))
        self.calls = 0

    def send(self, queries: Sequence[str]) -> list[Answer]:
        """Each query's answer, in order: ``{"QueryResponse": ..., "time": the batch's server
        time}`` or the error its item faulted with (one request per ``max_items`` queries)."""
        answers: list[Answer] = []
        for start in range(0, len(queries), self.max_items):
            answers.extend(self._one(queries[start:start + self.max_items]))
        return answers

    def _one(self, queries: Sequence[str]) -> list[Answer]:
        text = dumps({"BatchItemRequest": [{"bId": str(n), "Query": q} for n, q in enumerate(queries)]})
        answer = self.client.policy.call(lambda: self.post(text))
        time = answer.get("time")
        replies = {str(r.get("bId")): r for r in answer.get("BatchItemResponse") or [] if isinstance(r, dict)}
        out: list[Answer] = []
        for n in range(len(queries)):
            reply = replies.get(str(n))
            if reply is None:  # Intuit answers every item; a missing one is not known to have run
                out.append(RetryableError("batch answer lacks this item", system=self.client.system))
            elif "Fault" in reply:
                out.append(item_fault(reply["Fault"], system=self.client.system))
            else:
                out.append({"QueryResponse": reply.get("QueryResponse") or {}, "time": time})
        return out

    def post(self, text: str) -> dict[str, Any]:
        """One attempt of any batch request (the writer's too: reads and writes share the
        realm's 40/min and one ``calls`` count): a batch token, then the request (its 500/min
        slot, the token refresh on a refused bearer). No retry here: ``send`` retries queries
        under the policy; a writer knows whether its items' outcome may be unknown."""
        if self.limiter is not None:
            self.limiter.acquire()
        self.calls += 1
        answer: dict[str, Any] = self.client.once(lambda qb: qb.batch_operation(text))
        return answer


__all__ = ["MAX_ITEMS", "QueryBatch"]
