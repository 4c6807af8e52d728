"""The connector seam: what every system adapter offers the engine, and the one error tree.

Error hierarchy (the only exceptions a connector lets escape; classify SDK errors once, in the
connector's ``errors.py``, into one of these):

    ConnectorError
    ├── RetryableError        transient: 5xx, timeout, connection reset. For a write the
    │   │                     outcome is unknown: retry only after looking the record up.
    │   └── RateLimited       429 / throttle; ``retry_after`` seconds to wait (None = back off)
    ├── QuotaExhausted        a daily/org budget is spent: pause the connection until ``until``
    ├── AuthError             credentials refused; ``needs_reauth`` when a person must act
    ├── ConflictError         stale version (SyncToken, If-Unmodified-Since): re-read, re-apply
    │   └── DuplicateError    a natural key is taken (DisplayName, contact Name, external id)
    └── InvalidError          the system rejected the data; retrying cannot help

Reads yield ``Page``s of ``Record``s (raw system objects plus their identity). Writes take
``Outbound`` items, each with a deterministic idempotency key and the hub's marker, and return
one ``WriteResult`` per item, in order.

What only some connectors can do is declared, not probed: ``Connector.capabilities()`` returns
typed handles (``Capabilities``) — webhook verification (``WebhookReceiver``), re-reading the
objects named by webhook events (``EventRefetcher``), OAuth credentials (``OAuthCredentials``),
and the retry waits a connection took (``RetryRecord``) — each ``None`` when the connector has
no such thing, so callers branch on ``None`` and the type checker checks every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from mapping.model import Entity
from mapping.refs import RefResolver

# --------------------------------------------------------------------------- errors


class ConnectorError(Exception):
    """Base of every error a connector raises. ``system`` names the connection."""

    def __init__(self, message: str, *, system: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status

    def __str__(self) -> str:
        prefix = f"{self.system}: " if self.system else ""
        return f"{prefix}{self.message}"


class RetryableError(ConnectorError):
    """Transient failure; for writes the outcome is unknown."""


class RateLimited(RetryableError):
    """The system asked us to slow down. ``retry_after`` is its requested wait in seconds."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, scope: str = "", **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.scope = scope  # e.g. "minute", "concurrent", "burst"


class QuotaExhausted(ConnectorError):
    """A long-window budget (daily calls, org allocation) is spent; pause until ``until``."""

    def __init__(self, message: str, *, until: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.until = until


class AuthError(ConnectorError):
    """Credentials refused. ``needs_reauth`` means a refresh cannot fix it; a person must."""

    def __init__(self, message: str, *, needs_reauth: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.needs_reauth = needs_reauth


class ConflictError(ConnectorError):
    """Optimistic-concurrency conflict: the record changed since we read it."""


class DuplicateError(ConflictError):
    """A unique natural key is already taken. ``candidates`` are the matching external ids."""

    def __init__(self, message: str, *, candidates: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.candidates = list(candidates)


class InvalidError(ConnectorError):
    """The system rejected the data (validation). Not retried; dead-lettered with the message."""


class WebhookRejected(Exception):
    """A webhook delivery that must be refused; ``status`` is the HTTP answer (4xx)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True, slots=True)
class Record:
    """One object as a system holds it.

    ``entity_type`` is the canonical type it maps to; ``data`` is the system's own JSON;
    ``deleted`` marks a deletion/void surfaced by a change feed (``data`` may then be partial).
    """

    entity_type: str
    external_id: str
    data: Mapping[str, Any]
    updated_at: datetime | None = None
    deleted: bool = False
    version: str | None = None  # SyncToken, UpdatedDateUTC, SystemModstamp …
    # Set when an event named this object and reading it again found nothing (a 404): why, naming
    # the event. ``data`` is then only the event's copy, so nothing of it may be stored.
    gone: str | None = None


@dataclass(slots=True)
class Page:
    """A page of records. When ``cursor`` is set, it is stored in the same transaction."""

    records: list[Record]
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Outbound:
    """One intended write.

    ``payload`` is the system-shaped body (from ``from_canonical``); ``external_id`` is the
    linked record if known (update) or None (create, after a lookup by ``hub_id``).
    ``attempt`` > 1 means an earlier attempt's outcome is unknown: look up before creating.
    """

    entity_type: str
    canonical_id: str
    payload: Mapping[str, Any]
    idempotency_key: str
    external_id: str | None = None
    operation: str = "upsert"  # "upsert" | "void" | "delete" | "replace" (a Xero payment: delete, create)
    attempt: int = 1
    remote_version: str | None = None

    @property
    def hub_id(self) -> str:
        return self.canonical_id


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one Outbound, in input order."""

    idempotency_key: str
    external_id: str | None = None
    created: bool = False
    record: Record | None = None
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A verified webhook event, ready for the inbox (stored once per ``event_id``)."""

    event_id: str
    payload: Mapping[str, Any]
    event_type: str = ""


@dataclass(slots=True)
class ConnectionHealth:
    """What ``hub status`` shows about a connection beyond its cursors."""

    paused_until: datetime | None = None
    reason: str | None = None
    budget: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionCheck:
    """What ``hub check`` learnt from the vendor with the stored credentials."""

    account: str  # who answered: the company, organisation, org or Stripe account, with its id
    base_currency: str | None
    scopes: tuple[str, ...] = ()  # what the credentials are allowed (where the vendor says)
    missing: tuple[str, ...] = ()  # setup billhub needs that the account lacks (empty = ready)
    details: Mapping[str, Any] = field(default_factory=dict)  # e.g. the API budget left


# --------------------------------------------------------------------------- capabilities


class WebhookReceiver(Protocol):
    """Verifies one webhook delivery to this connection (raises ``WebhookRejected``, 4xx)."""

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """The delivery's events, once its signature over the raw ``body`` checks out."""
        ...


# The versions the hub holds of records of one connection (``links.remote_version``), asked for a
# batch of (entity type, external id) at once; a record the hub does not hold is left out.
HeldVersions = Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], str]]


