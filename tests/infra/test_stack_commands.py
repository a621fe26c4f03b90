"""`make up | preview | destroy` (scripts/stack.sh): prerequisites, local state backend, stack, passphrase.

The Pulumi CLI cannot be installed here, so the "missing" paths run for real and the happy paths run
against a stand-in `pulumi` that records its arguments and environment.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pulumi_mocks import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "stack.sh"
BASH = shutil.which("bash")
# Tools the script needs besides pulumi and docker.
TOOLS = ("bash", "env", "dirname", "cat", "mkdir", "make")

FAKE_PULUMI = """#!/usr/bin/env bash
python3 - "$@" <<'EOF' >> "$FAKE_LOG"
import json, os, sys
print(json.dumps({"args": sys.argv[1:], "backend": os.environ.get("PULUMI_BACKEND_URL"),
                  "passphrase": os.environ.get("PULUMI_CONFIG_PASSPHRASE")}))
EOF
if [ "$1 $2" = "stack output" ]; then
  for a in "$@"; do last=$a; done
  echo "value-of-$last"
fi
"""
FAKE_DOCKER = """#!/usr/bin/env bash
[ "$1" = info ] && exit "${FAKE_DOCKER_INFO_RC:-0}"
exit 0
"""


def _bin(tmp_path: Path, pulumi: bool, docker: bool) -> Path:
    """A PATH directory with the basic tools and, on request, stand-ins for pulumi and docker."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in TOOLS:
        (directory / tool).symlink_to(shutil.which(tool))
    (directory / "python3").symlink_to(os.path.realpath(sys.executable))
    for name, text, wanted in (("pulumi", FAKE_PULUMI, pulumi), ("docker", FAKE_DOCKER, docker)):
        if wanted:
            (directory / name).write_text(text)
            (directory / name).chmod(0o755)
    return directory


def _run(tmp_path, *args, pulumi=True, docker=True, env=None, command=None):
    path = _bin(tmp_path, pulumi, docker)
    log = tmp_path / "pulumi.log"
    environment = {"PATH": str(path), "HOME": str(tmp_path), "FAKE_LOG": str(log)}
    environment.update(env or {})
    result = subprocess.run(
        command or [BASH, str(SCRIPT), *args],
        cwd=tmp_path,  # the script finds the project itself
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def test_missing_pulumi_cli_explains_how_to_install_it(tmp_path):
    result, calls = _run(tmp_path, "up", pulumi=False)
    assert result.returncode == 1
    assert "the Pulumi CLI (`pulumi`) is not installed" in result.stderr
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
    assert "https://www.pulumi.com/docs/iac/download-install/" in result.stderr
    assert calls == []


def test_missing_docker_explains_how_to_install_it(tmp_path):
    result, calls = _run(tmp_path, "preview", docker=False)
    assert result.returncode == 1
    assert "Docker (`docker`) is not installed" in result.stderr
    assert "https://docs.docker.com/engine/install/" in result.stderr
    assert calls == []


def test_both_missing_are_reported_together(tmp_path):
    result, _ = _run(tmp_path, "destroy", pulumi=False, docker=False)
    assert result.returncode == 1
    assert "Pulumi CLI" in result.stderr
    assert "Docker (`docker`)" in result.stderr


def test_unreachable_docker_daemon_is_explained(tmp_path):
    result, calls = _run(tmp_path, "up", env={"FAKE_DOCKER_INFO_RC": "1"})
    assert result.returncode == 1
    assert "daemon is not reachable" in result.stderr
    assert calls == []


def test_up_uses_the_local_backend_selects_or_creates_dev_and_prints_where_to_go(tmp_path):
    backend = f"file://{tmp_path / 'state'}"
    result, calls = _run(tmp_path, "up", env={"PULUMI_BACKEND_URL": backend})
    assert result.returncode == 0, result.stderr
    assert calls[0]["args"] == ["stack", "select", "--create", "dev", "--non-interactive"]
    assert calls[1]["args"] == ["up", "--stack", "dev", "--yes"]
    assert {c["backend"] for c in calls} == {backend}
    assert (tmp_path / "state").is_dir()  # a file backend needs its directory
    # No passphrase given: the documented default, announced.
    assert {c["passphrase"] for c in calls} == {"model-monitoring-local"}
    assert "PULUMI_CONFIG_PASSPHRASE not set" in result.stderr
    assert "Dashboard:  value-of-dashboardUrl" in result.stdout
    assert "(user: value-of-grafanaAdminUser)" in result.stdout
    assert (
        f"PULUMI_BACKEND_URL={backend} PULUMI_CONFIG_PASSPHRASE=model-monitoring-local "
        "pulumi stack output --stack dev grafanaAdminPassword --show-secrets" in result.stdout
    )


def test_users_passphrase_stack_and_extra_arguments_are_respected(tmp_path):
    env = {
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "my own",
        "STACK": "staging",
    }
    result, calls = _run(tmp_path, "preview", "--refresh", env=env)
    assert result.returncode == 0, result.stderr
    assert [c["args"] for c in calls] == [
        ["stack", "select", "--create", "staging", "--non-interactive"],
        ["preview", "--stack", "staging", "--diff", "--refresh"],
    ]
    assert {c["passphrase"] for c in calls} == {"my own"}
    assert "PULUMI_CONFIG_PASSPHRASE not set" not in result.stderr


def test_destroy(tmp_path):
    result, calls = _run(tmp_path, "destroy", env={"PULUMI_BACKEND_URL": f"file://{tmp_path / 's'}"})
    assert result.returncode == 0, result.stderr
    assert calls[-1]["args"] == ["destroy", "--stack", "dev", "--yes"]


def test_unknown_action_shows_usage(tmp_path):
    result, _ = _run(tmp_path, "deploy")
    assert result.returncode == 2
    assert "usage:" in result.stderr


@pytest.mark.parametrize("target", ["up", "preview", "destroy"])
def test_make_targets_keep_state_inside_the_project(tmp_path, target):
    # -o: treat the venv stamp as up to date, so only the target's own recipe runs.
    make = [shutil.which("make"), "-s", "-C", str(PROJECT_ROOT), "-o", ".venv/.installed", target]
    env = {"PULUMI_CONFIG_PASSPHRASE": "x"}
    result, calls = _run(tmp_path, command=make, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls
    assert {c["backend"] for c in calls} == {f"file://{PROJECT_ROOT}/.pulumi"}
    assert calls[0]["args"][:4] == ["stack", "select", "--create", "dev"]
    assert calls[1]["args"][0] == target


def test_pulumi_state_directory_is_ignored_by_git():
    ignored = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "check-ignore", "-q", ".pulumi/stacks/x.json"],
        env={**os.environ},
        timeout=30,
    )
    assert ignored.returncode == 0
