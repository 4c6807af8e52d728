"""Which of two states of a Stripe object is the newer: the version the hub keeps of each object.

Stripe objects carry no updated-at and no version field (only ``created``; see the API facts,
9.1), so the hub versions a state by *when it was current*, on Stripe's own clock:

* an object read (a GET, a page of a list): the answer's ``Date`` header less the request's
  round trip (``read_at``) — Stripe stamps the header as it answers, having read the object at
  some moment since the request reached it; the state then holds every change made before;
* an event's copy of its object (``data.object``, used by the change feed when it needs no
  expansion): the event's ``created`` — the state right after that change;
* an event names its change at its ``created``.

Both are whole seconds, and Stripe's servers do not share one clock, so a state at ``a`` is
provably older than one at ``b`` only when ``a + MARGIN_SECONDS < b``. Closer than that the order
is not known, and what is not known is read again — never guessed.

The version is that second as decimal text (``links.remote_version``). It only moves forward
(``latest``): the content stored holds every change whose event was created more than the margin
before the version kept (true of the read or copy that set it, and of a state stored within the
margin of it). That is what lets the inbox answer an event created before it from the store.
"""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime
from typing import Any

from connectors.versions import NumberedVersions

MARGIN_SECONDS = 1


def version_at(second: int | None) -> str | None:
    """The version of a state current at ``second`` (Stripe's clock), None when not known."""
    return str(int(second)) if isinstance(second, int) and not isinstance(second, bool) else None


def http_second(headers: Any) -> int | None:
    """Stripe's clock when it answered: the ``Date`` header of ``headers``, None when absent."""
    value = None
    if headers:
        value = headers.get("Date") or headers.get("date")
    try:
        return int(parsedate_to_datetime(value).timestamp()) if value else None
    except (TypeError, ValueError):
        return None


def read_at(answered: int | None, round_trip: float) -> int | None:
    """The second a read's state is known current at: ``answered`` (its ``Date``) less the
    round trip as the client timed it (retries and waits included: only ever earlier)."""
    return None if answered is None else answered - math.ceil(max(round_trip, 0.0))


def answered_at(obj: Any) -> int | None:
    """When Stripe answered the request that returned the SDK object ``obj`` (its ``Date``)."""
    response = getattr(obj, "last_response", None)
    return http_second(getattr(response, "headers", None))


VERSIONS = NumberedVersions(margin=MARGIN_SECONDS)  # ``connectors.base.VersionOrder`` for Stripe


__all__ = ["MARGIN_SECONDS", "VERSIONS", "answered_at", "http_second", "read_at", "version_at"]
