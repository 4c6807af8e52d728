"""Alerts: a person hears of everything that needs them, once per occurrence.

What is alerted (``conditions``): a connection that needs re-authorisation, a connection paused
(a vendor's limit, a pause the error policy chose), new dead letters in the outbox, a connection
with no successful sync within ``[alerts] sync_sla_minutes``, and a diff that opened new findings
(``findings_alert``). Where: the configured webhook (Slack-compatible: ``{"text": ...}``) and/or
email over SMTP (``smtp_host`` + ``email_to``); neither configured = alerts off.

Deduplicated in the state store (``state.alerts``): a condition is sent when it first holds, not
again while it holds — however many CLI runs and daemon processes look — and again if it clears
and comes back. A condition whose delivery failed on every channel is forgotten, so the next look
sends it again. Alert texts never carry a secret (``Config.secrets`` are masked).
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from prometheus_client import Counter

from state.store import StateStore, Tx
from sync.config import Config
from sync.findings import DiffResult
from sync.policy import paused_reason

log = logging.getLogger("billhub.alerts")
ALERTS_SENT = Counter("billhub_alerts_sent_total", "Alerts delivered", ["kind"])
ALERTS_FAILED = Counter("billhub_alerts_failed_total", "Alerts that no channel could deliver", ["kind"])
RUN_HISTORY = 500  # sync runs looked at for each connection's last success

Poster = Callable[[str, bytes], int]


@dataclass(frozen=True)
class Alert:
    key: str  # one per occurrence: "needs_reauth:quickbooks", "dead_letters:412", ...
    kind: str  # needs_reauth | paused | dead_letters | sync_sla | findings
    text: str
    data: Mapping[str, Any]


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def findings_alert(result: DiffResult, alerts_cfg: Mapping[str, Any]) -> Alert | None:
    """The alert for a diff run that opened at least ``min_new_findings``, else None."""
    if result.new < max(1, int(alerts_cfg.get("min_new_findings", 1))):
        return None
    summary = ", ".join(f"{n} {kind}" for kind, n in result.summary.items() if n)
    return Alert(f"findings:{result.run_id}", "findings",
                 f"billhub drift: {result.new} new finding(s) ({summary}). Review them in the console's "
                 "Findings page or with `hub drift list --status open`.",
                 {"run_id": result.run_id, "new": result.new, "summary": result.summary})


def conditions(tx: Tx, config: Config, now: datetime) -> list[Alert]:
    """Every alertable condition that holds now (besides a diff's new findings)."""
    found: list[Alert] = []
    states = tx.connection_states()
    stopped: set[str] = set()
    for name, conn in sorted(config.connections.items()):
        state = states.get(name)
        reason = paused_reason(state, now)
        if state is None or reason is None:
            continue
        stopped.add(name)
        if state["status"] == "needs_reauth":
            found.append(Alert(f"needs_reauth:{name}", "needs_reauth",
                               f"billhub: {name} ({conn.system}) needs re-authorisation: "
                               f"{state.get('reason') or 'its refresh token was refused'}. Its work is "
                               f"paused until it has a new refresh token (connections.{name}.refresh_token).",
                               {"connection": name, "system": conn.system}))
        else:
            found.append(Alert(f"paused:{name}:{state.get('reason') or ''}"[:160], "paused",
                               f"billhub: {name} ({conn.system}) is paused — {reason}. Its writes wait "
                               "in the outbox and resume by themselves.", {"connection": name, "system": conn.system}))
    dead = tx.newest_dead_letter()
    if dead is not None:
        count = tx.outbox_depth().get("dead", 0)
        found.append(Alert(f"dead_letters:{dead.id}", "dead_letters",
                           f"billhub: {count} write(s) dead-lettered in the outbox; newest #{dead.id}: "
                           f"{dead.operation} {dead.entity_type} to {dead.target}: {(dead.last_error or '')[:300]}. "
                           "Retry or drop them (console Outbox page, `hub outbox list`).",
                           {"count": count, "newest": dead.id, "target": dead.target}))
    found.extend(_late_syncs(tx, config, now, stopped))
    return found


def _late_syncs(tx: Tx, config: Config, now: datetime, stopped: set[str]) -> list[Alert]:
    """Connections whose last successful sync is older than the SLA (paused ones have their own
    alert). Nothing before the hub's first sync run: a hub never started is not late."""
    runs = tx.last_runs(RUN_HISTORY, kind="sync")
    if not runs:
        return []
    sla = timedelta(minutes=float(config.alerts.get("sync_sla_minutes") or 60))
    first = min(r["started_at"] for r in runs)
    last_ok: dict[str, datetime] = {}
    for run in runs:
        if run["status"] == "ok" and run["finished_at"] is not None:
            for name in str(run["scope"]).split(","):
                last_ok[name] = max(last_ok.get(name, run["finished_at"]), run["finished_at"])
    late = []
    for name in sorted(set(config.connections) - stopped):
        since = last_ok.get(name, first)
        if now - since > sla:
            minutes = int((now - since).total_seconds() // 60)
            late.append(Alert(f"sync_sla:{name}:{since.isoformat()}", "sync_sla",
                              f"billhub: no successful sync of {name} for {minutes} minutes (SLA "
                              f"{int(sla.total_seconds() // 60)}; last {since:%Y-%m-%d %H:%M} UTC). "
                              "See the last runs (`hub status`).", {"connection": name, "minutes": minutes}))
    return late


class Channels:
    """Where alerts go: the webhook and/or email, from ``[alerts]``."""

    def __init__(self, config: Config, post: Poster = _post,
                 smtp: Callable[[str, int], smtplib.SMTP] = smtplib.SMTP) -> None:
        self.cfg = config.alerts
        self.secrets = [s for s in config.secrets if len(s) >= 4]
        self._post = post
        self._smtp = smtp

    @property
    def configured(self) -> bool:
        return bool(self.cfg.get("webhook_url") or (self.cfg.get("smtp_host") and self.cfg.get("email_to")))

    def _masked(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def send(self, alert: Alert) -> bool:
        """Deliver on every configured channel; True when at least one took it."""
        text = self._masked(alert.text)
        delivered = False
        url = self.cfg.get("webhook_url")
        if url:
            body = {"text": text, "kind": alert.kind, **{k: v for k, v in alert.data.items()}}
            delivered |= self._attempt("webhook", alert, lambda: self._post(str(url), json.dumps(body).encode()))
        if self.cfg.get("smtp_host") and self.cfg.get("email_to"):
            delivered |= self._attempt("email", alert, lambda: self._email(text, alert.kind))
        if delivered:
            ALERTS_SENT.labels(alert.kind).inc()
        else:
            ALERTS_FAILED.labels(alert.kind).inc()
        return delivered

    @staticmethod
    def _attempt(channel: str, alert: Alert, deliver: Callable[[], Any]) -> bool:
        try:
            deliver()
        except Exception as exc:  # an alert failure must never fail the work that raised it
            log.warning("alert %s by %s failed: %s", alert.kind, channel, type(exc).__name__)
            return False
        return True

    def _email(self, text: str, kind: str) -> None:
        message = EmailMessage()
        message["Subject"] = f"billhub alert: {kind.replace('_', ' ')}"
        message["From"] = str(self.cfg.get("smtp_from") or "billhub@localhost")
        message["To"] = ", ".join(self.cfg["email_to"])
        message.set_content(text)
        with self._smtp(str(self.cfg["smtp_host"]), int(self.cfg.get("smtp_port") or 587)) as server:
            if self.cfg.get("smtp_starttls", True):
                server.starttls()
            if self.cfg.get("smtp_username"):
                server.login(str(self.cfg["smtp_username"]), str(self.cfg.get("smtp_password") or ""))
            server.send_message(message)


def raise_alerts(store: StateStore, config: Config, now: datetime, *, extra: Iterable[Alert | None] = (),
                 channels: Channels | None = None) -> list[Alert]:
    """Send what newly holds (and ``extra``, e.g. a diff's findings alert), forget what cleared;
    the alerts sent. Cheap when nothing changed: one read transaction, no delivery."""
    channels = channels or Channels(config)
    if not channels.configured:
        return []
    with store.transaction() as tx:
        active = {a.key: a for a in conditions(tx, config, now)}
        active.update({a.key: a for a in extra if a is not None})
        already = tx.open_alert_keys()
        tx.clear_alerts(already - set(active))
        claimed = [a for key, a in active.items() if key not in already and tx.claim_alert(key, a.kind)]
    sent = [a for a in claimed if channels.send(a)]
    failed = [a.key for a in claimed if a not in sent]
    if failed:
        with store.transaction() as tx:
            tx.clear_alerts(failed)  # tried again at the next look
    return sent


__all__ = ["Alert", "Channels", "conditions", "findings_alert", "raise_alerts"]
