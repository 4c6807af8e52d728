"""An accepted webhook runs the inbox job at once (``Jobs.wake_inbox``) when woken runs are on
(``Jobs.woken_by_webhooks``), instead of waiting for the job's next tick; a run still waiting for
the lane takes the deliveries that come meanwhile (one run, not one per webhook)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from sync.lane import ROUTINE
from tests.daemon.conftest import Env, daemon
from tests.daemon.test_webhooks import _stripe_event, _stripe_headers

Client = TestClient[Any, Any]


async def test_accepted_webhooks_wake_one_inbox_run_that_takes_them_all(env: Env, client: Client) -> None:
    jobs = daemon(client).jobs
    jobs.woken_by_webhooks = True  # opted in (off by default: Jobs.__init__)
    lane = jobs.lanes.of("inbox")
    await lane.acquire(ROUTINE)  # a stream sync holds the lane: the woken run must wait
    first = _stripe_event(env, "Woken One Ltd")
    assert (await client.post("/webhooks/stripe", data=first, headers=_stripe_headers(env, first))).status == 200
    run = jobs._inbox_next
    assert run is not None and not run.done() and "inbox" not in jobs.last  # woken, waiting for the lane
    second = _stripe_event(env, "Woken Two Ltd")
    assert (await client.post("/webhooks/stripe", data=second, headers=_stripe_headers(env, second))).status == 200
    assert jobs._inbox_next is run and lane.waiting() == 1  # the waiting run will claim it too
    lane.release()
    await run
    assert jobs.last["inbox"]["detail"] == "processed 2, failed 0"
    assert [r["status"] for r in env.inbox()] == ["processed", "processed"]
    assert jobs._inbox_next is None


async def test_a_refused_delivery_or_an_unwoken_daemon_runs_nothing(env: Env, client: Client) -> None:
    jobs = daemon(client).jobs
    lane = jobs.lanes.of("inbox")
    # held: a woken run would wait here with ``_inbox_next`` set (free, it could claim and clear
    # it before the assertions look, and they would pass with the wake wrongly made)
    await lane.acquire(ROUTINE)
    body = _stripe_event(env)
    assert (await client.post("/webhooks/stripe", data=body, headers=_stripe_headers(env, body))).status == 200
    assert jobs._inbox_next is None  # not woken by default: the inbox waits for its tick (here run_now)
    jobs.woken_by_webhooks = True
    refused = await client.post("/webhooks/stripe", data=body, headers={"Content-Type": "application/json"})
    assert refused.status == 400 and jobs._inbox_next is None and lane.waiting() == 0
    lane.release()