@dataclass(frozen=True, slots=True)
class Answered:
    """An event whose objects the hub already holds at its state or a later one (``VersionOrder``):
    nothing to read again, nothing to store."""

    entity_type: str  # what the event names (counted per stream)
    held: str  # the version held, for the log


class EventRefetcher(Protocol):
    """Turns stored webhook events into the records they name, read again from the system."""

    def records_for_events(self, payloads: Sequence[Mapping[str, Any]], held: HeldVersions | None = None,
                           ) -> list[list[Record] | Answered | Exception]:
        """Per event, in order: its records, ``Answered`` when ``held`` shows the hub holds every
        object it names at a state provably no older than the event's, or the error that kept
        them from being read. Without ``held`` every event's objects are read."""
        ...


class VersionOrder(Protocol):
    """How a connector's record versions (``Record.version``, kept in ``links.remote_version``)
    order. Ingest uses it to never store a record over a provably newer one of the same object
    (two readers, a webhook and a change feed, can store one object in either order)."""

    def precedes(self, version: str, held: str) -> bool:
        """True only when a state at ``version`` is provably older than one at ``held``; when the
        order cannot be established, False (the record is stored, as without versions)."""
        ...

    def latest(self, version: str, held: str) -> str:
        """The version to keep once a record at ``version`` (not provably older) is stored over
        ``held``: never one that makes a later comparison claim more than is known."""
        ...


class OAuthCredentials(Protocol):
    """A connection's OAuth access token, kept fresh by the hub (``connectors/oauth.py``)."""

    @property
    def needs_reauth(self) -> bool:
        """True once the refresh token was refused: only a person can fix it."""
        ...

    def refresh_credentials(self, *, force: bool = False) -> None:
        """Refresh now when the access token is within the refresh skew of expiry (or ``force``)."""
        ...

    def credentials_expire_at(self) -> datetime | None:
        """When the access token in hand expires (None: no token yet)."""
        ...


class ConnectionChecker(Protocol):
    """Calls the vendor with the stored credentials (identity, company info, org limits)."""

    def check(self) -> ConnectionCheck:
        """What the account is; raises ``ConnectorError`` (``AuthError`` when refused)."""
        ...


class RetryRecord(Protocol):
    """The waits the connection's retry policy took (for the retry metric)."""

    @property
    def waits(self) -> Sequence[float]:
        ...


class MappingFacts(Protocol):
    """A connector whose mapping needs facts only the system can tell (a QuickBooks company's
    home currency and tax model). ``learn`` reads them — vendor calls, perhaps a token refresh
    that writes to the store — once per process. The engine calls it before it opens a
    transaction that maps this connector's records, so no vendor call (and no second writer on
    the database) ever happens inside one."""

    def learn(self) -> None:
        ...


class HomeCurrency(Protocol):
    """A ledger whose rates are quoted against its own currency (a QuickBooks company's home
    currency, a Xero organisation's base currency): the diff needs it to know which rate the
    hub prescribes there. May call the vendor once; never inside a store transaction."""

    def home_currency(self) -> str:
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector offers beyond ``Connector``; None = not offered."""

    webhooks: WebhookReceiver | None = None
    refetch: EventRefetcher | None = None
    credentials: OAuthCredentials | None = None
    retries: RetryRecord | None = None
    facts: MappingFacts | None = None
    currency: HomeCurrency | None = None
    checker: ConnectionChecker | None = None
    versions: VersionOrder | None = None
    # Writes find the target record by the hub's marker (Salesforce's upsert by Hub_Id__c), so a
    # record matched without it must get it written before it can count as agreeing.
    upserts_by_marker: bool = False


# --------------------------------------------------------------------------- the protocol


@runtime_checkable
class Connector(Protocol):
    """A system adapter. Blocking methods; the daemon runs them in a bounded thread pool."""

    name: str  # connection id from config (e.g. "stripe", "qbo_us")
    system: str  # "stripe" | "quickbooks" | "xero" | "salesforce" | "fake"

    def entity_types(self) -> Sequence[str]:
        """Canonical entity types this connection reads and writes."""
        ...

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        """Every record of one entity type, at the largest page size the API allows."""
        ...

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        """Records changed since ``cursor`` (inclusive, with overlap). ``None`` = from scratch.

        The last page carries the new cursor; when the cursor is older than the system's change
        feed keeps, this falls back to a full fetch.
        """
        ...

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        """Create or update each item; never a duplicate on retry. One result per item."""
        ...

    def lookup(self, entity_type: str, hub_id: str) -> Record | None:
        """The record carrying the hub's marker ``hub_id`` (metadata, reference, Hub_Id__c)."""
        ...

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        """Map a system record to its canonical entity (pure; see mapping/<system>.py)."""
        ...

    def from_canonical(self, entity: Entity, refs: RefResolver) -> dict[str, Any]:
        """Map a canonical entity to this system's write payload (pure)."""
        ...

    def natural_keys(self, record: Record) -> dict[str, str]:
        """Keys used to match records on first contact and in the diff (email, name, number)."""
        ...

    def health(self) -> ConnectionHealth:
        ...

    def capabilities(self) -> Capabilities:
        """The optional features this connection declares (see ``Capabilities``)."""
        ...

    def close(self) -> None:
        ...
