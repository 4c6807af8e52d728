"""Progress of long work (``hub sync``, ``hub resync --since``, ``hub demo``): totals, rate and
time left where the total is known, for a terminal and for logs alike.

The engine reports each page it reads and each batch it pushes (``engine.on_progress(label, n)``;
labels ``"<connection> <entity>"`` for reads and ``"push <connection> <entity>"`` for writes). A
push's total is known — what its first batch sent plus the writes still due then for that connection
and entity (``total_of``) — a read's is not (no vendor says how many records a change feed holds), so a read
shows its count and rate. On a terminal that is a rich progress display; elsewhere (a log, a
pipe, systemd) plain lines, at most one per ``every`` seconds per stream and a last one when
it ends: ``pushed 1,200 of 16,600 xero invoice writes (310/s, about 45 s left)``, and the same
for all the pass's writes together (``pushed 1,200 of 16,600 writes``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from state.store import StateStore
from sync.engine import Engine

PUSH = "push "
ALL_WRITES = "push *"  # every push of the pass together: "pushed 1,200 of 16,600 writes"
EVERY_SECONDS = 5.0  # at most one log line per stream this often


def words(label: str) -> tuple[str, str, str]:
    """(verb, what, unit) of a progress label: ``push xero invoice`` -> pushed, xero invoice, writes."""
    if label == ALL_WRITES:
        return "pushed", "", "writes"
    if label.startswith(PUSH):
        return "pushed", label[len(PUSH):], "writes"
    return "read", label, "records"


def _phrase(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def seconds_in_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Stream:
    started: float
    done: int = 0
    total: int | None = None
    said_at: float | None = None  # when its last line was written
    said_done: int = 0  # the count that line gave
    last: float = 0.0  # when it last moved


class ProgressLines:
    """Plain progress lines for logs, throttled per stream by a clock (pinned in tests)."""

    def __init__(self, write: Callable[[str], None], *, total_of: Callable[[str], int | None] | None = None,
                 clock: Callable[[], float] = time.monotonic, every: float = EVERY_SECONDS) -> None:
        self.write = write
        self.total_of = total_of or (lambda _label: None)
        self.clock = clock
        self.every = every
        self.streams: dict[str, _Stream] = {}

    def advance(self, label: str, n: int) -> None:
        if label.startswith(PUSH) and label != ALL_WRITES:
            self.advance(ALL_WRITES, n)  # the pass's writes together, with their total and time left
        now = self.clock()
        stream = self.streams.get(label)
        if stream is None:
            queued = self.total_of(label)
            stream = self.streams[label] = _Stream(now, total=None if queued is None else queued + n)
        stream.done += n
        stream.last = now
        # quiet for the first few seconds: a short pass says nothing, a long one says how it goes
        if now - (stream.said_at if stream.said_at is not None else stream.started) >= self.every:
            self.write(self.line(label, stream, now))
            stream.said_at, stream.said_done = now, stream.done

    def line(self, label: str, stream: _Stream, now: float) -> str:
        verb, what, unit = words(label)
        elapsed = now - stream.started
        rate = stream.done / elapsed if elapsed > 0 else None
        total = max(stream.total, stream.done) if stream.total is not None else None
        count = (_phrase(verb, f"{stream.done:,} of {total:,}", what, unit) if total
                 else _phrase(verb, f"{stream.done:,}", what, unit))
        if rate is None:
            return count
        if total and stream.done < total:
            return f"{count} ({rate:,.0f}/s, about {seconds_in_words((total - stream.done) / rate)} left)"
        return f"{count} ({rate:,.0f}/s)"

    def finish(self) -> None:
        """A last line for each stream that said how it went and moved since, so a log ends on
        the counts reached (and how long the stream took, to its last batch)."""
        for label, stream in self.streams.items():
            if stream.said_at is not None and stream.done != stream.said_done:
                verb, what, unit = words(label)
                took = seconds_in_words(stream.last - stream.started)
                self.write(_phrase(verb, f"{stream.done:,}", what, unit, f"in {took}"))
                stream.said_at, stream.said_done = stream.last, stream.done


class RateColumn(ProgressColumn):
    """Items per second, as a count (rich's own speed column speaks bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


def rich_progress(console: Console, *, transient: bool = True) -> Progress:
    """The terminal's display: description, bar, done/total, rate, time left, time taken."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeRemainingColumn(), TimeElapsedColumn(), console=console, transient=transient)


class RichStreams:
    """Feeds engine progress into a rich ``Progress``: one task per stream, with its total when known."""

    def __init__(self, progress: Progress, total_of: Callable[[str], int | None] | None = None) -> None:
        self.progress = progress
        self.total_of = total_of or (lambda _label: None)
        self.tasks: dict[str, Any] = {}

    def advance(self, label: str, n: int) -> None:
        if label.startswith(PUSH) and label != ALL_WRITES:
            self.advance(ALL_WRITES, n)
        if label not in self.tasks:
            verb, what, unit = words(label)
            queued = self.total_of(label)
            self.tasks[label] = self.progress.add_task(_phrase(verb, what, unit),
                                                       total=None if queued is None else queued + n)
        self.progress.advance(self.tasks[label], n)


def queued_writes(store: StateStore) -> Callable[[str], int | None]:
    """``total_of`` for the engine's labels: a push's writes still due; None for a read."""

    def total_of(label: str) -> int | None:
        if not label.startswith(PUSH):
            return None
        with store.transaction() as tx:
            if label == ALL_WRITES:
                return tx.due_writes()
            connection, _, entity_type = label[len(PUSH):].partition(" ")
            return tx.due_writes(connection, entity_type)
    return total_of


@contextmanager
def engine_progress(engine: Engine, store: StateStore, console: Console, *, quiet: bool = False,
                    clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Show the engine's progress while the block runs: rich on a terminal, log lines elsewhere,
    nothing when ``quiet`` (``--json``: stdout is the document and stderr stays clean)."""
    if quiet:
        yield
        return
    total_of = queued_writes(store)
    if console.is_terminal:
        with rich_progress(console) as progress:
            engine.on_progress = RichStreams(progress, total_of).advance
            try:
                yield
            finally:
                engine.on_progress = None
        return
    lines = ProgressLines(lambda text: console.print(text, highlight=False, markup=False, soft_wrap=True),
                          total_of=total_of, clock=clock)
    engine.on_progress = lines.advance
    try:
        yield
    finally:
        engine.on_progress = None
        lines.finish()


__all__ = ["ALL_WRITES", "engine_progress", "queued_writes", "ProgressLines", "RateColumn", "RichStreams", "rich_progress", "seconds_in_words", "words"]
