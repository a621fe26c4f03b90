"""A real `python -m server --workers 2`: per-worker metrics files, summed by /metrics."""

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from server import contract
from tests.support.net import scrape, wait_for
from tests.support.server import running_server

from .conftest import VALID

pytestmark = pytest.mark.live
N = 240
PREDICT_OK = {"handler": contract.PREDICT_HANDLER, "method": "POST", "status": "200"}


def get(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def predict_once(url: str) -> int:
    # A fresh connection per request, so the kernel hands them to both workers.
    with httpx.Client(timeout=10) as client:
        return client.post(f"{url}{contract.PREDICT_HANDLER}", json=VALID).status_code


def per_worker_requests(multiproc_dir: Path) -> dict[int, float]:
    """Successful /predict requests recorded in each worker's own counter file."""
    counts = {}
    for path in multiproc_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[-1])
        for metric in MultiProcessCollector.merge([str(path)]):
            for s in metric.samples:
                if s.name == contract.REQUESTS_TOTAL and s.labels == PREDICT_OK:
                    counts[pid] = s.value
    return counts


def test_two_workers_add_up_and_dead_workers_are_marked(tmp_path):
    stale = tmp_path / "metrics" / "counter_999999.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left over from an earlier run")
    with running_server(tmp_path, workers=2, multiproc_dir=stale.parent) as server:
        assert not stale.exists()  # the directory is wiped before the workers start

        before = scrape(server.url)
        model = httpx.get(f"{server.url}/ready").json()
        # Everything exists before traffic: all bins at 0, model_info at 1 (not 1 per worker).
        for feature in ("f0", "f1", "f2"):
            for b in contract.FEATURE_BINS:
                assert get(before, contract.FEATURE_BIN_TOTAL, feature=feature, bin=b) == 0.0
        assert get(before, contract.MODEL_INFO, model=model["model"], version=model["version"]) == 1.0

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: predict_once(server.url), range(N)))
        assert statuses == [200] * N

        after = scrape(server.url)
        assert get(after, contract.REQUESTS_TOTAL, **PREDICT_OK) == N
        assert get(after, contract.PREDICTION_VALUE + "_count") == N
        assert get(after, contract.REQUEST_DURATION + "_count", handler="/predict", method="POST") == N
        for feature in ("f0", "f1", "f2"):
            assert (
                sum(
                    get(after, contract.FEATURE_BIN_TOTAL, feature=feature, bin=b)
                    for b in contract.FEATURE_BINS
                )
                == N
            )

        workers = per_worker_requests(server.multiproc_dir)
        assert len(workers) == 2, workers
        assert all(count > 0 for count in workers.values()), f"one worker served everything: {workers}"
        assert sum(workers.values()) == N

        # Kill one worker outright: uvicorn starts a replacement, which marks the dead pid.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        live_gauge = server.multiproc_dir / f"gauge_livemax_{victim}.db"
        wait_for(lambda: not live_gauge.exists(), 30, what="the dead worker's live gauge file to go")
        wait_for(
            lambda: len(list(server.multiproc_dir.glob("gauge_livemax_*.db"))) == 2, 30, what="a replacement"
        )

        survived = scrape(server.url)
        assert get(survived, contract.REQUESTS_TOTAL, **PREDICT_OK) == N  # counters never go back
        assert get(survived, contract.MODEL_INFO, model=model["model"], version=model["version"]) == 1.0

    # A clean shutdown marks every worker dead too.
    assert not list(server.multiproc_dir.glob("gauge_livemax_*.db"))


def test_single_worker_answers_the_readme_curl(tmp_path):
    with running_server(tmp_path, workers=1) as server:
        response = httpx.post(
            f"{server.url}/predict",
            content=b'{"features": [0.5, 0.3, 0.7]}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200
        assert 0.0 <= response.json()["prediction"] <= 1.0
        assert get(scrape(server.url), contract.REQUESTS_TOTAL, **PREDICT_OK) == 1

        # Oversized bodies over a real socket, with Content-Length and chunked, then a normal request.
        big = b'{"features": [' + b"0.5, " * 20_000 + b"0.5]}"
        headers = {"Content-Type": "application/json"}
        assert httpx.post(f"{server.url}/predict", content=big, headers=headers).status_code == 413
        chunks = iter([big[:50_000], big[50_000:]])
        assert httpx.post(f"{server.url}/predict", content=chunks, headers=headers).status_code == 413
        assert httpx.post(f"{server.url}/predict", json=VALID).status_code == 200
        samples = scrape(server.url)
        assert get(samples, contract.REQUESTS_TOTAL, **{**PREDICT_OK, "status": "413"}) == 2
        assert get(samples, contract.REQUESTS_TOTAL, **PREDICT_OK) == 2
        assert not (tmp_path / "metrics").exists()  # one worker: plain in-memory metrics
