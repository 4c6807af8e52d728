"""Webhook intake of a large QuickBooks notification, on SQLite and PostgreSQL.

    python -m bench.webhook_intake                # 5,000 entities in one signed notification, 3 rounds
    python -m bench.webhook_intake --entities 20000 --rounds 1

For each database: the real daemon app (``sync.web.app.create_app``, scheduler off) answers one
signed notification of N entities, ``--rounds`` times — the seconds until its 200 (median and
worst) against issue 23's 1 s and Intuit's 3 s budget — and, on the same store, the same N events
stored the way the daemon stores a delivery (``Tx.add_inbox_many``, one INSERT) against one
``Tx.add_inbox`` per event (the path the daemon took before). Prints the seconds and the ratios
measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN  # noqa: E402
from connectors.quickbooks.emulator import sign as qbo_sign  # noqa: E402
from sync.web.app import create_app  # noqa: E402
from tests.daemon.conftest import Env, make_env  # noqa: E402
from tests.scale.helpers import PG_URL, pg_schema  # noqa: E402

INTUIT_BUDGET_SECONDS = 3.0
TARGET_SECONDS = 1.0  # issue 23: answered within 1 s on both databases


def notification(entities: int, prefix: str) -> bytes:
    changes = [{"name": "Customer", "id": f"{prefix}{i}", "operation": "Update",
                "lastUpdated": "2026-11-01T12:00:00Z"} for i in range(entities)]
    return json.dumps({"eventNotifications": [{"realmId": DEFAULT_REALM,
                                               "dataChangeEvent": {"entities": changes}}]}).encode()


async def answer_seconds(env: Env, body: bytes) -> tuple[float, Any]:
    env.config.server["max_body_bytes"] = max(len(body) * 2, 1_000_000)
    app = create_app(env.config, env.hub, start_scheduler=False)
    async with TestClient(TestServer(app)) as client:
        headers = {"intuit-signature": qbo_sign(body, DEFAULT_VERIFIER_TOKEN)}
        started = time.perf_counter()
        response = await client.post("/webhooks/quickbooks", data=body, headers=headers)
        seconds = time.perf_counter() - started
        return seconds, await response.json()


def store_seconds(env: Env, entities: int) -> tuple[float, float]:
    """(one insert per delivery, one insert per event) for ``entities`` new events each."""
    many = [(f"many-{i}", {"id": str(i)}, "Customer.Update") for i in range(entities)]
    started = time.perf_counter()
    with env.store.transaction() as tx:
        stored = tx.add_inbox_many("bench", many)
    batched = time.perf_counter() - started
    assert stored == entities
    started = time.perf_counter()
    with env.store.transaction() as tx:
        for i in range(entities):
            tx.add_inbox("bench", f"one-{i}", {"id": str(i)}, "Customer.Update")
    single = time.perf_counter() - started
    return batched, single


def run(url: str, label: str, entities: int, rounds: int) -> None:
    with make_env(url) as env:
        env.store.init()
        answers = []
        for n in range(rounds):  # new entity ids each round: every round stores all of them
            seconds, answer = asyncio.run(answer_seconds(env, notification(entities, f"{label}-{n}-")))
            assert answer.get("stored") == entities, answer
            answers.append(seconds)
        batched, single = store_seconds(env, entities)
    worst, median = max(answers), statistics.median(answers)
    print(f"{label:10s} answer median {median:5.2f} s, worst {worst:5.2f} s of {rounds} "
          f"({worst / INTUIT_BUDGET_SECONDS:.2f} of Intuit's 3 s; target {TARGET_SECONDS:.0f} s: "
          f"{'met' if worst <= TARGET_SECONDS else 'NOT met'}) | store one insert {batched:6.2f} s, "
          f"per event {single:6.2f} s, ratio {single / batched:5.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="notifications answered per database")
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    with TemporaryDirectory(prefix="hub-intake-") as tmp:
        run(f"sqlite:///{tmp}/hub.db", "sqlite", args.entities, args.rounds)
    with pg_schema(args.pg_url) as url:
        run(url, "postgresql", args.entities, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
