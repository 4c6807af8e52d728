"""What the engine's collaborators (ingest, plan, push) share.

``SyncContext`` holds the store, the connections, the routing and the settings, and gives out
transactions — real ones, or savepoints inside a dry run's never-committed one — so every
collaborator reads and writes through the same place. Also here: the keys and hashes writes are
identified by, findings, connection pauses, and the ``RefResolver``s mappers are given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random as _random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from connectors.base import Connector, ConnectorError, InvalidError
from mapping.encoding import uuid5_text
from mapping.model import MoneyError, stable_id
from state.store import StateStore, Tx
from sync.flows import Routing
from sync.policy import Action, Do, ErrorPolicy, paused_reason

log = logging.getLogger("billhub.engine")

_KEY_NAMESPACE = uuid.UUID("0b5f1d0e-8a43-4d1b-9a55-3c1e7c2f9d20")
MAPPING_ERRORS = (KeyError, ValueError, TypeError, MoneyError, InvalidError, AttributeError)
# The largest amount written without question ([flows] max_amount_minor): 10**12 minor units is
# 10 billion in a two-decimal currency. Beyond it a write is held: a typo or a unit mix-up.
MAX_AMOUNT_MINOR = 10**12


def idempotency_key(canonical_id: str, target: str, digest: str) -> str:
    """Deterministic, 36 characters (fits QuickBooks' requestid and every other system's key)."""
    return uuid5_text(_KEY_NAMESPACE, f"{canonical_id}/{target}/{digest}")


def payload_digest(payload: Mapping[str, Any]) -> str:
    """Hash of a target payload (Decimals and dates as text; key order irrelevant)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


class ConnectionPaused(Exception):
    """A connection cannot be used now (needs re-authorisation or a budget is spent)."""


