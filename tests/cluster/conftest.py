"""The cluster tests' parts: a fresh PostgreSQL schema holding Procrastinate's queue, and a
stand-in for the daemon's ``Jobs`` that records when each job body starts and ends.

The stand-in replaces only billhub's own job bodies (no vendor, no SDK): what these tests check
is the queue's behaviour as the cluster configures it — periodic ticks deduplicated, per
connection locks, and a killed worker's job handed on (that one runs the real ``hub run``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from types import SimpleNamespace
from typing import Any, cast

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from state import job_queue
from sync.scheduler import Jobs, JobSpec
from tests.conftest import fresh_pg_schema


@pytest.fixture
def queue_url(pg_url: str) -> Iterator[str]:
    """A fresh schema with Procrastinate's tables in it."""
    with fresh_pg_schema(pg_url) as url:
        assert job_queue.ensure_schema(url) is True
        assert job_queue.ensure_schema(url) is False  # a second worker finds it made
        yield url


class RecordingJobs:
    """What ``sync/cluster/`` uses of ``Jobs``: ``specs()``, ``_job``, ``last``, ``blocking``,
    the job bodies and, for a connection's push, ``paused_reason``, ``_note`` and the engine's
    ``push``; each body call is recorded (and may wait on ``hold``, set per job id). ``store``:
    the hub's tables the sweep asks which connections have writes due."""

    def __init__(self, connections: dict[str, list[str]], sync_every: float = 300, store: Any = None) -> None:
        self.connections = connections
        self.sync_every = sync_every
        # no alert channel: the cluster's alert look finds nothing to do
        self.hub = SimpleNamespace(config=SimpleNamespace(schedules={}, alerts={}, secrets=[]), store=store,
                                   connectors=dict.fromkeys(connections),
                                   engine=SimpleNamespace(push=self._push))
        self.clock = lambda: datetime.now(UTC)
        self.looks_at_alerts = True  # Jobs' default: the cluster's tasks turn it off
        self.last: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []  # job ids, in the order their bodies started
        self.running: dict[str, int] = {}  # connection -> bodies running now
        self.most_at_once: dict[str, int] = {}  # connection -> the most that ever ran at once
        self.hold: dict[str, Callable[[], object]] = {}  # job id -> called inside its body
        self.lock = threading.Lock()

    def as_jobs(self) -> Jobs:
        return cast(Jobs, self)

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def paused_reason(self, connection: str) -> str | None:
        return None

    def _note(self, summary: object) -> None:
        pass

    def _push(self, connection: str, summary: object, run_id: str | None, *, max_batches: int | None = None) -> None:
        self._body(f"outbox:{connection}", connection)

    def specs(self) -> list[JobSpec]:
        async def never() -> None:  # the cluster runs bodies through _job, never spec.run
            raise AssertionError("spec.run is the embedded scheduler's")
        specs = [JobSpec(f"sync:{c}:{e}", "sync", IntervalTrigger(seconds=self.sync_every), never, True)
                 for c, entities in self.connections.items() for e in entities]
        specs.append(JobSpec("outbox", "outbox", IntervalTrigger(seconds=15), never, True))
        return specs

    async def _job(self, job_id: str, fn: Callable[..., Any], *args: Any) -> None:
        started = datetime.now(UTC)
        try:
            detail = await asyncio.to_thread(partial(fn, *args))
            outcome = "ok"
        except Exception as exc:
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
        self.last[job_id] = {"outcome": outcome, "detail": detail, "started_at": started}

    def _body(self, job_id: str, connection: str) -> str:
        with self.lock:
            self.calls.append(job_id)
            self.running[connection] = self.running.get(connection, 0) + 1
            self.most_at_once[connection] = max(self.most_at_once.get(connection, 0), self.running[connection])
        try:
            if job_id in self.hold:
                self.hold[job_id]()
        finally:
            with self.lock:
                self.running[connection] -= 1
        return "read 0, wrote 0"

    def sync_stream(self, connection: str, entity: str) -> str:
        return self._body(f"sync:{connection}:{entity}", connection)

    def push_outbox(self) -> str:
        return self._body("outbox", "*")

    inbox_says = "empty"  # what the inbox body answers: "empty", or what it processed

    def process_inbox(self) -> str:
        self._body("inbox", "*")
        return self.inbox_says
