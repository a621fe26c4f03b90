"""The exported metrics (declared once, at module level) and the pure-ASGI middleware that feeds them.

Names, labels and buckets come from ``server.contract``. The metric objects are not registered in the
global default registry: ``build_registry()`` gives each app a ``CollectorRegistry`` holding just these
(no process/platform collectors), or, in multiprocess mode, one that sums the per-worker files. The
objects themselves are per process, so several apps in one process (tests) share their values.
"""

from __future__ import annotations

import fcntl
import os
import re
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.mmap_dict import MmapedDict

from server import contract
from server.model import DECILE_CUTS, Model

# prometheus-client picks its value store (memory or mmap files) from this variable at import, so
# read it at the same time: the app and the library always agree on the mode.
MULTIPROC_DIR: str | None = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

# `_created` samples would double the series count and the render time for no dashboard use.
disable_created_metrics()

REQUESTS = Counter(
    contract.REQUESTS_TOTAL,
    "HTTP requests by route template, method and numeric status code.",
    contract.REQUESTS_LABELS,
    registry=None,
)
REQUEST_DURATION = Histogram(
    contract.REQUEST_DURATION,
    "Time from request start until the response is fully sent.",
    contract.REQUEST_DURATION_LABELS,
    buckets=contract.REQUEST_DURATION_BUCKETS,
    registry=None,
)
PREDICTIONS = Histogram(
    contract.PREDICTION_VALUE,
    "Every predicted probability, batch items included.",
    buckets=contract.PREDICTION_VALUE_BUCKETS,
    registry=None,
)
FEATURE_BINS = Counter(
    contract.FEATURE_BIN_TOTAL,
    "Input feature values by reference (training-data) decile bin.",
    contract.FEATURE_BIN_LABELS,
    registry=None,
)
# livemax: 1 while any worker is alive; a dead worker's file is dropped by mark_process_dead.
MODEL_INFO = Gauge(
    contract.MODEL_INFO,
    "Constant 1, labelled with the loaded model's name and version.",
    contract.MODEL_INFO_LABELS,
    multiprocess_mode="livemax",
    registry=None,
)
HTTP_REJECTED = Counter(
    contract.HTTP_REJECTED_TOTAL,
    "Requests refused by the HTTP layer before reaching the app, by reason.",
    contract.HTTP_REJECTED_LABELS,
    registry=None,
)
COLLECTORS = (REQUESTS, REQUEST_DURATION, PREDICTIONS, FEATURE_BINS, MODEL_INFO, HTTP_REJECTED)

# Anything else a client sends as a method is folded into one value (bounded label set).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def build_registry() -> CollectorRegistry:
    """The registry /metrics renders: this process's metrics, or the sum of all workers' files."""
    registry = CollectorRegistry(auto_describe=True)
    if MULTIPROC_DIR:
        LockedMultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        for collector in COLLECTORS:
            registry.register(collector)
    return registry


def create_rejection_series() -> None:
    """Every reason's series at 0 from start-up, so a rate over it exists before the first refusal."""
    for reason in contract.HTTP_REJECTED_REASONS:
        HTTP_REJECTED.labels(reason)


class PredictionRecorder:
    """Observes predictions and feature bins; every child series is created up front (value 0).

    Bin ``k`` of a feature holds values ``x`` with ``cut[k-1] < x <= cut[k]`` (bin 0 is everything up to
    the first cut, the last bin everything above the last cut), the "less or equal" convention of
    Prometheus histogram buckets: ``bisect_left`` on the cut points, the C function itself because it
    runs for every feature of every request.
    """

    def __init__(self, model: Model) -> None:
        if any(len(cuts) != DECILE_CUTS for cuts in model.reference_deciles):
            raise ValueError(f"each feature needs {DECILE_CUTS} decile cut points")
        # Per feature: its cut points and the bound `inc` of each bin's counter.
        self._features = [
            (cuts, [FEATURE_BINS.labels(name, b).inc for b in contract.FEATURE_BINS])
            for name, cuts in zip(model.feature_names, model.reference_deciles, strict=True)
        ]
        MODEL_INFO.labels(model.name, model.version).set(1)
        self._observe = PREDICTIONS.observe

    def record(self, rows: Sequence[Sequence[float]], predictions: Sequence[float]) -> None:
        observe = self._observe
        for p in predictions:
            observe(p)
        features = self._features
        for row in rows:
            # Rows were validated to len(feature_names). No `strict=` argument: a keyword argument
            # sends the zip() call down CPython's slow path, measurable on every request.
            for (cuts, incs), x in zip(features, row):  # noqa: B905
                incs[bisect_left(cuts, x)]()


