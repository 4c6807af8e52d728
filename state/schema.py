"""The hub's tables (SQLAlchemy 2.0 Core). Created and changed only by Alembic migrations.

Uniqueness lives here, in constraints, not in application checks: a race between two
processes ends in one row and a domain error for the loser.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = DateTime(timezone=True)

entities = Table(
    "entities",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(32), nullable=False, index=True),
    Column("payload", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("source", String(64), nullable=True),  # connection that last changed it
    Column("updated_at", TS, nullable=False),
)

# The natural keys (email, number, name) of live entities, as digests of their normal form:
# first contact finds the hub records an unlinked external record may be, by index, instead
# of reading every entity of its type (per page, per webhook). Kept with the entities by
# ``Tx.upsert_entities`` and erasure.
natural_keys = Table(
    "natural_keys",
    metadata,
    Column("entity_id", String(36), primary_key=True),
    Column("key", String(16), primary_key=True),
    Column("entity_type", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
    Index("ix_natural_keys_lookup", "entity_type", "key", "digest"),
)

# Placeholders held by hub records. A record naming another record of its connection that the
# hub has not linked yet (a Stripe invoice whose customer is not read yet) stores that record's
# placeholder id, ``stable_id(connection, type, external id)``. When the named record is linked
# to a different hub record (matched by email, number or marker), the holders are re-pointed to
# it; without this index their writes would wait for the placeholder to exist, for good.
# The named record is kept too: a write found waiting for a placeholder looks it up and follows
# a link made by another process while the holder was being stored (neither saw the other).
placeholder_refs = Table(
    "placeholder_refs",
    metadata,
    Column("placeholder_id", String(36), primary_key=True),
    Column("entity_id", String(36), primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("external_id", String(255), nullable=False),
)

# ``system`` holds the connection id (the system name for single-tenant configs), so two
# QuickBooks companies can both have a customer "58".
links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("canonical_id", String(36), ForeignKey("entities.id"), nullable=False),
    Column("system", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("last_pushed_hash", String(64), nullable=True),
    Column("last_seen_hash", String(64), nullable=True),
    # hash of the payload last written to the target: a change the target cannot express
    # (an email on a Salesforce Account) maps to the same payload and is not written again
    Column("last_payload_hash", String(64), nullable=True),
    Column("remote_version", String(64), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("system", "object_type", "external_id"),
    UniqueConstraint("canonical_id", "system", "object_type"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("stream", String(32), primary_key=True),
    Column("value", Text, nullable=True),
    Column("last_success", TS, nullable=True),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String(64), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("event_type", String(128), nullable=False, default=""),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending processed failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_until", TS, nullable=True),
    Column("error", Text, nullable=True),
    Column("received_at", TS, nullable=False),
    Column("processed_at", TS, nullable=True),
    UniqueConstraint("system", "event_id"),
    Index("ix_inbox_status", "status", "received_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("canonical_id", String(36), nullable=False, index=True),
    Column("entity_type", String(32), nullable=False),
    Column("target", String(64), nullable=False),  # connection id
    Column("operation", String(16), nullable=False),  # upsert void delete replace (a Xero payment: delete, then create)
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending in_flight done dead dropped
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("claimed_until", TS, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("external_id", String(255), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),  # sync diff resync
    Column("scope", String(255), nullable=False, default=""),
    Column("status", String(16), nullable=False),  # running ok partial failed aborted
    Column("counts", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
    # The running process ("host:pid", for people) and its lease, renewed while it runs: a run
    # whose lease ran out belongs to a process that died, and the next run start closes it.
    Column("owner", String(255), nullable=True),
    Column("lease_until", TS, nullable=True),
    # Every run start closes the running runs whose lease ran out, and the status pages read the
    # newest runs of a kind: without these, both scanned the whole run history (found by
    # bench/tenants.py: rows read per connection grew with the connections).
    Index("ix_runs_status", "status"),
    Index("ix_runs_kind_started", "kind", "started_at"),
    Index("ix_runs_started", "started_at"),
)

history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("canonical_id", String(36), nullable=False, index=True),
    Column("entity_type", String(32), nullable=False),
    Column("system", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # added changed deleted linked erased
    Column("changes", JSON, nullable=False),  # {field: [old, new]}
    Column("content_hash", String(64), nullable=True),
    Column("run_id", String(36), nullable=True),
    Column("at", TS, nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("system", String(64), nullable=False),
    Column("canonical_id", String(36), nullable=True),
    Column("external_ids", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="open"),  # open acknowledged resolved
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("resolved_at", TS, nullable=True),
    Column("run_id", String(36), nullable=True),
    Index("ix_findings_status", "status", "kind"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("ciphertext", Text, nullable=False),  # Fernet token of the JSON credentials
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", TS, nullable=False),
)

# Pause and health state per connection (rate budget spent, needs re-authorisation).
connection_state = Table(
    "connection_state",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("status", String(32), nullable=False, default="ok"),  # ok paused needs_reauth failed
    Column("reason", Text, nullable=True),
    Column("paused_until", TS, nullable=True),
    Column("details", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# Source records that failed to map, held instead of dropped (issue 23): the raw record as read
# (secret fields removed), why it failed, and the fingerprint of its ``unreadable`` finding. Every
# later pass of its stream tries it again; it leaves when it maps (ingested, finding resolved)
# or when the finding is acknowledged (dropped, not retried).
# Records a connection holds that matched nothing in the hub when they were read (a ledger read
# before the source system), kept by natural-key digest only, so a hub record made later from the
# source links to them instead of creating a second copy (``state.sightings``).
sightings = Table(
    "sightings",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("external_id", String(255), primary_key=True),
    Column("key", String(16), primary_key=True),
    Column("digest", String(64), nullable=False),
    Index("ix_sightings_lookup", "connection", "entity_type", "digest"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # exact JSON (mapping.exact_json): amounts stay exact
    Column("version", String(64), nullable=True),
    Column("record_updated_at", TS, nullable=True),
    Column("reason", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_tried", TS, nullable=False),
    Column("last_tried", TS, nullable=False),
    UniqueConstraint("connection", "entity_type", "external_id"),
)

# Alerts a person was sent and whose condition still holds (``state.alerts``): one alert per
# occurrence across every process and CLI run; the row goes when the condition clears.
alerts_open = Table(
    "alerts_open",
    metadata,
    Column("key", String(160), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("opened_at", TS, nullable=False),
)

# Who did what (issue 21, item 3): one row per state-changing action of a person, through the
# console, the API or the CLI. Append-only: the store has no update or delete for it, and a
# trigger (migration 0009) refuses both on SQLite and PostgreSQL. ``before``/``after`` are exact
# JSON of the states the action changed (statuses, ids) — never secrets, never personal fields,
# since an erasure cannot rewrite this table. ``canonical_id``: the hub record it concerns, for
# the record's timeline.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False, index=True),
    Column("actor", String(128), nullable=False, index=True),  # "console:alice", "cli:root"
    Column("action", String(64), nullable=False, index=True),  # "finding.ack", "outbox.drop", ...
    Column("target_kind", String(32), nullable=False),
    Column("target_id", String(255), nullable=False),
    Column("canonical_id", String(36), nullable=True, index=True),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_audit_log_target", "target_kind", "target_id"),
)

# Named people (issue 21, item 3) with a role: admin, operator or read-only. Only digests of
# their secrets are kept: the API token's SHA-256 (a random 256-bit token needs no slow hash, and
# the digest finds its user), the password's scrypt with a per-user salt.
users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)
