"""Prometheus metrics for ``/metrics``, on a registry of the app's own (tests never collide).

Counters are fed by the jobs (each sync summary); gauges are read from the state store and the
connectors at scrape time, so they are right after a restart too. Scraping queries the database:
``render`` is blocking and the daemon calls it in its thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.base import Connector
from state.store import StateStore
from sync.engine import SyncSummary
from sync.findings import KINDS

OUTCOMES = ("read", "written", "held", "dead", "failed", "retried", "stale", "answered")
OUTBOX_STATUSES = ("pending", "in_flight", "done", "dead", "dropped")


class StoreCollector(Collector):
    """Gauges computed from the store and the connectors at each scrape."""

    def __init__(self, store: StateStore, connectors: Mapping[str, Connector],
                 clock: Callable[[], datetime], paused: Callable[[], Mapping[str, str]]) -> None:
        self.store = store
        self.connectors = connectors
        self.clock = clock
        self.paused = paused

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.store.transaction() as tx:
            depth = tx.outbox_depth()
            findings = tx.open_findings_by_kind()
            cursors = tx.cursors()
            inbox = {s: tx.count_inbox(s) for s in ("pending", "claimed", "failed")}
            states = tx.connection_states()
        outbox = GaugeMetricFamily("billhub_outbox_items", "Outbox items by status", labels=["status"])
        for status in OUTBOX_STATUSES:
            outbox.add_metric([status], depth.get(status, 0))
        yield outbox
        yield GaugeMetricFamily("billhub_dead_letters", "Writes held in the outbox for a person",
                                value=depth.get("dead", 0))
        open_findings = GaugeMetricFamily("billhub_open_findings", "Open or acknowledged drift findings",
                                          labels=["kind"])
        for kind in KINDS:
            open_findings.add_metric([kind], findings.get(kind, 0))
        yield open_findings
        lag = GaugeMetricFamily("billhub_sync_lag_seconds", "Seconds since a stream's last successful page",
                                labels=["connection", "stream"])
        for c in cursors:
            if c["last_success"] is not None:
                lag.add_metric([c["connection"], c["stream"]], max(0.0, (now - c["last_success"]).total_seconds()))
        yield lag
        inbox_family = GaugeMetricFamily("billhub_inbox_items", "Webhook inbox items by status", labels=["status"])
        for status, n in inbox.items():
            inbox_family.add_metric([status], n)
        yield inbox_family
        paused = self.paused()
        paused_family = GaugeMetricFamily("billhub_connection_paused", "1 when scheduled work skips the connection",
                                          labels=["connection"])
        retries = CounterMetricFamily("billhub_api_retry_waits", "Retries (429s and transient errors) per connection",
                                      labels=["connection", "system"])
        budget = GaugeMetricFamily("billhub_connection_budget", "Rate budget figures a connector reports",
                                   labels=["connection", "key"])
        expiry = GaugeMetricFamily("billhub_token_expiry_timestamp_seconds", "When the access token expires",
                                   labels=["connection"])
        for name, connector in sorted(self.connectors.items()):
            paused_family.add_metric([name], 1 if name in paused else 0)
            capabilities = connector.capabilities()
            if capabilities.retries is not None:
                retries.add_metric([name, connector.system], len(capabilities.retries.waits))
            try:
                health = connector.health()
            except Exception:  # a failing health probe must not break the scrape
                health = None
            for key, value in sorted((health.budget if health else {}).items()):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    budget.add_metric([name, key], float(value))
            expires = capabilities.credentials.credentials_expire_at() if capabilities.credentials else None
            if expires is not None:
                expiry.add_metric([name], expires.timestamp())
        yield paused_family
        # The same health /healthz reports, one series per connection: 1 on its current status
        # (ok, needs_reauth, failed, ...), so an alert rule can say which connection and why.
        status_family = GaugeMetricFamily("billhub_connection_status", "1 on each connection's stored status",
                                          labels=["connection", "status"])
        for name in sorted(self.connectors):
            status_family.add_metric([name, str((states.get(name) or {}).get("status") or "ok")], 1)
        yield status_family
        yield retries
        yield budget
        yield expiry


class Metrics:
    """The app's registry: counters fed by jobs and webhooks, plus the store collector."""

    def __init__(self, store: StateStore, connectors: Mapping[str, Connector],
                 clock: Callable[[], datetime], paused: Callable[[], Mapping[str, str]]) -> None:
        self.registry = CollectorRegistry()
        self.connectors = connectors
        self.records = Counter("billhub_records", "Records by connection, entity and outcome",
                               ["connection", "system", "entity", "outcome"], registry=self.registry)
        self.jobs = Counter("billhub_jobs", "Scheduled job runs by outcome", ["job", "outcome"],
                            registry=self.registry)
        self.webhooks = Counter("billhub_webhooks", "Webhook deliveries by outcome",
                                ["connection", "outcome"], registry=self.registry)
        self.registry.register(StoreCollector(store, connectors, clock, paused))

    def observe(self, summary: SyncSummary) -> None:
        for (connection, entity), stats in summary.streams.items():
            connector = self.connectors.get(connection)
            system = connector.system if connector else connection
            for outcome in OUTCOMES:
                value = getattr(stats, outcome)
                if value:
                    self.records.labels(connection, system, entity, outcome).inc(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["Metrics", "StoreCollector"]