class MetricsMiddleware:
    """Pure ASGI middleware: one counter and one histogram observation per HTTP request.

    The handler label is the matched route's template, read from the scope after the router ran, so
    it costs no extra matching; unmatched paths all become ``contract.UNMATCHED_HANDLER``. Label
    children are cached per (route path, method, status) as read from the request, so a repeated
    request costs one dict look-up: ``labels()`` is the most expensive part of recording.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        # (route path or None, method, status) -> (counter child's inc, histogram child's observe)
        self._children: dict[
            tuple[str | None, str, int], tuple[Callable[[], None], Callable[[float], None]]
        ] = {}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before starting a response

        def send_with_status(message: dict) -> Awaitable[None]:
            # Not a coroutine: handing back send's awaitable saves a coroutine object per message.
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = perf_counter() - start
            # Keyed on the raw values; turning them into label values is left to the first request.
            key = (getattr(scope.get("route"), "path", None), scope["method"], status)
            try:
                inc, observe = self._children[key]
            except KeyError:
                inc, observe = self._resolve(key)
            inc()
            observe(elapsed)

    def _resolve(
        self, key: tuple[str | None, str, int]
    ) -> tuple[Callable[[], None], Callable[[float], None]]:
        path, method, status = key
        handler = path or contract.UNMATCHED_HANDLER
        label_method = method if method in _METHODS else OTHER_METHOD
        children = (
            REQUESTS.labels(handler, label_method, str(status)).inc,
            REQUEST_DURATION.labels(handler, label_method).observe,
        )
        # Cache only known methods: a client can send any method token, and the cache must stay bounded.
        if method in _METHODS:
            self._children[key] = children
        return children


def prepare_multiproc_dir(path: str | Path) -> None:
    """Empty the directory (create it if needed) before any worker starts: old files would be summed."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_file() and entry.suffix == ".db":
            entry.unlink()


_DB_PID = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_workers() -> list[int]:
    """At worker start-up: mark every process that left files behind and no longer exists as dead, and
    fold its counter and histogram files into the archives (``compact``).

    uvicorn's supervisor has no child-exit hook, but it starts a replacement whenever a worker dies,
    so doing this in the replacement covers crashed workers; ``mark_worker_exit`` covers clean exits.
    """
    if not MULTIPROC_DIR:
        return []
    pids = {int(m.group(1)) for f in os.listdir(MULTIPROC_DIR) if (m := _DB_PID.search(f))}
    dead = sorted(pid for pid in pids if pid != os.getpid() and not _alive(pid))
    # Replacements of workers that died together start together: one at a time, or two remove the same
    # live-gauge file and the second start-up fails (FileNotFoundError in mark_process_dead).
    with _directory_lock(MULTIPROC_DIR, exclusive=True):
        for pid in dead:
            prom_multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
    compact(MULTIPROC_DIR, dead)
    return dead


# Multiprocess directory compaction. prometheus-client keeps a dead process's counter and histogram file
# for ever (its counts must stay in the sums), so every worker restart adds files, and /metrics reads them
# all. A dead process's files are instead added, value by value, into one archive file per type, named
# like a process's file (the collector reads every `*.db` and sums files of the same type alike), and then
# removed: the sums stay exactly the same, the file count stays (live workers + archives).
ARCHIVE_TYPES = ("counter", "histogram")
LOCK_FILE = "compaction.lock"  # not *.db: the collector never reads it


def archive_path(directory: str | Path, typ: str) -> Path:
    return Path(directory) / f"{typ}_archive.db"


@contextmanager
def _directory_lock(directory: str | Path, exclusive: bool) -> Iterator[None]:
    """flock on the directory's lock file: compactions exclusive, collections shared, so a scrape sees
    the files either all before or all after a compaction (never a count twice, or missing)."""
    fd = os.open(Path(directory) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def compact(directory: str | Path, dead_pids: Iterable[int]) -> list[Path]:
    """Add the dead processes' counter and histogram files into the archives and remove them; returns
    the files removed. Safe when several workers do it at once (an exclusive lock; a file another one
    already merged is gone). Live-gauge files are mark_process_dead's; other gauge modes keep per-pid
    files by design (prometheus-client's semantics) and are left alone."""
    dead_pids = list(dead_pids)
    if not dead_pids:
        return []
    removed: list[Path] = []
    with _directory_lock(directory, exclusive=True):
        for typ in ARCHIVE_TYPES:
            files = [p for pid in dead_pids if (p := Path(directory) / f"{typ}_{pid}.db").exists()]
            if not files:
                continue
            archive = archive_path(directory, typ)
            totals: dict[str, float] = {}
            for path in [archive, *files] if archive.exists() else files:
                for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
                    totals[key] = totals.get(key, 0.0) + value
            # Written aside and renamed over the archive: a crash leaves the old archive and the files.
            # (Killed between the rename and the unlinks, the files would be added again next time.)
            staging = archive.with_name(archive.name + ".tmp")
            staging.unlink(missing_ok=True)
            merged = MmapedDict(str(staging))
            try:
                for key, value in totals.items():
                    merged.write_value(key, value, 0.0)
            finally:
                merged.close()
            os.replace(staging, archive)
            for path in files:
                path.unlink()
            removed += files
    return removed


class LockedMultiProcessCollector(prom_multiprocess.MultiProcessCollector):
    """The library's collector, reading the files under the directory's shared lock (see ``compact``)."""

    def collect(self) -> Iterable[Any]:
        with _directory_lock(self._path, exclusive=False):
            return list(super().collect())


def mark_worker_exit() -> None:
    """At worker shutdown: drop this process's live-gauge files (counters stay, so sums never drop)."""
    if MULTIPROC_DIR:
        prom_multiprocess.mark_process_dead(os.getpid(), MULTIPROC_DIR)
