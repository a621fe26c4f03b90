"""Fixtures for the server tests: an in-process app (a real server: tests/support/server.py).

The metrics are per process, so tests compare values before and after, never absolute counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.contract import CHAOS_TOKEN_HEADER
from server.settings import ServerSettings
from tests.support.server import CHAOS_TOKEN

VALID = {"features": [0.5, 0.3, 0.7]}


def value(client: TestClient, name: str, **labels: str) -> float:
    """A sample from the app's own registry (0 when the series does not exist yet)."""
    return client.app.state.server.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings())) as c:  # `with`: runs the lifespan start-up
        yield c


@pytest.fixture
def chaos_client() -> Iterator[TestClient]:
    """Chaos on; every request carries the right token (tests that send another token say so)."""
    app = create_app(ServerSettings(chaos_enabled=True, chaos_token=CHAOS_TOKEN))
    with TestClient(app, headers={CHAOS_TOKEN_HEADER: CHAOS_TOKEN}) as c:
        yield c
