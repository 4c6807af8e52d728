"""The one error -> action table: what the hub does after a failure, for pull, push and the inbox.

Given the error (a ``connectors.base.ConnectorError`` from the documented tree, or the hub's own
failure) and how many tries were made, ``ErrorPolicy.decide`` answers one ``Action``:

    error                               action
    InvalidError                        DEAD     the system refused the data; retrying cannot help
    DuplicateError                      DEAD     a natural key is taken; a person picks the record
    AuthError(needs_reauth=True)        REAUTH   a person must re-authorise the connection
    AuthError                           PAUSE    for this pass (a token refresh may fix it)
    QuotaExhausted                      PAUSE    stored with the connection, until ``until``
    any other, tries exhausted          DEAD
    ConflictError                       REREAD   read the record again and re-apply, at most
                                                 ``conflict_attempts`` tries, then DEAD
    RateLimited with retry_after        RETRY    after ``retry_after`` seconds (capped)
    RetryableError                      RETRY    after ``backoff`` (exponential, full jitter)
    other ConnectorError                DEAD     the connector could not classify it
    not a ConnectorError                RETRY    the hub's own passing failure (database, a
                                                 record that has not arrived yet)

Pauses come before the count of tries: a connection that cannot be used now keeps its work
waiting, it does not use it up. The random source of the jitter is a field, so tests pin it.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from connectors.base import (
    AuthError,
    ConflictError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    QuotaExhausted,
    RateLimited,
    RetryableError,
)
from connectors.retry import backoff


class Do(StrEnum):
    RETRY = "retry"  # try again after ``wait`` seconds
    REREAD = "reread"  # a stale version: read the record again and re-apply, after ``wait``
    PAUSE = "pause"  # stop using the connection until ``until`` (None: for this pass)
    REAUTH = "reauth"  # the connection needs a person to re-authorise it
    DEAD = "dead"  # dead-letter: trying again cannot help


@dataclass(frozen=True, slots=True)
class Action:
    do: Do
    reason: str
    wait: float | None = None  # seconds, for RETRY and REREAD
    until: datetime | None = None  # for PAUSE, when the system said
    # For PAUSE: stored with the connection (shown by ``hub status``, kept across passes) rather
    # than for this pass only.
    persist: bool = False

    @property
    def pauses(self) -> bool:
        """The connection, not just this item, must stop now."""
        return self.do in (Do.PAUSE, Do.REAUTH)


@dataclass(frozen=True)
class ErrorPolicy:
    max_attempts: int = 8
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0  # no wait longer than an hour: a later pass looks again
    conflict_attempts: int = 3
    random: Callable[[], float] = field(default=_random.random, compare=False)

    def wait(self, attempt: int) -> float:
        return backoff(attempt, base=self.base_seconds, cap=self.cap_seconds, random=self.random)

    def decide(self, error: BaseException, attempt: int) -> Action:
        """What to do after try number ``attempt`` (1 = the first) failed with ``error``."""
        reason = str(error)
        if isinstance(error, InvalidError):
            return Action(Do.DEAD, reason)
        if isinstance(error, DuplicateError):
            return Action(Do.DEAD, reason)
        if isinstance(error, AuthError):
            return Action(Do.REAUTH, reason, persist=True) if error.needs_reauth else Action(Do.PAUSE, reason)
        if isinstance(error, QuotaExhausted):
            return Action(Do.PAUSE, reason, until=error.until, persist=True)
        if attempt >= self.max_attempts:
            return Action(Do.DEAD, f"gave up after {attempt} attempts: {reason}")
        if isinstance(error, ConflictError):
            if attempt >= self.conflict_attempts:
                return Action(Do.DEAD, f"still conflicting after {attempt} attempts: {reason}")
            return Action(Do.REREAD, reason, wait=self.wait(attempt))
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return Action(Do.RETRY, reason, wait=min(max(float(error.retry_after), 0.0), self.cap_seconds))
        if isinstance(error, RetryableError) or not isinstance(error, ConnectorError):
            return Action(Do.RETRY, reason, wait=self.wait(attempt))
        return Action(Do.DEAD, reason)


def paused_reason(state: Mapping[str, Any] | None, now: datetime) -> str | None:
    """Why a connection's stored state keeps work off it now, or None (a pause whose ``until``
    has passed is over). One reading for the engine and the daemon's scheduler."""
    if not state or state["status"] == "ok":
        return None
    until = state.get("paused_until")
    if state["status"] == "paused" and until is not None and until <= now:
        return None
    reason = f"{state['status']}: {state.get('reason') or ''}".strip()
    if until is not None:
        reason += f" (until {until:%Y-%m-%d %H:%M} UTC)"
    return reason


__all__ = ["Action", "Do", "ErrorPolicy", "paused_reason"]
