"""What a sync pass did, per stream (connection, entity type): the figures every caller reports."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamStats:
    read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    linked: int = 0
    skipped: int = 0
    failed: int = 0
    written: int = 0
    held: int = 0
    dead: int = 0
    retried: int = 0
    stale: int = 0  # read, but provably older than the state held: not stored (``sync.versions``)
    answered: int = 0  # webhook events answered from the store: reads of the vendor avoided


@dataclass
class SyncSummary:
    streams: dict[tuple[str, str], StreamStats] = field(default_factory=lambda: defaultdict(StreamStats))
    errors: list[str] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run: the writes it would make
    # dry run: per connection and entity, how many records would be linked / unchanged / updated /
    # created / held, and why (``sync.dry_run``)
    first_contact: list[dict[str, Any]] = field(default_factory=list)
    # connection -> writes queued for it, held until `hub review approve` (first_contact = "review")
    waiting_review: dict[str, int] = field(default_factory=dict)
    paused: dict[str, str] = field(default_factory=dict)
    # (connection, entity type) -> external ids held (or held again) in this pass: the stream's
    # retry of held records at the end of its pass does not try them twice
    held_now: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def stats(self, connection: str, entity_type: str) -> StreamStats:
        return self.streams[(connection, entity_type)]

    def merge(self, other: SyncSummary) -> None:
        """Add another summary's figures to this one (work done side by side)."""
        for key, theirs in other.streams.items():
            mine = self.streams[key]
            for f in dataclasses.fields(StreamStats):
                setattr(mine, f.name, getattr(mine, f.name) + getattr(theirs, f.name))
        self.errors.extend(other.errors)
        self.planned.extend(other.planned)
        self.first_contact.extend(other.first_contact)
        self.waiting_review.update(other.waiting_review)
        self.paused.update(other.paused)
        for key, ids in other.held_now.items():
            self.held_now[key] |= ids

    def totals(self) -> StreamStats:
        total = StreamStats()
        for s in self.streams.values():
            for f in dataclasses.fields(StreamStats):
                setattr(total, f.name, getattr(total, f.name) + getattr(s, f.name))
        return total

    def attention(self) -> list[str]:
        """Why this pass needs a person, one line each (empty: nothing): errors, writes that went
        dead, and connections paused or waiting for re-authorisation. A command that ran a pass
        exits 1 when there are any (README, exit codes) — never 0 beside a dead letter."""
        reasons = [f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''}"] if self.errors else []
        dead = self.totals().dead
        if dead:
            reasons.append(f"{dead} write{'s' if dead != 1 else ''} dead-lettered (hub outbox list)")
        reasons.extend(f"{name} paused: {reason}" for name, reason in sorted(self.paused.items()))
        return reasons

    def to_json(self) -> dict[str, Any]:
        return {
            "streams": [{"connection": c, "entity": e, **dataclasses.asdict(s)}
                        for (c, e), s in sorted(self.streams.items())],
            "totals": dataclasses.asdict(self.totals()),
            "errors": self.errors[:100],
            "planned": self.planned,
            "first_contact": self.first_contact,
            "waiting_review": self.waiting_review,
            "paused": self.paused,
            "attention": self.attention(),
        }


__all__ = ["StreamStats", "SyncSummary"]
