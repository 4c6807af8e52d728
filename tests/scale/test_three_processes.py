"""Three ``hub run`` processes on one PostgreSQL schema against the four emulators under
faults (10% 5xx, ~3% apply-then-fail, 429 bursts, latency spikes); one process is SIGKILLed
and restarted each time the outbox's ``done`` count passes the next threshold.

After the workload drains: in every emulator no duplicate and no missing record, every amount
equal to the minor unit, every usage event counted once — checked against the emulators' own
state and by a diff that reports nothing — and no (connection, stream) change feed was ever
read by two processes at once (counted at the emulators).

Scale: ``HUB_CHAOS_SCALE`` (1.0 = issue 10's 2,000 customers, 5,000 invoices, 500 refunds,
2,000 usage events). The CI default (0.02: 40 customers, 100 invoices …) fits the suite's time budget; ``bench/chaos.py`` runs
the full and the 10x scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.scale.chaos import Chaos, Scale

SCALE = float(os.environ.get("HUB_CHAOS_SCALE", "0.02"))


@pytest.mark.postgres
def test_three_processes_sigkilled_under_faults_leave_every_system_exact(tmp_path: Path, pg_schema_url: str) -> None:
    chaos = Chaos(tmp_path, pg_schema_url, Scale.of(SCALE, kills=6), log=print)
    try:
        outcome = chaos.run(timeout=600)
    finally:
        chaos.close()
    summary = outcome.summary()
    print(summary, outcome.dead_reasons[:10], outcome.unfinished, outcome.hub_findings[:10])  # the figures, when run with -s
    assert outcome.kills == 6 and outcome.restarts == 6
    assert outcome.faults["5xx"] > 0 and outcome.faults["apply_then_fail"] > 0 and outcome.faults["429"] > 0
    assert outcome.records["payments"] > 0 and outcome.records["refunds"] > 0 and outcome.usage_posted > 0
    assert outcome.webhook_events > 0  # the arrivals came by signed webhooks, not only change feeds
    # The advisory lock: change feeds were read, and never two reads of one stream at once.
    assert outcome.stream_reads > 0
    # Xero's credit_note and refund streams send the same CreditNotes request (they are told apart
    # client-side), so two different stream locks may each have one read of it in flight.
    shared = {k: 2 for k in outcome.max_concurrent_reads if k.startswith("xero ") and k.endswith(" CreditNotes")}
    overlapping = {k: v for k, v in outcome.max_concurrent_reads.items() if v > shared.get(k, 1)}
    assert not overlapping, f"streams read by two processes at once: {overlapping}"
    # Never a duplicate, never a wrong amount, in any system.
    assert not outcome.problems.get("duplicate") and not outcome.problems.get("mismatch"), \
        {k: v[:10] for k, v in outcome.problems.items()}
    # Nothing held back: every write landed (a dead letter would be a record missing somewhere).
    assert outcome.dead == 0, outcome.dead_reasons[:10]
    assert not outcome.unfinished, (outcome.unfinished, outcome.hub_findings[:10])
    assert not outcome.problems.get("missing"), (outcome.problems["missing"][:10], outcome.hub_findings[:10])
    assert outcome.diff_findings == [], outcome.diff_findings[:10]
