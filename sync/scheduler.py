"""The daemon's work: scheduled syncs, the outbox and inbox workers, diffs, token refresh.

Every job is a coroutine on the server's event loop that hands its blocking body (SDK calls,
database work) to a thread. Engine work runs in lanes (``sync/lane.py``), one job at a time in
each. Webhook requests and the API never wait on a lane (they only touch the inbox).

On SQLite (one writer) there is one lane: among waiting jobs the inbox and the outbox go first,
in turn, then scheduled reads, except that a job passed over three times goes next: a webhook's
change waits for the job in hand and at most one overdue read.

On PostgreSQL with ``[schedules] side_by_side_lanes = true`` the inbox, the outbox and the change
feeds (stream syncs, diffs) each have their own lane, on a thread of its own, and run side by side: a webhook's change no longer waits for
a change-feed read or an outbox pass. One write per record still holds, because what serialises
two writers of one record is the database, as between ``hub run`` processes: an outbox item is
claimed by one pass (``Tx.claim_outbox``: one in flight per record and target); a stream is read
by one reader (its advisory lock, which the inbox's QuickBooks and Xero reads take too); a
Stripe record the inbox stores and a change feed stores at once take turns on its link's row
(``sync.versions``: the second compares with what the first stored, and an older state is never
stored over a newer one); equal content makes equal idempotency keys (one outbox row). In this
process, one connection's outbox is pushed by one lane at a time (``Pusher.push``).

Stopping (SIGTERM): ``stop()`` sets a flag the engine sees after each committed page (via its
``on_progress`` hook), so the job in hand ends at a page boundary with everything it did saved;
nothing new starts. A restart resumes from the stored cursors, the outbox and the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectors.base import Answered, Connector, Record
from state.store import InboxItem
from sync.alerts import Alert, findings_alert, raise_alerts
from sync.context import reauthorised
from sync.engine import SyncSummary
from sync.flows import ENTITY_ORDER
from sync.inbox_retry import retry_in
from sync.lane import LANE_NAMES, ROUTINE, SOON, URGENT, Lanes
from sync.metrics import Metrics
from sync.policy import paused_reason as stored_pause
from sync.runtime import Hub
from sync.usage import USAGE, send_usage

ALERT_LOOK_EVERY = timedelta(seconds=30)  # how often jobs look at the alert conditions (a diff's at once)
# A job's detail that says it did nothing: not logged at INFO.
IDLE = re.compile(r"read 0, wrote 0|wrote 0, held 0|empty|checked none|0 new, 0 resolved")
log = logging.getLogger("billhub.daemon")
T = TypeVar("T")
INBOX_LEASE_SECONDS = 60  # short: items claimed when a stop interrupts come back soon after restart
# Events claimed per inbox run. A run that found fewer waiting ends with one push per connection
# (the webhook's change reaches the ledgers at once); a full claim leaves the push to the outbox
# job and the next claim follows. Ingesting 500 events takes seconds, well inside the lease.
INBOX_BATCH = 500
PUSH_THREADS = 4  # connections pushed side by side (PostgreSQL); each holds one pool connection
# Batches (of the engine's batch size) one outbox pass writes per connection. The daemon runs one
# engine job at a time; a pass that drained a backlog of 60,000 writes to a slow ledger held the
# inbox, the change feeds and the other ledgers' next passes for the whole of it.
PUSH_BATCHES_PER_PASS = 5
# Who goes first when several jobs wait for the engine lane (webhook latency: the inbox must
# not queue behind every stream sync).
# The outbox shares the inbox's priority (they take turns): received -> written needs both, and
# as SOON it only ran as an overdue job, in turn with every stream sync, so under a webhook storm
# the writes stalled while the inbox filled the outbox.
JOB_PRIORITY = {"inbox": URGENT, "tokens": URGENT, "outbox": URGENT}


class DaemonStopping(Exception):
    """Raised at a page boundary once a stop was requested; the page in hand is committed."""


@dataclass(frozen=True)
class JobSpec:
    id: str
    kind: str  # sync | outbox | inbox | diff | tokens
    trigger: BaseTrigger
    run: Callable[[], Awaitable[None]]
    start_now: bool = False


class Jobs:
    """The work the daemon does, callable directly (tests, the API) or by the scheduler."""

    def __init__(self, hub: Hub, executor: Executor, metrics: Metrics, *,
                 clock: Callable[[], datetime] | None = None, inbox_batch: int = INBOX_BATCH) -> None:
        self.hub = hub
        self.executor = executor
        self.metrics = metrics
        self.clock = clock or hub.store.clock
        self.inbox_batch = inbox_batch
        # side by side only when asked (``[schedules] side_by_side_lanes = true``): the 0.1x chaos
        # run under a saturated machine showed the open first-contact race (bench/README.md,
        # "already linked to canonical") more often with the inbox and outbox overlapping in a
        # process; until that race is fixed, one lane stays the default
        self.lanes = Lanes(side_by_side=hub.store.is_postgres
                           and bool(hub.config.schedules.get("side_by_side_lanes", False)))
        # side by side, each lane's job runs on a thread of its own: the shared pool stays free
        # for requests, as when one lane held one of its threads
        self._lane_pool = ThreadPoolExecutor(len(LANE_NAMES), thread_name_prefix="hub-lane") \
            if self.lanes.side_by_side else None
        self.stopping = threading.Event()
        self.paused: dict[str, str] = {}  # connection -> reason, as last seen (shown, not retried)
        self._pending_alerts: list[Alert | None] = []  # a diff job's findings alert, sent after it
        self._alerted_at: datetime | None = None  # when the alert conditions were last looked at
        self.last: dict[str, dict[str, Any]] = {}  # job id -> last outcome, for the console and API
        # The pool's own futures, not the loop's wrappers: cancelling a waiting task (the
        # scheduler's shutdown does) marks its wrapper done while the call runs on.
        self._running: set[Future[Any]] = set()
        self._working: set[str] = set()  # job ids whose body runs in the pool now (shutdown's log)
        self._working_lock = threading.Lock()
        hub.engine.on_progress = self._checkpoint

    # ------------------------------------------------------------------ plumbing

    def _checkpoint(self, _label: str, _n: int) -> None:
        """Called by the engine after each committed page or batch: the place to stop."""
        if self.stopping.is_set():
            raise DaemonStopping("stopping: the page in hand is committed")

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call in the bounded pool (never on the loop)."""
        return await self._submit(self.executor, partial(fn, *args, **kwargs))

    async def _submit(self, executor: Executor, call: Callable[[], T]) -> T:
        try:
            future = executor.submit(call)
        except RuntimeError:  # the lane pool was shut down by a stop since the lane was granted
            if self.stopping.is_set():
                raise DaemonStopping("the daemon is stopping") from None
            raise
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return await asyncio.wrap_future(future)

    async def exclusive(self, fn: Callable[..., T], *args: Any, priority: int = SOON, lane: str = "feeds",
                        **kwargs: Any) -> T:
        """Engine work: one at a time in its ``lane`` (the most urgent waiter next), refused
        once stopping. On SQLite every lane is the one lane."""
        if self.stopping.is_set():
            raise DaemonStopping("the daemon is stopping")
        async with self.lanes.of(lane).hold(priority):
            if self.stopping.is_set():
                raise DaemonStopping("the daemon is stopping")
            return await self._submit(self._lane_pool or self.executor, partial(fn, *args, **kwargs))

    def _working_on(self, job_id: str, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn``, noting ``job_id`` as working while it runs in the pool."""
        def run(*args: Any) -> T:
            with self._working_lock:
                self._working.add(job_id)
            try:
                return fn(*args)
            finally:
                with self._working_lock:
                    self._working.discard(job_id)
        return run

    def in_flight(self) -> list[str]:
        """What still runs in the pool: job ids, and a count of other blocking calls (requests)."""
        with self._working_lock:
            working = sorted(self._working)
        others = sum(1 for f in self._running if not f.done()) - len(working)
        return working + ([f"{others} request(s)"] if others > 0 else [])

    async def _job(self, job_id: str, fn: Callable[..., Any], *args: Any) -> None:
        """A scheduled job's wrapper: records the outcome, never lets an error kill the loop."""
        started = self.clock()
        try:
            detail = await self.exclusive(self._working_on(job_id, fn), *args,
                                          priority=JOB_PRIORITY.get(job_id.split(":")[0], ROUTINE),
                                          lane=self.lanes.for_job(job_id))
            outcome = "skipped" if detail == "skipped" else "ok"
        except DaemonStopping:
            outcome, detail = "stopped", "stopped at a page boundary"
        except asyncio.CancelledError:  # the loop is closing while this job waited for the lane
            outcome, detail = "stopped", "cancelled before it started"
        except Exception as exc:
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
            log.error("job failed", extra={"job": job_id, "error": detail})
        self.metrics.jobs.labels(job_id.split(":")[0], outcome).inc()
        self.last[job_id] = {"outcome": outcome, "detail": detail if isinstance(detail, str) else None,
                             "started_at": started, "finished_at": self.clock()}
        if outcome == "ok" and isinstance(detail, str) and not IDLE.fullmatch(detail):
            # one line per sync, push or diff that did something, with its counts (an idle
            # daemon stays quiet: a pass that read and wrote nothing says nothing)
            log.info("%s: %s", job_id, detail, extra={"job": job_id, "outcome": outcome})
        if outcome != "stopped":
            with contextlib.suppress(DaemonStopping):
                await self.exclusive(self._alert, priority=ROUTINE, lane="alerts")

    def _alert(self) -> None:
        """After every job: alert what newly needs a person (deduplicated in the store, so every
        process may look), and a diff's new findings."""
        extra, self._pending_alerts = self._pending_alerts, []
        now = self.clock()
        if not any(extra) and self._alerted_at is not None and now - self._alerted_at < ALERT_LOOK_EVERY:
            return  # the inbox job runs every few seconds: conditions are looked at twice a minute
        self._alerted_at = now
        try:
            raise_alerts(self.hub.store, self.hub.config, now, extra=extra)
        except Exception as exc:  # alerting must never stop the daemon's work
            log.warning("alerts could not be raised: %s", type(exc).__name__)

    async def drain(self, timeout: float) -> bool:
        """Wait (bounded) for the blocking calls in flight; True when all finished."""
        pending = [f for f in self._running if not f.done()]
        if not pending:
            return True
        done, still = await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=timeout)
        return not still

    def stop(self) -> None:
        self.stopping.set()
        if self._lane_pool is not None:  # nothing new starts; what runs finishes (``drain``)
            self._lane_pool.shutdown(wait=False)

    # ------------------------------------------------------------------ pause state

    def paused_reason(self, connection: str) -> str | None:
        """Why scheduled work skips a connection now (blocking), or None."""
        with self.hub.store.transaction() as tx:
            state = tx.connection_state(connection)
        reason = stored_pause(state, self.clock())
        if reason and state and state["status"] == "needs_reauth" \
                and reauthorised(self.hub.connectors[connection]):
            reason = None
        elif reason is None:
            connector = self.hub.connectors[connection]
            credentials = connector.capabilities().credentials
            if credentials is not None and credentials.needs_reauth:
                reason = f"needs_reauth: {connector.health().reason or 'the refresh token was refused'}"
        if reason:
            self.paused[connection] = reason
        else:
            self.paused.pop(connection, None)
        return reason

    def _note(self, summary: SyncSummary) -> None:
        self.paused.update(summary.paused)
        self.metrics.observe(summary)

    # ------------------------------------------------------------------ job bodies (blocking)

    def sync_stream(self, connection: str, entity: str) -> str:
        if self.paused_reason(connection):
            return "skipped"
        summary = self.hub.engine.sync(systems=[connection], entities=[entity])
        self._note(summary)
        return "; ".join(summary.errors[:3]) or f"read {summary.totals().read}, wrote {summary.totals().written}"

    def push_outbox(self) -> str:
        summary = SyncSummary()
        self._push_connections(summary)
        self._note(summary)
        return f"wrote {summary.totals().written}, held {summary.totals().dead}"

    def _push_connections(self, summary: SyncSummary) -> None:
        """Drain every connection's outbox. On PostgreSQL the connections are pushed side by
        side, so a slow or faulting ledger does not hold back the writes to the others (each
        connection's own writes stay in order, in one thread); SQLite has a single writer, so
        there they go one after another."""
        names = [n for n in self.hub.connectors if n not in summary.paused and not self.paused_reason(n)]
        if len(names) < 2 or not self.hub.store.is_postgres:
            for name in names:
                self.hub.engine.push(name, summary, None, max_batches=PUSH_BATCHES_PER_PASS)
            return
        parts = {name: SyncSummary() for name in names}
        with ThreadPoolExecutor(max_workers=min(PUSH_THREADS, len(names)), thread_name_prefix="hub-push") as pool:
            futures = [pool.submit(self.hub.engine.push, name, parts[name], None, max_batches=PUSH_BATCHES_PER_PASS)
                       for name in names]
        for part in parts.values():
            summary.merge(part)
        for future in futures:
            future.result()  # the first failure (DaemonStopping included) after all have stopped

    def process_inbox(self) -> str:
        with self.hub.store.transaction() as tx:
            items = tx.claim_inbox(self.inbox_batch, lease_seconds=INBOX_LEASE_SECONDS)
        if not items:
            return "empty"
        summary = SyncSummary()
        pulled: set[tuple[str, str]] = set()
        done: list[int] = []
        failed = 0
        stripe: dict[str, list[InboxItem]] = defaultdict(list)
        others: list[InboxItem] = []
        for item in items:
            connector = self.hub.connectors.get(item.system)
            refetching = connector is not None and connector.capabilities().refetch is not None
            (stripe[item.system] if refetching else others).append(item)
        try:
            for name, group in stripe.items():
                failed += self._process_stripe_events(self.hub.connectors[name], group, summary, done)
            for item in others:
                try:
                    self._process_event(item, summary, pulled)
                except DaemonStopping:
                    raise  # unfinished items come back when their lease expires
                except Exception as exc:
                    failed += 1
                    self._fail_event(item, exc)
                    continue
                done.append(item.id)
        finally:  # what was stored is marked, a stop included
            with self.hub.store.transaction() as tx:
                tx.finish_inbox_many(done)
        if len(items) < self.inbox_batch:
            self._push_connections(summary)
        # else more events wait: take them next rather than push now. The outbox hands out the
        # oldest writes first, so under a backlog this push would not have carried these
        # events' writes anyway; at 10x it made each claim of 500 events wait minutes for
        # thousands of older writes while the inbox grew. The outbox job pushes meanwhile.
        self._note(summary)
        answered = summary.totals().answered
        return f"processed {len(items) - failed}, failed {failed}" + (
            f", {answered} answered from the store" if answered else "")

    def _fail_event(self, item: InboxItem, exc: Exception) -> None:
        with self.hub.store.transaction() as tx:
            tx.finish_inbox(item.id, error=f"{type(exc).__name__}: {exc}"[:2000],
                            retry_in=retry_in(item.attempts, exc, now=self.clock()))
        log.warning("inbox event failed", extra={"connection": item.system, "event": item.event_id,
                                                 "error": type(exc).__name__})

    def _process_stripe_events(self, connector: Connector, items: list[InboxItem], summary: SyncSummary,
                               done: list[int]) -> int:
        """One connection's Stripe events of a claim, together: each object read once, then the
        records stored in one transaction (one prefetch) instead of one per event. When that
        transaction fails, event by event, so one bad event does not hold back the rest."""
        failed = 0
        readable: list[tuple[InboxItem, list[Record]]] = []
        refetch = connector.capabilities().refetch
        assert refetch is not None  # grouped by process_inbox on this capability

        def held(keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], str]:
            with self.hub.store.transaction() as tx:
                return tx.held_versions(connector.name, keys)
        for item, got in zip(items, refetch.records_for_events([i.payload for i in items], held), strict=True):
            if isinstance(got, Exception):
                failed += 1
                self._fail_event(item, got)
            elif isinstance(got, Answered):  # the hub holds its object at a later state: done
                summary.stats(connector.name, got.entity_type).answered += 1
                done.append(item.id)
            else:
                readable.append((item, got))
        try:
            for batch in distinct_batches([r for _, records in readable for r in records]):
                with self.hub.store.transaction() as tx:
                    self.hub.engine.ingest(tx, connector, batch, summary, None)
        except DaemonStopping:
            raise
        except Exception:
            log.warning("inbox batch failed; storing its events one by one", extra={"connection": connector.name})
            for item, records in readable:
                try:
                    with self.hub.store.transaction() as tx:
                        self.hub.engine.ingest(tx, connector, records, summary, None)
                except DaemonStopping:
                    raise
                except Exception as exc:
                    failed += 1
                    self._fail_event(item, exc)
                    continue
                done.append(item.id)
            return failed
        done.extend(item.id for item, _ in readable)
        return failed

    def _process_event(self, item: InboxItem, summary: SyncSummary, pulled: set[tuple[str, str]]) -> None:
        if item.system == USAGE:
            self._process_usage(item)
            return
        connector = self.hub.connectors.get(item.system)
        if connector is None:
            raise LookupError(f"no connection {item.system!r} for this event")
        # QuickBooks and Xero events carry ids only: they nudge an incremental read of the
        # entity, which picks the change up (and anything else changed meanwhile).
        entity = item.payload.get("entity_type")
        if not entity or entity not in self.hub.routing.reads(connector.system):
            return
        if (item.system, entity) in pulled or self.paused_reason(item.system):
            return
        pulled.add((item.system, entity))
        # The same advisory lock as the scheduled read: a stream is read by one process at a
        # time. Held elsewhere: that read (or the next scheduled one) picks the change up.
        with self.hub.store.stream_lock("sync", item.system, entity) as mine:
            if mine:
                self.hub.engine.pull(item.system, entity, summary, None)

    def _process_usage(self, item: InboxItem) -> None:
        send_usage(self.hub, item)

    def run_diff(self, entity: str) -> str:
        result = self.hub.differ.run([entity])
        self._pending_alerts.append(findings_alert(result, self.hub.config.alerts))
        return f"{result.new} new, {result.resolved} resolved"

    def refresh_tokens(self) -> str:
        """Refresh OAuth access tokens that expire soon, so syncs never wait on a refresh."""
        refreshed = []
        for name, connector in self.hub.connectors.items():
            if self.paused_reason(name):
                continue
            credentials = connector.capabilities().credentials
            if credentials is None:
                continue  # no OAuth tokens (an API key)
            try:
                credentials.refresh_credentials()  # refreshes within its skew of expiry
                refreshed.append(name)
            except Exception as exc:  # the connection pauses itself; show it, try next time
                log.warning("token refresh failed", extra={"connection": name, "error": type(exc).__name__})
        return "checked " + (", ".join(refreshed) or "none")

    # ------------------------------------------------------------------ the schedule

    def specs(self) -> list[JobSpec]:
        schedules = self.hub.config.schedules
        sync_every = float(schedules.get("sync_interval_seconds", 300))
        specs: list[JobSpec] = []
        for name, connector in self.hub.connectors.items():
            readable = set(connector.entity_types())
            for entity in ENTITY_ORDER:
                if entity in readable and entity in self.hub.routing.reads(connector.system):
                    job_id = f"sync:{name}:{entity}"
                    specs.append(JobSpec(job_id, "sync", IntervalTrigger(seconds=sync_every),
                                         partial(self._job, job_id, self.sync_stream, name, entity), True))
        specs.append(JobSpec("outbox", "outbox",
                             IntervalTrigger(seconds=float(schedules.get("outbox_interval_seconds", 15))),
                             partial(self._job, "outbox", self.push_outbox), True))
        specs.append(JobSpec("inbox", "inbox",
                             IntervalTrigger(seconds=float(schedules.get("inbox_interval_seconds", 2))),
                             partial(self._job, "inbox", self.process_inbox), True))
        specs.append(JobSpec("tokens", "tokens",
                             IntervalTrigger(seconds=float(schedules.get("token_refresh_seconds", 600))),
                             partial(self._job, "tokens", self.refresh_tokens), True))
        for entity, cron in sorted((schedules.get("diff") or {}).items()):
            job_id = f"diff:{entity}"
            specs.append(JobSpec(job_id, "diff", CronTrigger.from_crontab(str(cron), timezone=UTC),
                                 partial(self._job, job_id, self.run_diff, entity)))
        return specs

    async def run_now(self, job_id: str) -> dict[str, Any]:
        """Run one job now (the API's "run now", and tests instead of waiting on wall time)."""
        spec = next((s for s in self.specs() if s.id == job_id), None)
        if spec is None:
            raise LookupError(f"no job {job_id!r}")
        await spec.run()
        return self.last[job_id]


