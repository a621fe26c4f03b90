"""Multiprocess directory compaction: dead workers' counter and histogram files folded into one archive
per type, every count kept, safe against concurrent compactions and scrapes (files written here the way
prometheus-client writes them; the whole server is in tests/reliability/)."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from server import metrics

HELP = "help"


def write_worker(directory: Path, pid: int, scale: float = 1.0) -> None:
    """The files a worker leaves: a labelled counter, a histogram (raw per-bucket values and a sum, as
    prometheus-client stores them) and a livemax gauge."""
    counter = MmapedDict(str(directory / f"counter_{pid}.db"))
    for status, n in (("200", 7), ("500", 2)):
        counter.write_value(
            mmap_key("req_total", "req_total", ["status"], [status], HELP), n * scale + pid % 5, 0.0
        )
    counter.close()
    histogram = MmapedDict(str(directory / f"histogram_{pid}.db"))
    for le, n in (("0.1", 3), ("1.0", 1), ("+Inf", 1)):
        histogram.write_value(mmap_key("lat", "lat_bucket", ["le"], [le], HELP), n * scale, 0.0)
    histogram.write_value(mmap_key("lat", "lat_sum", [], [], HELP), 0.75 * scale, 0.0)
    histogram.close()
    gauge = MmapedDict(str(directory / f"gauge_livemax_{pid}.db"))
    gauge.write_value(mmap_key("info", "info", [], [], HELP), 1.0, 0.0)
    gauge.close()


def sums(directory: Path) -> dict[tuple[str, tuple], float]:
    """What /metrics would show for the counter and histogram families."""
    files = [str(p) for p in directory.glob("*.db")]
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in MultiProcessCollector.merge(files)
        if family.type != "gauge"
        for s in family.samples
    }


def test_dead_workers_fold_into_the_archives_with_every_count_kept(tmp_path: Path) -> None:
    for pid in range(100, 110):
        write_worker(tmp_path, pid, scale=pid)
    before = sums(tmp_path)
    assert before[("req_total", (("status", "200"),))] == sum(7 * pid + pid % 5 for pid in range(100, 110))

    removed = metrics.compact(tmp_path, range(100, 105))
    assert sorted(p.name for p in removed) == sorted(
        f"{typ}_{pid}.db" for typ in ("counter", "histogram") for pid in range(100, 105)
    )
    assert sums(tmp_path) == before
    # The rest later, into the same archives: still the same sums, now one file per type.
    metrics.compact(tmp_path, [*range(105, 110), 999])  # 999 left nothing: ignored
    assert sums(tmp_path) == before
    assert sorted(p.name for p in tmp_path.glob("*.db") if not p.name.startswith("gauge")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    # Gauges are not compacted (live ones are mark_process_dead's to remove).
    assert len(list(tmp_path.glob("gauge_livemax_*.db"))) == 10
    assert metrics.compact(tmp_path, []) == []


def _compact_each(directory: str, pids: list[int], start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    for pid in pids:
        metrics.compact(directory, [pid])


def test_concurrent_compactions_and_scrapes_never_see_a_count_twice_or_missing(tmp_path: Path) -> None:
    """Two processes compact the same dead workers at once (two replacements starting together) while
    this one scrapes through the server's collector: every scrape sees exactly the same sums."""
    pids = list(range(1000, 1060))
    for pid in pids:
        write_worker(tmp_path, pid)
    expected = sums(tmp_path)
    collector = metrics.LockedMultiProcessCollector(None, path=str(tmp_path))
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    compactors = [
        context.Process(target=_compact_each, args=(str(tmp_path), order, start))
        for order in (pids, pids[::-1])
    ]
    for process in compactors:
        process.start()
    seen: list[dict] = []
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while any(p.is_alive() for p in compactors) and len(seen) < 5000:
                seen.append(
                    {
                        (s.name, tuple(sorted(s.labels.items()))): s.value
                        for family in collector.collect()
                        if family.type != "gauge"
                        for s in family.samples
                    }
                )
        except BaseException as error:  # a file removed between the glob and the read, say
            errors.append(error)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    start.set()
    for process in compactors:
        process.join(timeout=60)
        assert process.exitcode == 0
    scraper.join(timeout=60)
    assert not errors, errors
    assert len(seen) > 10, "the scrapes did not overlap the compactions"
    assert all(s == expected for s in seen), next(s for s in seen if s != expected)
    assert sums(tmp_path) == expected
    assert len(list(tmp_path.glob("counter_*.db"))) == 1


def test_replacements_starting_together_mark_the_dead_workers_once(tmp_path: Path, monkeypatch) -> None:
    """Two replacement workers marking the same dead worker at once (both workers were killed): each
    marks under the directory lock, so the second finds the dead worker's gauge file already gone
    instead of failing its start-up on it (FileNotFoundError, seen in tests/reliability)."""
    write_worker(tmp_path, 999_991)  # no such process
    monkeypatch.setattr(metrics, "MULTIPROC_DIR", str(tmp_path))
    library_glob = metrics.prom_multiprocess.glob.glob
    both_listed = threading.Barrier(2, timeout=2)

    def glob_then_wait(pattern: str) -> list[str]:
        # mark_process_dead lists a dead worker's gauge files, then removes them: hold each start-up
        # between the two, so without the lock both hold the same list (the race, made certain).
        found = library_glob(pattern)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_listed.wait()
        return found

    monkeypatch.setattr(metrics.prom_multiprocess.glob, "glob", glob_then_wait)
    errors: list[BaseException] = []

    def start_up() -> None:
        try:
            metrics.mark_dead_workers()
        except BaseException as error:  # whatever a start-up raised is the finding
            errors.append(error)

    threads = [threading.Thread(target=start_up) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert not list(tmp_path.glob("gauge_livemax_*.db"))
