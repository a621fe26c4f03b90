"""Fixtures for the dashboards tests: the Debian prometheus/promtool binaries, installed on demand."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def debian_binary(command: str) -> str:
    """Path of `command` from the Debian prometheus package; installs it (as `make system-deps` does) when
    missing and we are root, else fails with the install command."""
    if shutil.which(command) is None:
        subprocess.run([str(REPO / "scripts" / "ensure-apt.sh"), f"{command}:prometheus"], check=False)
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{command} is missing and could not be installed: apt-get install prometheus")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return debian_binary("prometheus")
