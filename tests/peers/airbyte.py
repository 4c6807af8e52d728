"""Running an Airbyte source (airbyte-source-stripe now; others later) in its own venv: check,
discover, a full-refresh read of every stream, and its messages parsed.

A source prints one JSON message a line (RECORD, STATE, LOG, TRACE, CATALOG, CONNECTION_STATUS).
It may end 0 with streams that failed: a stream's last STREAM_STATUS and the ERROR traces say
that, so the run keeps both.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.peers.venvs import PeerVenv

RUN_TIMEOUT_SECONDS = 300


class SourceFailed(AssertionError):
    pass


@dataclass
class AirbyteRun:
    messages: list[dict[str, Any]]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, str] = field(default_factory=dict)  # stream -> its last STREAM_STATUS
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message.get("type") == "RECORD":
                self.records[message["record"]["stream"]].append(message["record"]["data"])
            elif message.get("type") == "TRACE":
                trace = message["trace"]
                if trace.get("type") == "STREAM_STATUS":
                    status = trace["stream_status"]
                    self.status[status["stream_descriptor"]["name"]] = status["status"]
                elif trace.get("type") == "ERROR":
                    self.errors.append(str(trace["error"].get("message")))

    def by_id(self, stream: str) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r for r in self.records.get(stream, [])}

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]


@dataclass(frozen=True)
class AirbyteSource:
    venv: PeerVenv
    entry: Path  # the script the venv's python runs (the source's launcher, configured)
    env: Mapping[str, str]
    workdir: Path

    def _run(self, command: str, config: Mapping[str, Any],
             catalog: Mapping[str, Any] | None = None) -> AirbyteRun:
        config_path = self.workdir / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        args = [command, "--config", str(config_path)]
        if catalog is not None:
            catalog_path = self.workdir / "catalog.json"
            catalog_path.write_text(json.dumps(catalog), encoding="utf-8")
            args += ["--catalog", str(catalog_path)]
        done = subprocess.run([str(self.venv.python), str(self.entry), *args], capture_output=True,
                              text=True, env=dict(self.env), timeout=RUN_TIMEOUT_SECONDS, check=False)
        if done.returncode != 0:
            raise SourceFailed(f"{self.venv.peer.requirement} {command} exited {done.returncode}:\n"
                               f"{(done.stderr or done.stdout)[-6000:]}")
        return AirbyteRun([json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")])

    def check(self, config: Mapping[str, Any]) -> str:
        (status,) = self._run("check", config).of_type("CONNECTION_STATUS")
        return str(status["connectionStatus"]["status"])

    def discover(self, config: Mapping[str, Any]) -> dict[str, Any]:
        (catalog,) = self._run("discover", config).of_type("CATALOG")
        found: dict[str, Any] = catalog["catalog"]
        return found

    def read_all(self, config: Mapping[str, Any], catalog: Mapping[str, Any]) -> AirbyteRun:
        """A full-refresh read of every stream of ``catalog``."""
        configured = {"streams": [{"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
                                  for s in catalog["streams"]]}
        return self._run("read", config, configured)
