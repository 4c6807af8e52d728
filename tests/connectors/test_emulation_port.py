"""An emulator holds its port from the moment it is made (found by the suite: with the port only
chosen, a parallel test worker took it before the emulator served on it — 'address already in
use' — and the never-started emulator leaked its event loop into a later test's warnings)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
import requests

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.xero.emulator import XeroEmulator


def test_the_port_is_held_between_choosing_it_and_serving_on_it() -> None:
    running = RunningEmulator(XeroEmulator(EmulatorClock(datetime(2026, 12, 4, tzinfo=UTC))))
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", running.port))  # what another process would try
    running.start()
    try:
        assert requests.get(f"{running.base_url}/__emulator/stats", timeout=5).status_code == 200
    finally:
        running.stop()


def test_an_emulator_that_cannot_start_says_why_and_closes_its_loop() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        running = RunningEmulator(XeroEmulator(EmulatorClock(datetime(2026, 12, 4, tzinfo=UTC))),
                                  port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="xero emulator failed to start"):
            running.start()
        assert running.loop.is_closed()
