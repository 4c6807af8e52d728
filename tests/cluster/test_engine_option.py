"""``hub run --engine procrastinate`` refuses SQLite with one line (the queue needs PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sync.daemon import run_command
from tests.conftest import TEST_KEY


def test_the_queue_engine_on_sqlite_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path}/hub.db"\nencryption_key = "{TEST_KEY}"\n',
                      encoding="utf-8")
    result = CliRunner().invoke(run_command, ["--config", str(config), "--engine", "procrastinate"])
    assert result.exit_code == 2
    assert "--engine procrastinate needs PostgreSQL" in result.output
    assert "Traceback" not in result.output
