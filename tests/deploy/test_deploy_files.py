"""The deploy files (issue 21, item 6) say what the code accepts: the container image, the compose
file, the systemd unit and the Helm chart run real `hub` commands with real options, probe the
real health endpoints, and the config they ship loads with the real config loader. The image's
build context is built into a wheel here and checked for the files the daemon needs at run time;
the chart is rendered with Go's text/template (what Helm uses) and parsed as Kubernetes would."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from sync.config import ConfigError, load_config
from sync.daemon import run_command

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "billhub"
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?-][^}]*)?\}")


def _hub_run_accepts(args: list[str]) -> None:
    """``args`` (after the ``hub`` entry point) are a ``hub run`` the real CLI parses."""
    assert args[0] == "run", args
    run_command.make_context("run", list(args[1:]))  # raises click.UsageError on a wrong option


def _env_example() -> dict[str, str]:
    names = [line.split("=", 1)[0] for line in (DEPLOY / "env.example").read_text().splitlines()
             if line and not line.startswith("#")]
    return {name: f"value-of-{name.lower()}" for name in names}


def test_the_shipped_config_loads_and_names_each_missing_variable() -> None:
    env = {**_env_example(), "HUB_DATABASE_URL": "postgresql+psycopg://billhub:pw@postgres:5432/billhub"}
    config = load_config(DEPLOY / "hub.toml", env=env)
    assert config.state_url.startswith("postgresql+psycopg://")
    assert sorted(config.connections) == ["quickbooks", "stripe", "xero"]
    assert config.server["host"] == "0.0.0.0" and config.server["port"] == 8080
    settings = "\n".join(line.split("#", 1)[0] for line in (DEPLOY / "hub.toml").read_text().splitlines())
    referenced = set(_VAR.findall(settings))
    assert referenced - {"HUB_DATABASE_URL"} <= set(_env_example()), "env.example must list every variable"
    without_key = {k: v for k, v in env.items() if k != "STRIPE_API_KEY"}
    with pytest.raises(ConfigError, match="set STRIPE_API_KEY"):
        load_config(DEPLOY / "hub.toml", env=without_key)


def test_compose_runs_postgres_a_web_process_and_n_workers() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "hub-web", "hub-worker"}
    web, worker = services["hub-web"], services["hub-worker"]
    for service in (web, worker):
        _hub_run_accepts(service["command"])
        assert service["environment"]["HUB_DATABASE_URL"].startswith("postgresql+psycopg://billhub:")
        # several processes share the work through the job queue (README: Running several workers)
        run_command.make_context("run", [*service["command"][1:], "--engine", service["environment"]["HUB_ENGINE"]])
        assert service["environment"]["HUB_ENGINE"] == "procrastinate"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        grace = float(service["stop_grace_period"].rstrip("s"))
        assert grace > float(tomllib.loads((DEPLOY / "hub.toml").read_text())["server"]["shutdown_seconds"])
    assert worker["deploy"]["replicas"] == "${HUB_WORKERS:-2}" and "ports" not in worker
    assert web["ports"] == ["${HUB_PORT:-8080}:8080"]
    assert web["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["depends_on"]["hub-web"]["condition"] == "service_healthy"  # one process migrates first
    assert web["build"]["dockerfile"] == "deploy/Dockerfile"


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_runs_hub_run_unprivileged_and_probes_readiness() -> None:
    steps = _dockerfile()
    last = {instruction: value for instruction, value in steps}
    assert json.loads(last["ENTRYPOINT"]) == ["hub"]
    _hub_run_accepts(json.loads(last["CMD"]))
    assert last["USER"] == "billhub" and "/readyz" in last["HEALTHCHECK"]
    copied = {shlex.split(value)[0] for instruction, value in steps if instruction == "COPY" and "--from" not in value}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:  # a new top-level package must reach the image too
        assert package.rstrip("*") in copied, f"deploy/Dockerfile does not COPY {package}"


def test_the_images_build_context_makes_a_wheel_with_everything_the_daemon_reads(tmp_path: Path) -> None:
    """What the Dockerfile's build stage copies, built the way it builds (``pip wheel .``)."""
    context = tmp_path / "src"
    context.mkdir()
    for instruction, value in _dockerfile():
        if instruction != "COPY" or "--from" in value:
            continue
        *sources, _target = shlex.split(value)
        for source in sources:
            if source.startswith("deploy/"):
                continue  # the runtime stage's own files, not the package
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, context / source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--wheel-dir", str(tmp_path / "wheels"), str(context)], check=True, timeout=300)
    (wheel,) = (tmp_path / "wheels").glob("billhub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("hub.py", "sync/templates/report.html", "sync/web/templates/console/base.html",
                   "sync/web/static/console.js", "state/migrations/script.py.mako",
                   "connectors/stripe/emulator/params.json"):
        assert needed in names, f"the image would lack {needed}"
    migrations = [n for n in names if n.startswith("state/migrations/versions/") and n.endswith(".py")]
    assert len(migrations) == len(list((ROOT / "state/migrations/versions").glob("*.py")))