def distinct_batches(records: list[Record]) -> list[list[Record]]:
    """The records in order, split so that no batch holds one object twice (an object read
    again is one record however many events named it; a deletion and a snapshot are two, and
    stay in their order), each batch in entity order so references are stored first."""
    batches: list[list[Record]] = [[]]
    held: dict[tuple[str, str], Record] = {}
    for record in records:
        key = (record.entity_type, record.external_id)
        if key in held:
            if held[key] is record:
                continue
            batches.append([])
            held = {}
        held[key] = record
        batches[-1].append(record)
    rank = {entity: i for i, entity in enumerate(ENTITY_ORDER)}
    return [sorted(b, key=lambda r: rank.get(r.entity_type, len(rank))) for b in batches if b]


def build_scheduler(jobs: Jobs) -> AsyncIOScheduler:
    """One APScheduler job per spec; interval jobs start right away (a restart resumes now)."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    now = datetime.now(UTC)
    for i, spec in enumerate(jobs.specs()):
        first = now + timedelta(milliseconds=10 * i) if spec.start_now else None
        options: dict[str, Any] = {"next_run_time": first} if first else {}
        scheduler.add_job(spec.run, spec.trigger, id=spec.id, name=spec.id, max_instances=1, coalesce=True,
                          misfire_grace_time=None, **options)
    return scheduler


__all__ = ["DaemonStopping", "JobSpec", "Jobs", "build_scheduler"]
