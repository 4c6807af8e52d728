"""Progress of long work in logs (issue 21, item 5): plain lines with totals, rate and time left,
at most one per stream every few seconds, on a pinned clock (no sleeps)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from sync.progress import ProgressLines, RichStreams, engine_progress, queued_writes, rich_progress
from tests.conftest import FrozenClock, make_store


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_push_says_done_of_total_rate_and_time_left_every_five_seconds() -> None:
    said: list[str] = []
    ticks = Ticks()
    lines = ProgressLines(said.append, total_of=lambda label: 16_500 if label.startswith("push ") else None,
                          clock=ticks)
    lines.advance("push xero invoice", 100)  # the first batch: 100 sent, 16,500 still due
    for _ in range(29):  # 29 more batches over 4.5 s: quiet, under five seconds
        ticks.now += 0.155
        lines.advance("push xero invoice", 50)
    assert said == []
    ticks.now = 105.0
    lines.advance("push xero invoice", 0)  # 1,550 sent in 5 s
    # the pass's writes together (one push stream here, so the same figures), then the stream's
    assert said == ["pushed 1,550 of 16,600 writes (310/s, about 49 s left)",
                    "pushed 1,550 of 16,600 xero invoice writes (310/s, about 49 s left)"]
    ticks.now = 107.0
    lines.advance("push xero invoice", 620)  # 2 s later: not yet
    ticks.now = 110.0
    lines.advance("push xero invoice", 930)  # 3,100 in 10 s
    assert said[2:] == ["pushed 3,100 of 16,600 writes (310/s, about 44 s left)",
                        "pushed 3,100 of 16,600 xero invoice writes (310/s, about 44 s left)"]
    ticks.now = 111.0
    lines.advance("push xero invoice", 400)  # the last batch
    ticks.now = 140.0  # the rest of the pass, other streams
    lines.finish()
    assert said[4:] == ["pushed 3,500 writes in 11 s",  # to the last batch, not the pass's end
                        "pushed 3,500 xero invoice writes in 11 s"]


def test_a_read_has_no_total_and_a_short_pass_says_nothing() -> None:
    said: list[str] = []
    ticks = Ticks()
    lines = ProgressLines(said.append, total_of=lambda _label: None, clock=ticks)
    lines.advance("stripe customer", 100)
    ticks.now += 1
    lines.advance("quickbooks invoice", 1000)  # its own stream, just begun
    ticks.now += 5
    lines.advance("stripe customer", 500)
    assert said == ["read 600 stripe customer records (100/s)"]
    ticks.now += 1
    lines.advance("stripe customer", 50)
    ticks.now += 30
    lines.finish()  # quickbooks never said anything: a short stream stays quiet at the end too
    assert said[1:] == ["read 650 stripe customer records in 7 s"]
    lines.finish()  # nothing moved since: nothing more to say
    assert len(said) == 2


def test_the_total_of_a_push_is_what_is_still_due_for_that_target_and_entity(tmp_path: Path) -> None:
    store = make_store(f"sqlite:///{tmp_path}/hub.db", FrozenClock())
    with store.transaction() as tx:
        for n in range(3):
            tx.enqueue(f"c{n}", "invoice", "xero", "upsert", f"k{n}", "h")
        tx.enqueue("c9", "customer", "xero", "upsert", "k9", "h")
    total_of = queued_writes(store)
    assert (total_of("push xero invoice"), total_of("push xero customer"), total_of("stripe invoice")) == (3, 1, None)
    # on a terminal a push's bar has that total (plus what its first batch sent) — no "1944/None"
    with open(tmp_path / "tty.txt", "w") as fh, rich_progress(Console(force_terminal=True, width=120,
                                                                      file=fh)) as progress:
        streams = RichStreams(progress, total_of)
        streams.advance("push xero invoice", 2)
        streams.advance("stripe invoice", 40)
        tasks = {t.description: (t.completed, t.total) for t in progress.tasks}
    assert tasks == {"pushed writes": (2, 6), "pushed xero invoice writes": (2, 5),
                     "read stripe invoice records": (40, None)}
    store.dispose()


def test_engine_progress_writes_log_lines_when_not_on_a_terminal(tmp_path: Path) -> None:
    store = make_store(f"sqlite:///{tmp_path}/hub.db", FrozenClock())
    out = tmp_path / "log.txt"
    ticks = Ticks()

    class Engine:
        on_progress = None

    engine = Engine()
    with open(out, "w") as fh:
        console = Console(file=fh, force_terminal=False, width=200)
        with engine_progress(engine, store, console, clock=ticks):  # type: ignore[arg-type]
            assert engine.on_progress is not None
            engine.on_progress("stripe invoice", 10)
            ticks.now += 6
            engine.on_progress("stripe invoice", 50)
        assert engine.on_progress is None
    assert out.read_text().splitlines() == ["read 60 stripe invoice records (10/s)"]
    store.dispose()