def test_the_systemd_unit_verifies_and_reloads_with_sighup(tmp_path: Path) -> None:
    unit = (DEPLOY / "billhub.service").read_text()
    service = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert service["ExecStart"].split()[1:] == ["run"]
    _hub_run_accepts(service["ExecStart"].split()[1:])
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID" and service["KillSignal"] == "SIGTERM"
    assert service["Environment"].startswith("HUB_CONFIG=/etc/billhub/hub.toml")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is needed to verify deploy/billhub.service")
        pytest.skip("systemd-analyze not installed")
    # The unit as installed on this machine: the hub of this virtualenv, an existing user.
    hub = Path(sys.executable).with_name("hub")
    local = (unit.replace("/opt/billhub/bin/hub", str(hub)).replace("User=billhub", "User=root")
             .replace("Group=billhub", "Group=root").replace("EnvironmentFile=", "EnvironmentFile=-"))
    (tmp_path / "billhub.service").write_text(local)
    result = subprocess.run([analyze, "verify", str(tmp_path / "billhub.service")], capture_output=True,
                            text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "billhub.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def _render_chart(values: dict[str, Any]) -> list[dict[str, Any]]:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI") == "true":
            pytest.fail("go is needed to render the Helm chart (.ci/run installs golang-go)")
        pytest.skip("go not installed")
    context = {"Values": values, "Release": {"Name": "hub", "Namespace": "billing"},
               "Chart": yaml.safe_load((CHART / "Chart.yaml").read_text())}
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "billhub-go"
    result = subprocess.run([go, "run", str(Path(__file__).with_name("render_chart.go")), str(CHART / "templates")],
                            input=json.dumps(context), capture_output=True, text=True, timeout=300,
                            env={**os.environ, "GOCACHE": str(cache / "build"), "GOPATH": str(cache / "path"),
                                 "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"})
    if result.returncode != 0:
        raise click.ClickException(result.stderr.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_helm_chart_renders_a_web_deployment_workers_a_service_and_the_config() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["apiVersion"] == "v2"
    config = (DEPLOY / "hub.toml").read_text()
    docs = _render_chart({**values, "config": config, "workers": {"replicas": 5}})
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert set(by_name) == {("ConfigMap", "hub-config"), ("Deployment", "hub-web"), ("Deployment", "hub-worker"),
                            ("Service", "hub")}
    assert by_name[("ConfigMap", "hub-config")]["data"]["hub.toml"] == config
    web, worker = by_name[("Deployment", "hub-web")], by_name[("Deployment", "hub-worker")]
    assert web["spec"]["replicas"] == 1 and worker["spec"]["replicas"] == 5
    for deployment in (web, worker):
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        _hub_run_accepts(container["args"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["envFrom"] == [{"secretRef": {"name": "billhub-secrets"}}]
        assert {"name": "HUB_ENGINE", "value": "procrastinate"} in container["env"]
        assert pod["spec"]["terminationGracePeriodSeconds"] > 10  # > [server] shutdown_seconds
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert by_name[("Service", "hub")]["spec"]["selector"]["app.kubernetes.io/component"] == "web"
    # a changed config rolls the pods
    changed = _render_chart({**values, "config": config + "\n# edited\n"})
    new_web = next(d for d in changed if d["metadata"]["name"] == "hub-web")
    assert (new_web["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            != web["spec"]["template"]["metadata"]["annotations"]["checksum/config"])


def test_the_helm_chart_refuses_to_render_without_a_config() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    with pytest.raises(click.ClickException, match="--set-file config=deploy/hub.toml"):
        _render_chart(values)
