"""``hub run`` refuses a guessable admin token before it opens anything: exit 2 and one line
saying how to make a strong one. No token (API and console off) and the demo's token still serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.daemon import run_command
from sync.web.guards import MIN_ADMIN_TOKEN, weak_token_problem
from tests.conftest import TEST_KEY


@pytest.mark.parametrize("token", ["a", "short-secret-15"])
def test_a_short_admin_token_is_refused_at_start(tmp_path: Path, token: str) -> None:
    db = tmp_path / "hub.db"
    config = tmp_path / "hub.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{db}"\nencryption_key = "{TEST_KEY}"\n'
                      f'[admin]\ntoken = "{token}"\n', encoding="utf-8")
    result = CliRunner().invoke(run_command, ["--config", str(config)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # the terminal may wrap the line
    assert f"[admin] token is {len(token)} characters; at least {MIN_ADMIN_TOKEN}" in message
    assert "secrets.token_urlsafe(32)" in message
    assert len(token) == 1 or token not in message  # the secret itself is never echoed
    assert not db.exists()  # refused before the database was opened


def test_the_demo_token_and_no_token_pass() -> None:
    from sync import demo_run

    assert '"demo-admin-token"' in Path(demo_run.__file__).read_text(encoding="utf-8")
    assert weak_token_problem("demo-admin-token") is None
    assert weak_token_problem(None) is None
    assert weak_token_problem("x" * MIN_ADMIN_TOKEN) is None
