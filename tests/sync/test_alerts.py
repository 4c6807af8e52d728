"""Alerts (issue 20, item 6): a person hears of each thing that needs them — re-authorisation,
a pause, new dead letters, a connection past its sync SLA, a diff's new findings — once per
occurrence, by the webhook and by email, on SQLite and PostgreSQL. Real HTTP and SMTP servers on
loopback receive them; the clock is pinned."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from connectors.emulation import free_port
from state.store import StateStore
from sync.alerts import findings_alert, raise_alerts
from sync.config import Config, parse_config
from sync.findings import DiffResult
from tests.conftest import FrozenClock

SECRET_KEY = "sk_test_alert_secret_1234567890"


class Hook:
    """A Slack-compatible webhook on loopback; ``failing`` answers 500."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failing = False
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.failing:
                    self.send_response(500)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        return [b["kind"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _config(hook: Hook, **alerts: Any) -> Config:
    text = (f'[connections.stripe]\nsystem = "stripe"\napi_key = "{SECRET_KEY}"\n'
            '[connections.quickbooks]\nsystem = "quickbooks"\nrealm_id = "1"\nclient_id = "c"\nclient_secret = "s"\n'
            f'[alerts]\nwebhook_url = "{hook.url}"\n')
    config = parse_config(__import__("tomllib").loads(text), env={})
    return Config(**{**config.__dict__, "alerts": {**config.alerts, **alerts}})


def test_needs_reauth_and_pause_are_alerted_once_each_and_again_when_they_return(
        store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    config = _config(hook)
    assert raise_alerts(store, config, clock()) == [] and hook.bodies == []  # all well: silence
    with store.transaction() as tx:
        tx.set_connection_state("quickbooks", "needs_reauth", reason="invalid_grant")
        tx.set_connection_state("stripe", "paused", reason="rate limited", paused_until=clock() + timedelta(hours=1))
    sent = raise_alerts(store, config, clock())
    assert sorted(a.kind for a in sent) == ["needs_reauth", "paused"]
    reauth = next(b for b in hook.bodies if b["kind"] == "needs_reauth")
    assert reauth["connection"] == "quickbooks" and "invalid_grant" in reauth["text"]
    assert "connections.quickbooks.refresh_token" in reauth["text"]
    for _ in range(3):  # every later look (CLI runs, daemon jobs, other processes): nothing new
        assert raise_alerts(store, config, clock()) == []
    assert len(hook.bodies) == 2

    clock.advance(hours=2)  # the pause ran out: cleared; re-authorised: cleared
    with store.transaction() as tx:
        tx.set_connection_state("quickbooks", "ok", reason="re-authorised")
    assert raise_alerts(store, config, clock()) == []
    with store.transaction() as tx:  # the same trouble again is a new occurrence
        tx.set_connection_state("quickbooks", "needs_reauth", reason="invalid_grant")
    assert [a.kind for a in raise_alerts(store, config, clock())] == ["needs_reauth"]
    assert hook.kinds().count("needs_reauth") == 2


def test_new_dead_letters_are_alerted_without_secrets(store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    config = _config(hook)

    def dead(key: str, error: str) -> int:
        with store.transaction() as tx:
            tx.enqueue("cust-1", "customer", "quickbooks", "upsert", key, "digest")
            item = next(i for i in tx.list_outbox("pending") if i.idempotency_key == key)
            tx.dead_outbox(item.id, error)
            return item.id

    first = dead("k1", f"400 ValidationFault: amount applied exceeds the open balance (key {SECRET_KEY})")
    (sent,) = raise_alerts(store, config, clock())
    body = hook.bodies[-1]
    assert sent.kind == "dead_letters" and body["count"] == 1 and body["newest"] == first
    assert "exceeds the open balance" in body["text"] and SECRET_KEY not in json.dumps(hook.bodies)
    assert raise_alerts(store, config, clock()) == []
    second = dead("k2", "400 Duplicate Name Exists Error")
    (again,) = raise_alerts(store, config, clock())
    assert again.kind == "dead_letters" and hook.bodies[-1]["count"] == 2 and hook.bodies[-1]["newest"] == second
    assert len(hook.bodies) == 2


def test_a_connection_past_its_sync_sla_is_alerted_once_until_it_syncs_again(
        store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    config = _config(hook, sync_sla_minutes=30.0)
    assert raise_alerts(store, config, clock()) == []  # a hub never synced is not late

    def synced(scope: str, status: str = "ok") -> None:
        with store.transaction() as tx:
            tx.finish_run(tx.start_run("sync", scope), status, {})

    synced("stripe,quickbooks")
    clock.advance(minutes=20)
    synced("stripe")
    clock.advance(minutes=15)  # quickbooks: 35 min since its last success; stripe 15
    synced("quickbooks", "partial")  # a failed pass is no success
    (late,) = raise_alerts(store, config, clock())
    assert late.kind == "sync_sla" and hook.bodies[-1]["connection"] == "quickbooks"
    assert hook.bodies[-1]["minutes"] == 35 and "SLA 30" in hook.bodies[-1]["text"]
    clock.advance(minutes=5)
    assert raise_alerts(store, config, clock()) == []
    synced("quickbooks")
    assert raise_alerts(store, config, clock()) == []
    clock.advance(minutes=31)
    assert len(hook.bodies) == 1
    assert sorted(a.data["connection"] for a in raise_alerts(store, config, clock())) == ["quickbooks", "stripe"]


def test_a_diff_with_new_findings_alerts_once_per_run(store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    config = _config(hook, min_new_findings=2)
    one = DiffResult("run-1", clock(), new=1)
    assert findings_alert(one, config.alerts) is None  # below the threshold
    three = DiffResult("run-2", clock(), new=3)
    (sent,) = raise_alerts(store, config, clock(), extra=[findings_alert(three, config.alerts)])
    assert sent.kind == "findings" and hook.bodies[-1]["run_id"] == "run-2" and hook.bodies[-1]["new"] == 3
    assert "3 new finding(s)" in hook.bodies[-1]["text"]
    assert raise_alerts(store, config, clock(), extra=[findings_alert(three, config.alerts)]) == []


def test_an_alert_that_could_not_be_delivered_is_sent_at_the_next_look(
        store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    config = _config(hook)
    with store.transaction() as tx:
        tx.set_connection_state("quickbooks", "needs_reauth", reason="invalid_grant")
    hook.failing = True
    assert raise_alerts(store, config, clock()) == []
    hook.failing = False
    assert [a.kind for a in raise_alerts(store, config, clock())] == ["needs_reauth"]
    assert hook.kinds() == ["needs_reauth"]


def test_alerts_go_by_email_over_smtp(store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = _config(hook, webhook_url=None, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                         smtp_from="billhub@example.com", email_to=["ops@example.com", "finance@example.com"])
        with store.transaction() as tx:
            tx.set_connection_state("quickbooks", "needs_reauth", reason="invalid_grant")
        assert [a.kind for a in raise_alerts(store, config, clock())] == ["needs_reauth"]
        ((recipients, message),) = mailbox.messages
        assert recipients == ["ops@example.com", "finance@example.com"]
        assert message["Subject"] == "billhub alert: needs reauth" and message["From"] == "billhub@example.com"
        assert "quickbooks (quickbooks) needs re-authorisation" in message.get_payload()
        assert hook.bodies == []  # the webhook is off
        assert raise_alerts(store, config, clock()) == [] and len(mailbox.messages) == 1
    finally:
        controller.stop()


def test_no_channel_configured_means_alerts_off(store: StateStore, clock: FrozenClock, hook: Hook) -> None:
    config = _config(hook, webhook_url=None)
    with store.transaction() as tx:
        tx.set_connection_state("quickbooks", "needs_reauth", reason="invalid_grant")
        assert raise_alerts(store, config, clock()) == []
    with store.transaction() as tx:
        assert tx.open_alert_keys() == set()  # nothing marked sent: a channel added later still alerts
