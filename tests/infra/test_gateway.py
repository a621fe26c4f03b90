"""The gateway's generated HAProxy config, run by the real Debian `haproxy` in front of real servers on
127.0.0.1: checked without warnings, health checks take a draining replica out and bring a new one back,
and traffic through it never fails while that happens."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from infra.gateway import haproxy_config, replica_addresses
from server import contract
from tests.support.net import free_port, scrape, wait_for
from tests.support.server import running_server
from tests.support.tools import require_binary

from ..server.conftest import VALID

pytestmark = pytest.mark.live


def _check(config: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    haproxy = require_binary("haproxy", package="haproxy")
    return subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)


def test_the_docker_config_is_valid_without_warnings(tmp_path):
    done = _check(haproxy_config(replica_addresses(["model-server-0", "model-server-1"])), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr


@contextmanager
def running_haproxy(config: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    haproxy = require_binary("haproxy", package="haproxy")
    with (tmp_path / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [haproxy, "-W", "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _active_servers(metrics_port: int) -> float:
    key = ("haproxy_backend_active_servers", (("proxy", contract.GATEWAY_BACKEND),))
    return scrape(f"http://127.0.0.1:{metrics_port}")[key]


class Traffic:
    """Predictions through the gateway, one after the other, until stopped; every status counted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[int | str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    self.statuses[
                        client.post(f"{self.url}{contract.PREDICT_HANDLER}", json=VALID).status_code
                    ] += 1
                except httpx.HTTPError as error:
                    self.statuses[type(error).__name__] += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_a_draining_replica_leaves_and_its_replacement_joins_without_a_failed_request(tmp_path):
    front, metrics = free_port(), free_port()
    ports = [free_port(), free_port()]
    replicas = {f"model-server-{i}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}
    config = haproxy_config(replicas, resolver=None, port=front).replace(
        f"bind :{contract.GATEWAY_METRICS_PORT}", f"bind 127.0.0.1:{metrics}"
    )
    config = config.replace(f"bind :{front}", f"bind 127.0.0.1:{front}")
    drain = {"MODEL_SHUTDOWN_DRAIN_SECONDS": "3"}
    for name in ("0", "1", "0b"):
        (tmp_path / name).mkdir()
    with (
        running_server(tmp_path / "0", env=drain, port=ports[0]) as first,
        running_server(tmp_path / "1", env=drain, port=ports[1]),
        running_haproxy(config, tmp_path),
    ):
        # Two slots per replica, both on the one address here: four servers up.
        wait_for(lambda: _active_servers(metrics) == 4, 15, interval=0.2, what="every slot up")
        assert (
            httpx.get(f"http://127.0.0.1:{metrics}{contract.GATEWAY_HEALTH_PATH}", timeout=5).status_code
            == 200
        )
        with Traffic(f"http://127.0.0.1:{front}") as traffic:
            wait_for(lambda: traffic.statuses[200] >= 20, 15, interval=0.1, what="traffic")
            first.process.terminate()  # SIGTERM: replica 0 drains, then exits
            wait_for(
                lambda: _active_servers(metrics) == 2, 10, interval=0.2, what="replica 0 out of the pool"
            )
            first.process.wait(timeout=30)
            during = traffic.statuses[200]
            wait_for(
                lambda: traffic.statuses[200] >= during + 20, 15, interval=0.1, what="traffic on replica 1"
            )
            # Its replacement on the same address comes back into the pool by itself.
            with running_server(tmp_path / "0b", env=drain, port=ports[0]):
                wait_for(lambda: _active_servers(metrics) == 4, 15, interval=0.2, what="replica 0 back")
                back = traffic.statuses[200]
                wait_for(lambda: traffic.statuses[200] >= back + 20, 15, interval=0.1, what="traffic")
        assert set(traffic.statuses) == {200}, traffic.statuses
