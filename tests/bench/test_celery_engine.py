"""bench/celery_engine.py's guarantees on the real Redis and PostgreSQL: sweeps that overlap send
each (job, tick) once, a job still waiting gets no second copy at its next tick, an outbox push
is sent only for a connection with writes due, and a connection's job that finds the
connection's lock held is sent again later instead of running beside the holder.

Skipped without Celery (the optional ``[bench]`` extra) or without Redis at HUB_TEST_REDIS_URL.
Only this module's keys (``hub:*``) are removed from that Redis database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from state.store import StateStore
from sync.cluster import periodic
from tests.cluster.conftest import RecordingJobs
from tests.cluster.test_sweep import NOW, write_for
from tests.conftest import fresh_pg_schema

pytest.importorskip("celery")
redis = pytest.importorskip("redis")
from bench import celery_engine  # noqa: E402  (needs celery)

pytestmark = pytest.mark.postgres
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
STREAMS = {"stripe_a": ["customer"], "xero_a": ["customer"]}


@pytest.fixture
def client() -> Iterator[Any]:
    r = redis.Redis.from_url(REDIS_URL)
    try:
        r.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis at {REDIS_URL} unreachable")

    def clear() -> None:
        for key in r.scan_iter(celery_engine.PREFIX + "*"):
            r.delete(key)
    clear()
    yield r
    clear()
    r.close()


@pytest.fixture
def store(pg_url: str) -> Iterator[StateStore]:
    with fresh_pg_schema(pg_url) as url:
        s = StateStore(url)
        s.init()
        try:
            yield s
        finally:
            s.dispose()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], str]]:
    """What the sweep hands Celery (task, kwargs, queue), instead of the bench's broker."""
    out: list[tuple[str, dict[str, Any], str]] = []
    monkeypatch.setattr(celery_engine.app, "send_task",
                        lambda name, kwargs, queue: out.append((name, kwargs, queue)))
    return out


def worker_process(client: Any, store: StateStore) -> tuple[Any, RecordingJobs]:
    jobs = RecordingJobs(STREAMS, sync_every=60, store=store)
    process = celery_engine._Process(hub=SimpleNamespace(store=store), jobs=jobs.as_jobs(),  # type: ignore[arg-type]
                                     loop=asyncio.new_event_loop(), redis=client,
                                     schedule=periodic.schedule(jobs.as_jobs()), longest=60.0)
    return process, jobs


def test_overlapping_sweeps_send_each_tick_once_and_only_pushes_with_writes_due(
        client: Any, store: StateStore, sent: list[tuple[str, dict[str, Any], str]]) -> None:
    write_for(store, "xero_a", "k1")  # xero_a's outbox holds a write due; stripe_a's none
    process, _ = worker_process(client, store)
    try:
        counts = []
        for _ in range(3):  # three sweeps that each read 'swept' before the others wrote it
            client.delete(celery_engine.SWEPT_KEY)
            counts.append(celery_engine.send_due(process, NOW))
        assert counts == [3, 0, 0]
        assert sorted((name, kwargs["connection"], queue) for name, kwargs, queue in sent) == [
            ("hub:push_connection", "xero_a", "urgent"),
            ("hub:sync_stream", "stripe_a", "routine"), ("hub:sync_stream", "xero_a", "routine")]
        # a late sweep of the same moment after the jobs started (their queued keys gone):
        # the tick was sent, so it is not sent again
        for key in client.scan_iter(celery_engine.PREFIX + "queued:*"):
            client.delete(key)
        client.delete(celery_engine.SWEPT_KEY)
        assert celery_engine.send_due(process, NOW) == 0
        for _name, kwargs, _queue in sent:  # sent again: they wait (their queued keys back)
            client.set(f"{celery_engine.PREFIX}queued:"
                       + (f"sync:{kwargs['connection']}:customer" if "entity" in kwargs
                          else f"outbox:{kwargs['connection']}"), 1)
        # the next tick: the syncs sent before have not started, so no second copy waits
        assert celery_engine.send_due(process, NOW + 60) == 0
        client.delete(f"{celery_engine.PREFIX}queued:sync:stripe_a:customer")  # stripe_a's started
        assert celery_engine.send_due(process, NOW + 120) == 1
        assert sent[-1][:1] == ("hub:sync_stream",) and sent[-1][1]["connection"] == "stripe_a"
    finally:
        process.loop.close()


class Retried(Exception):
    pass


class Task:
    """The bound Celery task's ``retry``: what it was asked (Celery would send the message again)."""

    def __init__(self) -> None:
        self.retries: list[dict[str, Any]] = []

    def retry(self, **kwargs: Any) -> Exception:
        self.retries.append(kwargs)
        return Retried()


def test_a_connections_job_waits_while_its_connection_is_locked(
        client: Any, store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    process, jobs = worker_process(client, store)
    monkeypatch.setattr(celery_engine, "_process", process)
    task = Task()
    holder = client.lock(f"{celery_engine.PREFIX}lock:connection:stripe_a", timeout=30)
    try:
        assert holder.acquire(blocking=False)
        client.set(f"{celery_engine.PREFIX}queued:sync:stripe_a:customer", 1)
        with pytest.raises(Retried):
            celery_engine._per_connection(task, "sync:stripe_a:customer", "stripe_a", "sync",
                                          celery_engine.cluster_tasks.sync_stream, entity="customer")
        assert task.retries == [{"countdown": celery_engine.RETRY_SECONDS}] and jobs.calls == []
        assert client.exists(f"{celery_engine.PREFIX}queued:sync:stripe_a:customer")  # still waiting
        holder.release()
        assert celery_engine._per_connection(task, "sync:stripe_a:customer", "stripe_a", "sync",
                                             celery_engine.cluster_tasks.sync_stream, entity="customer") == "ok"
        assert jobs.calls == ["sync:stripe_a:customer"]
        assert not client.exists(f"{celery_engine.PREFIX}queued:sync:stripe_a:customer")
        assert client.hget(celery_engine.JOBS_KEY, "sync") == b"1"
        assert not client.exists(f"{celery_engine.PREFIX}lock:connection:stripe_a")  # released after
    finally:
        process.loop.close()
