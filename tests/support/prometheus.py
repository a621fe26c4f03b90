"""Test helpers around a real Prometheus: run the Debian binary, query its HTTP API, and turn Grafana
panel expressions into plain PromQL.

Shared by tests/dashboards, tests/server and tests/infra (local `prometheus` process) and tests/e2e
(Prometheus in a container: only `query`, `dashboard_exprs` and `grafana_expr_to_promql` are needed there).
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from dashboards import queries
from infra.prometheus import RULES_DIR, scrape_config
from tests.support.net import ProbeError, free_port, wait_for
from tests.support.tools import require_binary

HTTP_TIMEOUT = 10.0


# --- HTTP API ----------------------------------------------------------------------------------------


class PrometheusQueryError(ProbeError):
    """Prometheus answered a query with an error (bad PromQL, execution error); `wait_for` retries it."""


def _api(
    base_url: str, path: str, params: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None
) -> dict:
    response = httpx.get(f"{base_url.rstrip('/')}{path}", params=params, timeout=HTTP_TIMEOUT, auth=auth)
    body = response.json()
    if body.get("status") != "success":
        detail = f"{body.get('errorType')}: {body.get('error')}"
        raise PrometheusQueryError(f"{path} {dict(params or {})}: {detail}")
    return body["data"]


def query(
    base_url: str, expr: str, at: float | None = None, auth: tuple[str, str] | None = None
) -> list[dict]:
    """Instant query; returns the result vector (`[{"metric": {...}, "value": [ts, "v"]}, ...]`).

    Scalars come back as a one-element vector without labels. Raises PrometheusQueryError on any error.
    `auth`: basic-auth (user, password) for a Prometheus behind a web config.
    """
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    data = _api(base_url, "/api/v1/query", params, auth)
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    if data["resultType"] != "vector":
        raise PrometheusQueryError(f"{expr!r}: expected an instant vector, got {data['resultType']}")
    return data["result"]


def values(result: Sequence[dict]) -> list[float]:
    """The sample values of a query result, as floats (NaN included)."""
    return [float(sample["value"][1]) for sample in result]


def finite_values(result: Sequence[dict]) -> list[float]:
    return [v for v in values(result) if math.isfinite(v)]


def rule_groups(base_url: str) -> list[dict]:
    """`/api/v1/rules` groups (each with its rules, their health and lastError)."""
    return _api(base_url, "/api/v1/rules")["groups"]


def active_alerts(base_url: str) -> list[dict]:
    """`/api/v1/alerts`: pending and firing alerts."""
    return _api(base_url, "/api/v1/alerts")["alerts"]


def targets(base_url: str) -> list[dict]:
    return _api(base_url, "/api/v1/targets")["activeTargets"]


# --- Grafana expressions -----------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    return f"{round(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


# The main dashboard's template variables, with "All" selected.
ALL_SELECTED = {queries.INSTANCE_VARIABLE: queries.ALL_VALUE, queries.VERSION_VARIABLE: queries.ALL_VALUE}
# What Grafana's Prometheus data source backslash-escapes in a multi-value variable's values.
_REGEX_SPECIAL = re.compile(r"([\\$^*+?.()|{}\[\]'])")


def grafana_selection(*values: str) -> str:
    """A multi-value variable's selection as Grafana's Prometheus data source writes it into a query: each
    value regex-escaped (for the PromQL string: a doubled backslash), several joined as `(a|b)`."""
    escaped = [_REGEX_SPECIAL.sub(r"\\\\\1", value) for value in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def grafana_expr_to_promql(
    expr: str,
    scrape_interval_s: float,
    range_s: float = 3600,
    variables: Mapping[str, str] = ALL_SELECTED,
) -> str:
    """Substitute the Grafana variables a panel query may use, as Grafana would for a dashboard whose
    step is the scrape interval: `$__interval` = scrape interval, `$__rate_interval` = max(interval +
    scrape interval, 4 * scrape interval), `$__range` = `range_s`, and the dashboard's own `variables`
    (name -> substituted text, e.g. `grafana_selection(...)`; default: "All" selected). Unknown variables
    raise ValueError."""
    rate_interval = max(2 * scrape_interval_s, 4 * scrape_interval_s)
    substitutions = {
        **variables,
        "__rate_interval": _duration(rate_interval),
        "__interval_ms": str(round(scrape_interval_s * 1000)),
        "__interval": _duration(scrape_interval_s),
        "__range_ms": str(round(range_s * 1000)),
        "__range_s": str(round(range_s)),
        "__range": _duration(range_s),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in substitutions:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return substitutions[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def dashboard_exprs(dashboard: Mapping) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, rows' nested panels included, in order."""
    out: list[tuple[str, str]] = []

    def visit(panels: Sequence[Mapping]) -> None:
        for panel in panels:
            out.extend((panel.get("title", ""), t["expr"]) for t in panel.get("targets") or [] if "expr" in t)
            visit(panel.get("panels") or [])

    visit(dashboard.get("panels") or [])
    return out


# --- running Prometheus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningPrometheus:
    base_url: str
    directory: Path
    log_path: Path

    def query(self, expr: str) -> list[dict]:
        return query(self.base_url, expr)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_prometheus(
    rule_files: Mapping[str, str],
    scrape_targets: Sequence[str],
    scrape_interval: str = "1s",
    startup_timeout: float = 60.0,
    binary: str = "prometheus",
) -> Iterator[RunningPrometheus]:
    """Run the `prometheus` binary on a free 127.0.0.1 port with the scrape config the stack generates
    (infra.prometheus.scrape_config: `scrape_targets` "host:port" as the model-server job) and `rule_files`
    (name -> YAML) beside it; yields once /-/ready answers; always stops it."""
    with tempfile.TemporaryDirectory(prefix="prometheus-test-") as tmp:
        directory = Path(tmp)
        rules_dir = directory / RULES_DIR
        rules_dir.mkdir()
        for name, text in rule_files.items():
            (rules_dir / name).write_text(text)
        config_path = directory / "prometheus.yml"
        config_path.write_text(scrape_config(scrape_targets, scrape_interval, list(rule_files)))
        with prometheus_with_config(config_path, startup_timeout=startup_timeout, binary=binary) as running:
            yield running


@contextmanager
def prometheus_with_config(
    config_path: Path,
    *,
    startup_timeout: float = 60.0,
    binary: str = "prometheus",
    extra_args: Sequence[str] = (),
    auth: tuple[str, str] | None = None,
) -> Iterator[RunningPrometheus]:
    """Run the `prometheus` binary on a free 127.0.0.1 port with a ready-made config file (its relative
    `rule_files` paths resolve next to it), TSDB and log in the file's directory; yields once /-/ready
    answers; always stops it. A missing binary fails the test, naming the Debian package.
    `extra_args`: more flags (e.g. --web.enable-remote-write-receiver); `auth`: the basic-auth login its
    --web.config.file demands, used for the readiness probe."""
    executable = require_binary(binary, package="prometheus")
    directory = config_path.parent
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                executable,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = RunningPrometheus(f"http://127.0.0.1:{port}", directory, log_path)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {process.returncode}:\n{running.log()}")
            return httpx.get(f"{running.base_url}/-/ready", timeout=2, auth=auth).status_code == 200

        wait_for(ready, startup_timeout, what=f"prometheus on port {port}")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
