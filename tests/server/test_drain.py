"""SIGTERM with a drain (MODEL_SHUTDOWN_DRAIN_SECONDS): the real server turns unready at once, keeps
answering for the drain, then exits; without a drain it exits at once (what a load balancer relies on)."""

import signal
import time

import httpx
import pytest

from server import contract
from tests.support.net import wait_for
from tests.support.server import running_server

from .conftest import VALID

pytestmark = pytest.mark.live
DRAIN_SECONDS = 3


def _answers(url: str) -> tuple[int, int]:
    # A fresh connection each time, so both workers are asked over the loop.
    with httpx.Client(timeout=5) as client:
        ready = client.get(f"{url}{contract.READY_PATH}").status_code
        predict = client.post(f"{url}{contract.PREDICT_HANDLER}", json=VALID).status_code
    return ready, predict


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_exits(tmp_path, workers):
    env = {"MODEL_SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    with running_server(tmp_path, workers=workers, env=env) as server:
        assert _answers(server.url) == (200, 200)
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        wait_for(lambda: _answers(server.url)[0] == 503, 2, interval=0.05, what="/ready to turn 503")
        during = [_answers(server.url) for _ in range(10)]
        assert time.monotonic() - sent < DRAIN_SECONDS, "the checks took longer than the drain"
        assert during == [(503, 200)] * 10  # unready, yet every prediction is answered
        server.process.wait(timeout=DRAIN_SECONDS + 15)
        assert time.monotonic() - sent >= DRAIN_SECONDS
        # uvicorn re-raises the signal it shut down for once it is done: a clean exit "by SIGTERM".
        assert server.process.returncode in (0, -signal.SIGTERM), server.log_tail()
        assert "draining for 3s" in server.log()


def test_without_a_drain_sigterm_stops_at_once(tmp_path):
    with running_server(tmp_path) as server:
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=15)
        assert time.monotonic() - sent < DRAIN_SECONDS
        assert "draining" not in server.log()
