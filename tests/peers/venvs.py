"""Peer programs (other people's Stripe, QuickBooks, Xero and Salesforce clients) in venvs of their own.

A peer is installed from PyPI, at a pinned version, into its own virtualenv in a cache folder
(``$XDG_CACHE_HOME/billhub-peers/<name>-<version>``, else ``~/.cache/billhub-peers/...``) and the
venv is reused while it is whole: billhub's own environment never sees the peer's pins (tap-stripe
wants ``stripe==5.5.0``, billhub the current SDK). A venv counts as whole once its marker file is
written, which happens only after pip succeeded, so an install broken off half way is redone.

Adding a peer is one ``Peer(...)`` line in ``PEERS``; a test asks for it by name through the
``peers`` fixture (``peers("tap-stripe")``), which installs each peer once a session. Under ``CI=true`` a peer that cannot be
installed is a failure (CI must run what it claims to); elsewhere the test is skipped with pip's
reason, so a developer without PyPI still runs the rest of the suite.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_TIMEOUT_SECONDS = 600
MARKER = ".billhub-peer-installed"


@dataclass(frozen=True)
class Peer:
    name: str  # the PyPI distribution
    version: str
    extra: tuple[str, ...] = ()  # further requirements pip installs with it

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def installed(self) -> str:
        """What the venv's marker records: the peer and its extras (a changed extra reinstalls)."""
        return " ".join((self.requirement, *self.extra))


PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("tap-stripe", "3.3.0"),  # Stitch's Singer tap: stripe 5.5.0, API 2022-11-15
    Peer("airbyte-source-stripe", "5.14.1"),  # Airbyte's declarative source: API 2022-11-15
    Peer("tap-quickbooks", "2.5.0"),  # Stitch's Singer tap (singer-io): QBO REST, minor version 75
    Peer("tap-salesforce", "2.8.1"),  # Stitch's Singer tap: REST API v61.0, requests, singer-python 6
    # Stitch's Singer tap: requests 2.33.0, singer-python 5.18.0; it imports six without requiring it
    Peer("tap-xero", "2.6.0", ("six==1.17.0",)),
    Peer("pyxero", "0.9.5"),  # the Python Xero client: OAuth2 credentials, JSON reads, XML writes
)}


@dataclass(frozen=True)
class PeerVenv:
    peer: Peer
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "billhub-peers"


def _install(peer: Peer, path: Path) -> str | None:
    """Create the venv and pip-install the peer into it: None, or why it failed."""
    if path.exists():
        shutil.rmtree(path)  # a half-made venv from an interrupted run
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(path)],
             [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              peer.requirement, *peer.extra]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS,
                                  check=False)
        except subprocess.TimeoutExpired:
            return f"{' '.join(step[:4])}: no answer in {INSTALL_TIMEOUT_SECONDS} s"
        if done.returncode != 0:
            return f"{' '.join(step[:4])} exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}"
    (path / MARKER).write_text(peer.installed + "\n", encoding="utf-8")
    return None


def _path(peer: Peer) -> Path:
    return cache_root() / f"{peer.name}-{peer.version}"


def _whole(peer: Peer, path: Path) -> bool:
    marker = path / MARKER
    return (marker.exists() and marker.read_text(encoding="utf-8").strip() == peer.installed
            and (path / "bin" / "python").exists())


def ensure(peer: Peer) -> str | None:
    """Install the peer unless its venv is whole: None, or why it could not be installed. An
    exclusive lock per peer: the suite's parallel workers (pytest-xdist) and ``install_all`` may
    ask for one peer at once, and only one of them installs it; the others find it whole."""
    path = _path(peer)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return None if _whole(peer, path) else _install(peer, path)


@functools.cache
def peer_venv(name: str) -> PeerVenv:
    """The peer's venv, installed on first use; fails (CI) or skips (elsewhere) if it cannot be."""
    peer = PEERS[name]
    problem = ensure(peer)
    if problem is not None:
        reason = f"peer {peer.requirement} could not be installed: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return PeerVenv(peer, _path(peer))


def install_all() -> int:
    """Install every peer side by side (``python -m tests.peers.venvs``): .ci/run starts this in
    the background while it lints, so the test run finds the venvs made instead of installing
    them one after another inside the suite. Prints each outcome; exits 1 if any failed (the test
    that needs it then reports why)."""
    with ThreadPoolExecutor(max_workers=len(PEERS)) as pool:
        outcomes = dict(zip(PEERS, pool.map(ensure, PEERS.values()), strict=True))
    for name, problem in outcomes.items():
        print(f"peer {PEERS[name].requirement}: {'ready' if problem is None else problem}", flush=True)
    return 1 if any(outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(install_all())
