"""Running a Singer tap (tap-stripe now; tap-quickbooks, tap-xero, tap-salesforce later) in its
own venv: discovery, stream selection, a sync, and its messages parsed.

A tap prints one JSON message a line on stdout (SCHEMA, RECORD, STATE) and logs on stderr; a
non-zero exit is a failed run, reported with the end of its log.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.peers.venvs import PeerVenv

RUN_TIMEOUT_SECONDS = 300


class TapFailed(AssertionError):
    pass


@dataclass
class SingerRun:
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)
    log: str = ""

    def created(self, stream: str) -> list[dict[str, Any]]:
        """The records a stream read from its list endpoint, not from the event feed (which
        tap-stripe marks ``updated_by_event_type``)."""
        return [r for r in self.records.get(stream, []) if "updated_by_event_type" not in r]

    def by_id(self, stream: str, *key: str) -> dict[Any, dict[str, Any]]:
        """Each object's first record (a stream's list pass comes before its event updates, and
        a sub-stream's records from updated parents carry no mark), keyed by ``id`` or ``key``."""
        out: dict[Any, dict[str, Any]] = {}
        for record in self.created(stream):
            out.setdefault(tuple(record[k] for k in key) if key else str(record["id"]), record)
        return out

@dataclass(frozen=True)
class SingerTap:
    venv: PeerVenv
    entry: Path  # the script the venv's python runs (the tap's main, configured)
    env: Mapping[str, str]
    workdir: Path
    catalog_flag: str = "--catalog"  # tap-salesforce reads its catalog from --properties (older Singer)

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.venv.python), str(self.entry), *args], capture_output=True,
                              text=True, env=dict(self.env), timeout=RUN_TIMEOUT_SECONDS, check=False)
        if done.returncode != 0:
            raise TapFailed(f"{self.venv.peer.requirement} {' '.join(args)} exited {done.returncode}:\n"
                            f"{done.stderr[-6000:]}")
        return done

    def _write(self, name: str, body: Mapping[str, Any]) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(body), encoding="utf-8")
        return path

    def discover(self, config: Mapping[str, Any]) -> dict[str, Any]:
        done = self._run(["--config", str(self._write("config.json", config)), "--discover"])
        catalog: dict[str, Any] = json.loads(done.stdout)
        return catalog

    def sync(self, config: Mapping[str, Any], catalog: Mapping[str, Any],
             state: Mapping[str, Any] | None = None) -> SingerRun:
        """A sync; from ``state`` (a STATE message's value, the tap's bookmarks) when given."""
        resume = [] if state is None else ["--state", str(self._write("state.json", state))]
        done = self._run(["--config", str(self._write("config.json", config)),
                          self.catalog_flag, str(self._write("catalog.json", catalog)), *resume])
        run = SingerRun(log=done.stderr)
        for line in done.stdout.splitlines():
            if not line.startswith("{"):
                continue  # a tap may print something else; Singer messages are JSON objects
            message = json.loads(line)
            if message.get("type") == "RECORD":
                run.records[message["stream"]].append(message["record"])
            elif message.get("type") == "SCHEMA":
                run.schemas[message["stream"]] = message["schema"]
            elif message.get("type") == "STATE":
                run.states.append(message["value"])
        return run


def select(catalog: Mapping[str, Any], streams: Iterable[str]) -> dict[str, Any]:
    """The catalog with exactly ``streams`` selected (every field of each, Singer's default)."""
    wanted = set(streams)
    known = {s["tap_stream_id"] for s in catalog["streams"]}
    assert wanted <= known, f"the tap has no streams {sorted(wanted - known)}"
    out = json.loads(json.dumps(catalog))
    for stream in out["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in wanted
    return dict(out)