class LinkResolver:
    """``RefResolver`` for one connection inside one transaction."""

    def __init__(self, tx: Tx, connection: str) -> None:
        self.tx = tx
        self.connection = connection
        # placeholder -> (connection, type, external id): answered for records not linked yet
        self.placeholders: dict[str, tuple[str, str, str]] = {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        linked = self.tx.canonical_for(self.connection, entity_type, external_id)
        if linked:
            return linked
        placeholder = stable_id(self.connection, entity_type, external_id)
        self.placeholders[placeholder] = (self.connection, entity_type, external_id)
        return placeholder

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        if self.tx.known_absent(canonical_id):
            return None  # no hub record, so no link names it (links.canonical_id references it)
        link = self.tx.link_for(canonical_id, self.connection, entity_type)
        return None if link is None or link.deleted else link.external_id


# One question a mapping asked its resolver: (canonical_id or external_id, type, the id asked
# with, the answer given).
Question = tuple[str, str, str, str | None]


class AskedRefs:
    """A ``RefResolver`` that answers from nothing and notes the references it was asked, and
    every question in order (``questions``): a record mapped against it maps to the same entity
    against another resolver that gives the same answers (``same_answers``), since mappings are
    pure, so it need not be mapped twice."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.asked: dict[str, set[str]] = defaultdict(set)
        self.questions: list[Question] = []

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        self.asked[entity_type].add(external_id)
        answer = stable_id(self.connection, entity_type, external_id)
        self.questions.append(("canonical_id", entity_type, external_id, answer))
        return answer

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        self.questions.append(("external_id", entity_type, canonical_id, None))
        return None


def same_answers(refs: LinkResolver, questions: Sequence[Question]) -> bool:
    """Whether ``refs`` answers ``questions`` (an ``AskedRefs``'s, for one record) as they were
    answered, asking each in order as the mapping would (so ``refs`` notes the same placeholders);
    stops at the first that differs."""
    for kind, entity_type, asked, answer in questions:
        given = refs.canonical_id(entity_type, asked) if kind == "canonical_id" else \
            refs.external_id(entity_type, asked)
        if given != answer:
            return False
    return True


class SyncContext:
    """The store, connections, routing and settings one engine works with."""

    def __init__(
        self,
        store: StateStore,
        connectors: Mapping[str, Connector],
        routing: Routing,
        *,
        max_attempts: int,
        backoff_seconds: float,
        batch_size: int,
        lease_seconds: float,
        tax_codes: Mapping[str, Mapping[str, str]],
        clock: Callable[[], datetime],
        random: Callable[[], float] = _random.random,
        max_amount_minor: int = MAX_AMOUNT_MINOR,
    ) -> None:
        self.store = store
        self.max_amount_minor = max_amount_minor  # writes beyond it are held (push pre-flight)
        self.connectors = dict(connectors)
        self.routing = routing
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.batch_size = batch_size
        # How long a claimed write stays claimed: a process that dies mid-write gives it back after
        # this. Longer than the slowest write, shorter than anyone wants to wait.
        self.lease_seconds = lease_seconds
        self.tax_codes = tax_codes
        self.clock = clock
        self.random = random  # the jitter's source: tests pin it
        self.dry_conn: Any = None  # set while a dry run on PostgreSQL holds its rolled-back transaction
        self.on_progress: Callable[[str, int], None] | None = None

    @property
    def error_policy(self) -> ErrorPolicy:
        """The error table with this engine's settings (read each time: they may be changed)."""
        return ErrorPolicy(max_attempts=self.max_attempts, base_seconds=self.backoff_seconds,
                           random=self.random)

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """A store transaction, or a savepoint inside the dry run's never-committed one."""
        if self.dry_conn is None:
            with self.store.transaction() as tx:
                yield tx
            return
        with self.dry_conn.begin_nested():
            yield Tx(self.dry_conn, self.store)

    def connections_of(self, system: str) -> list[str]:
        return [name for name, c in self.connectors.items() if c.system == system]

    def progress(self, label: str, count: int) -> None:
        if self.on_progress:
            self.on_progress(label, count)

    def finding(self, tx: Tx, kind: str, entity: str, system: str, canonical_id: str | None,
                external_ids: Sequence[str], detail: str, run_id: str | None, *,
                fields: dict[str, Any] | None = None, key: str = "") -> str:
        """Open (or update) a finding; returns its fingerprint."""
        fp = fingerprint(kind, entity, system, canonical_id or "", ",".join(sorted(external_ids)), key)
        tx.upsert_finding(fingerprint=fp, kind=kind, entity=entity, system=system,
                          canonical_id=canonical_id, external_ids=list(external_ids),
                          fields=fields or {}, detail=detail, run_id=run_id)
        return fp

    def pause(self, connection: str, action: Action) -> None:
        """Store a pause the table called for (``persist``); one for this pass only is logged."""
        if action.persist:
            with self.tx() as tx:
                if action.do is Do.REAUTH:
                    tx.set_connection_state(connection, "needs_reauth", reason=action.reason)
                else:
                    tx.set_connection_state(connection, "paused", reason=action.reason,
                                            paused_until=action.until)
        log.warning("connection %s paused: %s", connection, action.reason)

    def paused_reason(self, connection: str) -> str | None:
        with self.tx() as tx:
            state = tx.connection_state(connection)
        reason = paused_reason(state, self.clock())
        if reason and state and state["status"] == "needs_reauth" and connection in self.connectors \
                and reauthorised(self.connectors[connection]):
            return None
        return reason


def reauthorised(connector: Connector) -> bool:
    """A connection that needs re-authorisation works again once a person gave it a new refresh
    token (``hub connect``, or a new one in the config): one refresh proves it, and the token
    rotation marks the connection ok in the same transaction. Without a new token no token call
    is made (the refused one is never presented again), so asking costs nothing."""
    credentials = connector.capabilities().credentials
    if credentials is None:
        return False
    try:
        credentials.refresh_credentials(force=True)
    except ConnectorError as exc:
        log.info("connection %s still needs re-authorisation: %s", connector.name, exc)
        return False
    log.warning("connection %s re-authorised: its work resumes", connector.name)
    return True


__all__ = ["MAPPING_ERRORS", "MAX_AMOUNT_MINOR", "AskedRefs", "ConnectionPaused", "LinkResolver", "Question",
           "SyncContext", "fingerprint", "idempotency_key", "payload_digest", "reauthorised", "same_answers"]
