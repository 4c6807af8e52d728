"""``hub emulate`` (issue 21, item 5): one JSON document on stdout, the config snippet on request."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_output(args: list[str], workdir: Path) -> str:
    """What ``hub emulate`` prints before it waits (it runs until stopped)."""
    with subprocess.Popen([sys.executable, str(ROOT / "hub.py"), "emulate", "--dir", str(workdir), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.rstrip() in ("}", "line_rounding_tolerance_minor = 1"):
                break
        proc.terminate()
        proc.communicate(timeout=30)  # reads what is left and closes the pipe
    return "".join(lines)


def test_emulate_prints_one_json_document_and_the_toml_only_when_asked(tmp_path: Path) -> None:
    printed = _first_output([], tmp_path / "json")
    urls = json.loads(printed)  # nothing after the document
    assert set(urls) >= {"stripe", "quickbooks", "xero", "salesforce", "config"}
    assert all(urls[s].startswith(("http://127.0.0.1:", "https://127.0.0.1:")) for s in ("stripe", "xero"))
    assert tomllib.loads(Path(urls["config"]).read_text())["connections"]["stripe"]["api_base"] == urls["stripe"]
    snippet = tomllib.loads(_first_output(["--toml"], tmp_path / "toml"))
    assert snippet["connections"]["quickbooks"]["api_base"].startswith("http://127.0.0.1:")
