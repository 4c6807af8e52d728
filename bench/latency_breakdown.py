"""Where a webhook's latency goes (``python -m bench.webhook_latency --breakdown``).

Wraps the daemon's ``Jobs`` (bench only, nothing in ``sync/`` changes) so that every engine
job's lane request, start and end, and every push inside it, are noted on the bench's monotonic
clock. For each change written to every target, its time from webhook accepted to written is
split into:

* ``lane``: before the inbox run that claimed it started, the time the lane was held by other
  jobs (and which job held it when the webhook arrived);
* ``poll``: the rest of that wait (no job ran: the inbox job's interval);
* ``ingest``: that inbox run's start to the start of its push (claim, Stripe re-read, store);
* ``push``: from there to the last write answered (the inbox run's own push, or an outbox pass
  that took the writes later).

Printed for the slowest 1 % and for the events around the median.
"""

from __future__ import annotations

import bisect
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync.scheduler import Jobs


@dataclass
class Span:
    job: str
    asked: float
    start: float = 0.0
    end: float = 0.0
    pushes: list[tuple[float, float]] = field(default_factory=list)
    marks: list[tuple[float, float, str]] = field(default_factory=list)  # page checkpoints: in, out, label


@dataclass
class Row:
    parts: dict[str, float]  # total, lane, poll, ingest, push (seconds)
    held: str  # the kind of job that held the lane when the webhook arrived, or "free"
    own_push: bool  # written by the inbox run's own push (not a later outbox pass)


class Timeline:
    """The engine jobs' spans, noted by wrappers around ``Jobs``' own methods."""

    def __init__(self, jobs: Jobs) -> None:
        self.lock = threading.Lock()
        self.spans: list[Span] = []
        self._current = threading.local()
        working_on = jobs._working_on
        push_connections = jobs._push_connections

        def timed_working_on(job_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            span = Span(job_id, time.monotonic())  # asked for the lane now (_job calls this first)

            def run(*args: Any) -> Any:
                span.start = time.monotonic()
                self._current.span = span
                try:
                    return fn(*args)
                finally:
                    span.end = time.monotonic()
                    self._current.span = None
                    with self.lock:
                        self.spans.append(span)
            return working_on(job_id, run)

        def timed_push(summary: Any) -> None:
            began = time.monotonic()
            try:
                push_connections(summary)
            finally:
                span = getattr(self._current, "span", None)
                if span is not None:
                    span.pushes.append((began, time.monotonic()))

        hook = jobs.hub.engine.on_progress

        def noted(label: str, n: int) -> None:  # the engine's page hook: where the lane may be handed on
            span = getattr(self._current, "span", None)
            entered = time.monotonic()
            try:
                if hook is not None:
                    hook(label, n)
            finally:
                if span is not None:
                    span.marks.append((entered, time.monotonic(), label))

        jobs.hub.engine.on_progress = noted
        jobs._working_on = timed_working_on  # type: ignore[method-assign]
        jobs._push_connections = timed_push  # type: ignore[method-assign]


def covered(intervals: list[tuple[float, float]]) -> float:
    """The time the union of ``intervals`` covers (a job that handed the lane on overlaps the
    job it handed it to: counted once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def report(timeline: Timeline, received: dict[int, float], done: dict[int, float]) -> None:
    """``done``: event number -> when its last target's write was answered."""
    with timeline.lock:
        spans = sorted(timeline.spans, key=lambda s: s.start)
    inbox = [s for s in spans if s.job == "inbox"]
    starts = [s.start for s in inbox]
    rows = []
    for n, at in received.items():
        if n not in done:
            continue
        i = bisect.bisect_left(starts, at)
        if i >= len(inbox):
            continue
        run = inbox[i]
        held = next((s for s in spans if s.start <= at < s.end), None)
        lane = covered([(max(s.start, at), min(s.end, run.start)) for s in spans
                        if s is not run and s.end > at and s.start < run.start])
        push_start = run.pushes[0][0] if run.pushes else run.end
        rows.append(Row({"total": done[n] - at, "lane": lane, "poll": run.start - at - lane,
                         "ingest": push_start - run.start, "push": done[n] - push_start},
                        held.job.split(":")[0] if held else "free",
                        bool(run.pushes) and done[n] <= run.pushes[-1][1] + 0.05))
    if not rows:
        print("  breakdown: nothing to break down")
        return
    rows.sort(key=lambda r: r.parts["total"])
    k = max(1, len(rows) // 100)
    mid = len(rows) // 2
    for name, group in (("slowest 1 %", rows[-k:]), ("around the median", rows[max(0, mid - k // 2): mid + k // 2 + 1])):
        means = {c: statistics.fmean(r.parts[c] for r in group) * 1000 for c in ("total", "lane", "poll", "ingest", "push")}
        holders = Counter(r.held for r in group)
        own = sum(1 for r in group if r.own_push)
        print(f"  breakdown, {name} ({len(group)} events), mean ms: " + ", ".join(f"{c} {v:.0f}" for c, v in means.items())
              + f"; lane held at arrival by {dict(holders.most_common())}; written by the inbox run's own push: {own}")
    by_kind: dict[str, list[float]] = {}
    for s in spans:
        by_kind.setdefault(s.job.split(":")[0], []).append(s.end - s.start)
    print("  engine jobs run (count, mean ms, max ms): " + ", ".join(
        f"{k} {len(v)}/{statistics.fmean(v) * 1000:.0f}/{max(v) * 1000:.0f}" for k, v in sorted(by_kind.items())))
    stretches = []  # the longest runs of a job without a page boundary (the lane cannot be had there)
    for s in spans:
        edges = [(s.start, s.start, "start"), *s.marks, (s.end, s.end, "end")]
        for (_, out, before), (entered, _, after) in zip(edges, edges[1:], strict=False):
            stretches.append((entered - out, s.job, before, after))
    stretches.sort(reverse=True)
    print("  longest stretches without a page boundary (ms, job, from -> to): " + "; ".join(
        f"{d * 1000:.0f} {job} {a} -> {b}" for d, job, a, b in stretches[:8]))
    waits = [s.start - s.asked for s in inbox]
    if waits:
        print(f"  inbox lane wait: mean {statistics.fmean(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms;"
              f" inbox runs {len(inbox)}, with a push {sum(1 for s in inbox if s.pushes)}")
