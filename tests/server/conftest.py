"""Fixtures for the server tests: an app with its own registry, and a real `python -m server`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
VALID = {"features": [0.5, 0.3, 0.7]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def value(client: TestClient, name: str, **labels: str) -> float:
    """A sample from the app's own registry (0 when the series does not exist yet)."""
    return client.app.state.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:  # `with`: runs the lifespan start-up
        yield c


@pytest.fixture
def chaos_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(chaos_enabled=True))) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    multiproc_dir: Path


@contextmanager
def live_server(tmp_path: Path, workers: int, multiproc: bool = True) -> Iterator[LiveServer]:
    """`python -m server` on a free 127.0.0.1 port, ready before yielding, always stopped after."""
    port = free_port()
    multiproc_dir = tmp_path / "metrics"
    full_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc:
        full_env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--workers", str(workers)],
        cwd=REPO,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                # Each worker answers /ready only after its lifespan start-up.
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready in 30 s"
            time.sleep(0.1)
        yield LiveServer(url, process, multiproc_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=5)
        log.close()
