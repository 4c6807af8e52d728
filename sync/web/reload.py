"""SIGHUP: read the config file again and carry on with it, without dropping the listening port.

A reload swaps the daemon's work — connectors, engine, jobs and their schedules — for ones built
from the new file, after the job in hand reaches a page boundary (as on SIGTERM). On the
Procrastinate engine the worker's sweep follows the new connections (``ClusterWorker.reloaded``). What a running
process cannot change (the listen address, the database) is reported as "restart to apply", and
a file with any problem is refused whole: the daemon keeps serving the config it has, and the log
says what to fix. Console sessions survive (their table belongs to the process, not the config).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from state.errors import StateError
from sync.audit import record_action
from sync.config import Config, ConfigError, load_config
from sync.logs import redact_also
from sync.runtime import Hub
from sync.scheduler import build_scheduler
from sync.web.app import build_work
from sync.web.context import STOP_GRACE_SECONDS, Daemon
from sync.web.guards import weak_token_problem

log = logging.getLogger("billhub.daemon")

# Keys a process reads once, at start: a change is applied by the next restart.
# The console's session table and the wrong-token throttle are built once too (their state must
# survive a reload), so their [admin] settings are among these.
RESTART_KEYS = (("server", "host"), ("server", "port"), ("server", "workers"),
                ("admin", "session_idle_minutes"), ("admin", "session_max_hours"),
                ("admin", "failed_tokens_per_minute"))
RELOAD_ACTOR = "signal:SIGHUP"


@dataclass
class ReloadOutcome:
    reloaded: bool
    message: str
    restart_to_apply: list[str] = field(default_factory=list)


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    changed = []
    for section, key in RESTART_KEYS:
        before = getattr(old, section).get(key)
        after = getattr(new, section).get(key)
        if before != after:
            changed.append(f"[{section}] {key}")
    return changed


class Reloader:
    """One reload at a time; a SIGHUP during a reload waits for it."""

    def __init__(self, daemon: Daemon, path: Path | None) -> None:
        self.daemon = daemon
        self.path = path
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadOutcome:
        async with self._lock:
            before = sorted(self.daemon.hub.connectors)
            outcome = await self._reload()
            await asyncio.get_running_loop().run_in_executor(None, self._audit, before, outcome)
        if outcome.reloaded:
            log.info("config reloaded: %s", outcome.message,
                     extra={"restart_to_apply": outcome.restart_to_apply, "path": str(self.path)})
        else:
            log.error("config reload refused: %s; still running the previous config", outcome.message,
                      extra={"path": str(self.path)})
        return outcome

    def _audit(self, before: list[str], outcome: ReloadOutcome) -> None:
        """The audit log's entry (a reload changes what the hub does; a refused one is kept too).
        A signal names no person: the actor is the signal."""
        after = {"connections": sorted(self.daemon.hub.connectors), "reloaded": outcome.reloaded,
                 "restart_to_apply": outcome.restart_to_apply}
        try:
            with self.daemon.hub.store.transaction() as tx:
                record_action(tx, RELOAD_ACTOR, "config.reload", "config", str(self.path or ""),
                              before={"connections": before}, after=after,
                              reason=None if outcome.reloaded else outcome.message)
        except StateError as exc:  # the database is down: the reload itself still stands
            log.error("config reload not written to the audit log: %s", exc)

    async def _reload(self) -> ReloadOutcome:
        daemon = self.daemon
        if self.path is None:
            return ReloadOutcome(False, "this process was started without a config file")
        loop = asyncio.get_running_loop()
        try:
            config = await loop.run_in_executor(None, load_config, self.path)
        except ConfigError as exc:
            return ReloadOutcome(False, f"{self.path}: {exc}")
        redact_also(config.secrets)  # before anything about the new config can be logged
        weak = weak_token_problem(str(config.admin["token"]) if config.admin.get("token") else None)
        if weak:
            return ReloadOutcome(False, weak)
        if (config.state_url, config.encryption_key) != (daemon.config.state_url, daemon.config.encryption_key):
            # A different database or encryption key: the running store cannot follow it.
            return ReloadOutcome(False, "[state] changed (database or encryption key): restart hub run to use it")
        restart = _restart_only_changes(daemon.config, config)
        try:
            # The new hub shares the running store (same database): its connection pool stays.
            hub = await loop.run_in_executor(None, lambda: Hub.from_config(config, store=daemon.hub.store))
        except (ConfigError, StateError, ValueError) as exc:
            return ReloadOutcome(False, f"the new config cannot be used: {exc}")
        old_hub, old_jobs = daemon.hub, daemon.jobs
        old_jobs.stop()
        if daemon.scheduler is not None and daemon.scheduler.running:
            daemon.scheduler.shutdown(wait=False)
        drained = await old_jobs.drain(STOP_GRACE_SECONDS)
        metrics, jobs = build_work(hub, daemon.executor, daemon.clock)
        daemon.config, daemon.hub, daemon.metrics, daemon.jobs = config, hub, metrics, jobs
        if daemon.scheduler is not None:
            daemon.scheduler = build_scheduler(jobs)
            daemon.scheduler.start()
        if daemon.cluster is not None:
            # The worker's sweeps follow the new Jobs by themselves; a new connection's first
            # reads are deferred now, as at a start (and not at the next restart).
            await daemon.cluster.reloaded()
        if drained:
            for connector in old_hub.connectors.values():  # the store is shared: only the clients close
                connector.close()
        names = ", ".join(sorted(hub.connectors)) or "none"
        detail = f"connections: {names}"
        if restart:
            detail += f"; restart to apply: {', '.join(restart)}"
        return ReloadOutcome(True, detail, restart)


__all__ = ["RESTART_KEYS", "ReloadOutcome", "Reloader"]
