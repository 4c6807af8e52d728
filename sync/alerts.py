"""Alerts: one JSON POST (Slack-compatible ``text``) per diff run that opened new findings."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Counter

from sync.findings import DiffResult

log = logging.getLogger("billhub.alerts")
ALERTS_SENT = Counter("billhub_alerts_sent_total", "Drift alerts posted to the alert webhook")
ALERTS_FAILED = Counter("billhub_alerts_failed_total", "Drift alerts that could not be delivered")

Poster = Callable[[str, bytes], int]


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def alert_message(result: DiffResult) -> dict[str, Any]:
    summary = ", ".join(f"{n} {kind}" for kind, n in result.summary.items() if n)
    return {"text": f"billhub drift: {result.new} new finding(s) ({summary}). "
                    f"Run `hub drift list --status open` to review.",
            "run_id": result.run_id, "new": result.new, "summary": result.summary}


def maybe_alert(result: DiffResult, alerts_cfg: Mapping[str, Any], post: Poster = _post) -> bool:
    """POST when the run opened at least ``min_new_findings``; never raises on delivery failure."""
    url = alerts_cfg.get("webhook_url")
    threshold = int(alerts_cfg.get("min_new_findings", 1))
    if not url or result.new < max(1, threshold):
        return False
    try:
        post(str(url), json.dumps(alert_message(result)).encode())
    except Exception as exc:  # an alert failure must not fail the diff
        ALERTS_FAILED.inc()
        log.warning("alert webhook failed: %s", type(exc).__name__)
        return False
    ALERTS_SENT.inc()
    return True
