"""Command-line tools the tests run (promtool, prometheus): found on PATH, or a loud failure.

Never a skip: CI installs them with `make system-deps`, and a skipped test would hide a broken setup.
"""

from __future__ import annotations

import shutil

import pytest


def require_binary(command: str, *, package: str) -> str:
    """The path of `command`; fails the calling test, naming the Debian `package`, when it is missing."""
    path = shutil.which(command)
    if path is None:
        pytest.fail(
            f"{command} not found on PATH: install the Debian package {package} "
            f"(`make system-deps`, or `apt-get install {package}`)",
            pytrace=False,
        )
    return path
