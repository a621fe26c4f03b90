"""Worker restarts against a real 2-worker `python -m server`: 30 SIGKILLed workers leave the multiprocess
directory's file count and /metrics time where they started, and every count is kept.

Without compaction each dead worker leaves its counter and histogram files behind (prometheus-client keeps
them so the sums never drop), and /metrics reads them all: the issue measured 6 -> 146 files and a
/metrics median of 2.8 -> 13.2 ms over 70 restarts.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from pathlib import Path

import httpx
import pytest

from server import contract
from tests.support.net import scrape, wait_for
from tests.support.server import STARTUP_COMPLETE, RunningServer, running_server

pytestmark = pytest.mark.live

ROUNDS = 15  # x 2 workers = 30 kills
REQUESTS_PER_ROUND = 8
PREDICT_OK = (("handler", contract.PREDICT_HANDLER), ("method", "POST"), ("status", "200"))
# The series the test's traffic feeds (the scrapes and readiness checks feed others).
COUNTED = (contract.PREDICTION_VALUE, contract.FEATURE_BIN_TOTAL)


def worker_pids(server: RunningServer) -> set[int]:
    """Live workers: each holds a livemax gauge file (model_info); a replacement removes a dead one's."""
    assert server.multiproc_dir is not None
    return {int(p.stem.rsplit("_", 1)[1]) for p in server.multiproc_dir.glob("gauge_livemax_*.db")}


def db_files(server: RunningServer) -> int:
    assert server.multiproc_dir is not None
    return len(list(server.multiproc_dir.glob("*.db")))


def metrics_median_seconds(url: str, n: int = 21) -> float:
    with httpx.Client(timeout=10) as client:
        client.get(f"{url}{contract.METRICS_PATH}")
        times = []
        for _ in range(n):
            start = time.perf_counter()
            assert client.get(f"{url}{contract.METRICS_PATH}").status_code == 200
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def predict(url: str, n: int) -> None:
    for i in range(n):
        # A fresh connection each time, so the kernel hands them to both workers.
        with httpx.Client(timeout=10) as client:
            row = {"features": [0.1 * (i % 10), 0.5, 0.9]}
            assert client.post(f"{url}{contract.PREDICT_HANDLER}", json=row).status_code == 200


def counted(url: str) -> dict:
    """The /predict counts and everything recorded per prediction."""
    samples = scrape(url)
    return {
        key: value
        for key, value in samples.items()
        if key[0].startswith(COUNTED) or dict(key[1]).get("handler") == contract.PREDICT_HANDLER
    }


def test_30_worker_kills_keep_the_directory_flat_and_every_count(tmp_path: Path) -> None:
    with running_server(tmp_path, workers=2, multiproc_dir=tmp_path / "metrics") as server:
        predict(server.url, REQUESTS_PER_ROUND)
        sent = REQUESTS_PER_ROUND
        files_start, median_start = db_files(server), metrics_median_seconds(server.url)
        started = server.log().count(STARTUP_COMPLETE)
        for _ in range(ROUNDS):
            before = counted(server.url)
            old = worker_pids(server)
            assert len(old) == 2, old
            for pid in old:
                os.kill(pid, signal.SIGKILL)
            started += 2

            def replaced(old: set[int] = old, started: int = started) -> bool:
                pids = worker_pids(server)
                return (
                    len(pids) == 2
                    and not pids & old
                    and server.log().count(STARTUP_COMPLETE) >= started
                    and httpx.get(f"{server.url}{contract.READY_PATH}", timeout=2).status_code == 200
                )

            wait_for(replaced, 30, interval=0.05, what="two replacement workers")
            after = counted(server.url)
            # The dead workers' counts, all still there; sums of observed values up to float rounding.
            assert {k: v for k, v in after.items() if not k[0].endswith("_sum")} == {
                k: v for k, v in before.items() if not k[0].endswith("_sum")
            }
            assert after == pytest.approx(before, rel=1e-12)
            predict(server.url, REQUESTS_PER_ROUND)
            sent += REQUESTS_PER_ROUND

        files_end, median_end = db_files(server), metrics_median_seconds(server.url)
        samples = scrape(server.url)
    assert samples[(contract.REQUESTS_TOTAL, PREDICT_OK)] == sent
    assert samples[(contract.PREDICTION_VALUE + "_count", ())] == sent
    # The two archives (counter, histogram) are the only files added.
    assert files_end <= files_start + 2, (files_start, files_end)
    assert median_end < 2 * median_start + 0.003, (median_start, median_end)
    medians = f"{median_start * 1e3:.2f} -> {median_end * 1e3:.2f} ms"
    print(f"files {files_start} -> {files_end}; /metrics median {medians}")
