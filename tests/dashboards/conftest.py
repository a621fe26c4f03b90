"""Fixtures for the dashboards tests: the Debian promtool binary (a missing one fails the test)."""

from __future__ import annotations

import pytest

from tests.support.tools import require_binary


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool", package="prometheus")
