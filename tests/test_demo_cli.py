"""``hub demo``'s own folder and port (issue 21, item 5): the demo's files go to a folder of its
own, and a busy console port is one clear error before any work."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from sync.demo_run import fresh_folder, port_problem

ROOT = Path(__file__).resolve().parents[1]


def test_a_busy_port_is_a_clear_error_before_any_work(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_problem(port) is not None
        done = subprocess.run([sys.executable, str(ROOT / "hub.py"), "demo", "--serve", "--port", str(port)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"port {port} on 127.0.0.1 is not free" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
    assert port_problem(port) is None  # once it is free again


def test_the_demo_gets_a_folder_of_its_own(tmp_path: Path) -> None:
    first = fresh_folder(tmp_path)
    assert first == tmp_path / "billhub-demo"
    first.mkdir()
    assert fresh_folder(tmp_path) == tmp_path / "billhub-demo-2"
