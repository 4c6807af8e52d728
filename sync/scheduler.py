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
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sync.alerts import Alert, findings_alert, raise_alerts
from sync.context import reauthorised
from sync.engine import SyncSummary
from sync.flows import ENTITY_ORDER
from sync.inbox_work import INBOX_BATCH, InboxWork, distinct_batches
from sync.lane import LANE_NAMES, ROUTINE, SOON, URGENT, DaemonStopping, Lane, Lanes, hand_on_from_thread
from sync.metrics import Metrics
from sync.policy import paused_reason as stored_pause
from sync.runtime import Hub

ALERT_LOOK_EVERY = timedelta(seconds=30)  # how often jobs look at the alert conditions (a diff's at once)
# A job's detail that says it did nothing: not logged at INFO.
IDLE = re.compile(r"read 0, wrote 0|wrote 0, held 0|empty|checked none|0 new, 0 resolved")
log = logging.getLogger("billhub.daemon")
T = TypeVar("T")
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


class _Holding(threading.local):
    """Per pool thread: the lane held by the job this thread runs, with its priority and loop
    (set by ``Jobs._in_lane``), for the engine's page hook, which is given no context; None in
    a thread that runs no lane's job (a request, a push thread)."""

    lane: tuple[Lane, int, asyncio.AbstractEventLoop] | None = None


@dataclass(frozen=True)
class JobSpec:
    id: str
    kind: str  # sync | outbox | inbox | diff | tokens
    trigger: BaseTrigger
    run: Callable[[], Awaitable[None]]
    start_now: bool = False


class Jobs(InboxWork):
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
        self.nudged: set[tuple[str, str]] = set()  # streams a webhook found being read (sync_stream)
        self.looks_at_alerts = True  # False: someone else looks (the cluster's periodic job)
        self._holding = _Holding()
        hub.engine.on_progress = self._checkpoint

    # ------------------------------------------------------------------ plumbing

    def _checkpoint(self, label: str, _n: int) -> None:
        """Called by the engine after each committed page or batch: the place to stop, and to
        let a more urgent job go first (``_hand_on``)."""
        if self.stopping.is_set():
            raise DaemonStopping("stopping: the page in hand is committed")
        self._hand_on(label)
        if self.stopping.is_set():  # a stop came while the lane was handed on
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
        held = self.lanes.of(lane)
        async with held.hold(priority):
            if self.stopping.is_set():
                raise DaemonStopping("the daemon is stopping")
            return await self._submit(self._lane_pool or self.executor, partial(
                self._in_lane, (held, priority, asyncio.get_running_loop()), partial(fn, *args, **kwargs)))

    def _in_lane(self, holding: tuple[Lane, int, asyncio.AbstractEventLoop], call: Callable[[], T]) -> T:
        """``call`` in the pool, this thread noted as holding ``holding``'s lane (``_checkpoint``)."""
        self._holding.lane = holding
        try:
            return call()
        finally:
            self._holding.lane = None

    def _hand_on(self, label: str) -> None:
        """Between two pages of the job in hand: when a more urgent job waits for its lane (a
        webhook's inbox run behind a stream sync), let it go first, then go on (blocking this
        thread until the lane is back). Not between a push's batches: a push holds its
        connection (``Pusher.push``), so the inbox's own push of that connection would be left
        to this pass; nor in a dry run, whose one transaction stays open."""
        holding = self._holding.lane
        if holding is None or label.startswith("push ") or self.hub.engine.ctx.dry_conn is not None:
            return
        lane, priority, loop = holding
        if lane.more_urgent_waiting(priority) and not hand_on_from_thread(lane, priority, loop):
            raise DaemonStopping("the event loop stopped while the lane was handed on")

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
        if outcome != "stopped" and self._alert_due():
            # cancelled: the loop is closing while the look waited for its lane (as above)
            with contextlib.suppress(DaemonStopping, asyncio.CancelledError):
                await self.exclusive(self._alert, priority=ROUTINE, lane="alerts")

    def _alert_due(self) -> bool:
        """Whether the look after a job has anything to do, asked before it waits for a lane.
        The look waits behind the stream syncs (ROUTINE); a look that waited there after every
        inbox run kept that run's job "running", so the scheduler skipped the inbox's next ticks
        while webhooks piled up — for a look that then found it had looked seconds ago."""
        if any(self._pending_alerts):
            return True  # a diff's findings go at once
        if not self.looks_at_alerts:
            return False  # the cluster's periodic job looks
        return self._alerted_at is None or self.clock() - self._alerted_at >= ALERT_LOOK_EVERY

    def _alert(self) -> None:
        """After every job: alert what newly needs a person (deduplicated in the store, so every
        process may look), and a diff's new findings."""
        if not self._alert_due():
            return  # another job's look, waiting beside this one, has just looked
        extra, self._pending_alerts = self._pending_alerts, []
        now = self.clock()
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
        waits = [asyncio.wrap_future(f) for f in pending]
        for wait in waits:  # their outcome (a stop's DaemonStopping, say) is the jobs' own to report
            wait.add_done_callback(_retrieved)
        _done, still = await asyncio.wait(waits, timeout=timeout)
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
        # a nudge from before this read (left by another process's read, or by a last re-read) is
        # what this read picks up: only one that comes while it reads calls for reading again
        self.nudged.discard((connection, entity))
        summary = self.hub.engine.sync(systems=[connection], entities=[entity])
        if (connection, entity) in self.nudged:  # a webhook came while it read: read what came since
            self.nudged.discard((connection, entity))
            summary.merge(self.hub.engine.sync(systems=[connection], entities=[entity]))
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


def _retrieved(wait: asyncio.Future[Any]) -> None:
    """Mark a drain's wrapper's exception as retrieved (else asyncio logs "Future exception was
    never retrieved" for each job a stop ended)."""
    if not wait.cancelled():
        wait.exception()


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


__all__ = ["DaemonStopping", "JobSpec", "Jobs", "build_scheduler", "distinct_batches"]
