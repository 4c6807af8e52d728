"""The cluster's schedule arithmetic: intervals as cron lines, stream ticks, and their spread."""

from __future__ import annotations

from croniter import croniter

from sync.cluster import periodic
from sync.cluster.periodic import Stream, every
from tests.cluster.conftest import RecordingJobs

START = 1_796_400_000  # a pinned epoch second (2026-12-04), not the wall clock


def ticks(cron: str, n: int) -> list[int]:
    it = croniter(cron, START)
    return [round(it.get_next(float)) for _ in range(n)]


def test_an_interval_becomes_a_cron_step_with_its_offset() -> None:
    assert every(2) == "* * * * * 0-59/2"
    assert every(300, offset=17) == "0-59/5 * * * * 17"
    gaps = {b - a for a, b in zip(ticks(every(300, offset=317), 5), ticks(every(300, offset=317), 5)[1:],
                                  strict=False)}
    assert gaps == {300}
    assert every(7200, offset=3661).startswith("1 1-23/2 ")
    # 7 s is no cron step: the nearest one (6 s) runs instead, said in the log
    assert every(7) == "* * * * * 0-59/6"


def test_a_streams_latest_tick_and_the_spread_of_offsets() -> None:
    stream = Stream("sync:x:customer", "x", "customer", 300, 17)
    assert stream.latest_tick(START) % 300 == 17 and 0 <= START - stream.latest_tick(START) < 300
    assert stream.latest_tick(stream.latest_tick(START)) == stream.latest_tick(START)  # a tick is its own latest
    jobs = RecordingJobs({f"stripe_{i:03d}": ["customer"] for i in range(200)}, sync_every=300)
    streams = periodic.schedule(jobs.as_jobs()).streams
    assert len(streams) == 200 and {s.lock for s in streams} == {f"connection:stripe_{i:03d}" for i in range(200)}
    offsets = [s.offset for s in streams]
    # 200 streams over 300 s: no second holds more than a handful (not all on the minute)
    assert max(offsets.count(o) for o in set(offsets)) <= 5 and len(set(offsets)) > 100
