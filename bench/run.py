"""``make bench``: our server vs a bare FastAPI app vs bare + prometheus-fastapi-instrumentator.

All three serve the same model with one uvicorn worker pinned to CPU 0 while wrk runs on CPU 1. Runs
are interleaved (the order rotates every round) so drift on a shared machine hits every app alike.
Two throughput figures per run:

- wall-clock requests/s from wrk (what a client sees; noisy when other work shares the CPUs), and
- requests per CPU-second of the server process (``/proc/<pid>/stat``): a single-threaded server
  saturated by wrk is CPU-bound, so this is its capacity, and it barely moves when other processes
  steal time. The targets are checked on this one; both are printed.

Then the /metrics render time: in-process ``generate_latest`` on a populated registry, and over HTTP
for one worker and for two (multiprocess files).

    python -m bench.run [--rounds 7] [--duration 5] [--connections 16] [--out table.md]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from timeit import default_timer

import httpx

print = functools.partial(print, flush=True)  # progress shows up live under make
REPO = Path(__file__).resolve().parents[1]
BODY = '{"features": [0.5, 0.3, 0.7]}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
TARGETS = {"bare": 0.90, "instrumentator": 1.25, "render_ms": 2.0}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class App:
    name: str
    label: str
    target: str  # uvicorn import string of the app factory
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU time per request


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """Pin to one CPU when there are two or more, so server and load generator don't fight; as root,
    also raise the priority so other work on a shared machine disturbs the measurement less."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    if os.geteuid() == 0:
        argv = ["nice", "-n", "-10", *argv]
    return argv


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def serve(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Start a server (nice/taskset exec into it, so the pid is the server's) and wait until it answers."""
    process = subprocess.Popen(
        pinned(0, argv),
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited: {process.stderr.read().decode()[-2000:]}")
            try:
                httpx.post(f"{url}/predict", content=BODY, headers={"content-type": "application/json"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(output: str) -> WrkResult:
    def percentile(p: int) -> float:
        return _ms(*re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups())

    return WrkResult(
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=percentile(50),
        p99_ms=percentile(99),
    )


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run(pinned(1, [*argv, url]), capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return parse_wrk(out)


def uvicorn_argv(app: App, port: int) -> list[str]:
    # The same uvicorn settings as `python -m server` (auto loop/http: uvloop + httptools, no access log).
    argv = [sys.executable, "-m", "uvicorn", app.target, "--port", str(port), "--no-access-log"]
    return [*argv, "--log-level", "warning", "--workers", "1", "--factory"]


def throughput(args: argparse.Namespace, script: Path) -> list[App]:
    apps = [
        App("server", "this server (metrics middleware)", "server.app:create_app"),
        App("bare", "bare FastAPI, same model", "bench.apps:bare"),
        App("instrumentator", "bare + prometheus-fastapi-instrumentator", "bench.apps:instrumentator"),
    ]
    for round_ in range(args.rounds):
        for app in apps[round_ % 3 :] + apps[: round_ % 3]:
            port = free_port()
            with serve(uvicorn_argv(app, port), port) as (url, pid):
                wrk(f"{url}/predict", args.warmup, args.connections, script)
                cpu_before = cpu_seconds(pid)
                result = wrk(f"{url}/predict", args.duration, args.connections, script)
                cpu = cpu_seconds(pid) - cpu_before
            app.rps.append(result.rps)
            app.p99_ms.append(result.p99_ms)
            app.cpu_us.append(cpu / result.requests * 1e6)
            print(
                f"  round {round_ + 1}/{args.rounds} {app.name:<15} {result.rps:7.0f} req/s  "
                f"p99 {result.p99_ms:7.2f} ms  {app.cpu_us[-1]:6.1f} CPU-us/request"
            )
    return apps


def render_in_process(samples: int = 2000) -> float:
    """Median ms of ``generate_latest`` on an app registry after mixed traffic (every family populated)."""
    from fastapi.testclient import TestClient
    from prometheus_client import generate_latest

    from server.app import create_app
    from server.settings import ServerSettings

    with TestClient(create_app(ServerSettings())) as client:
        for i in range(200):
            client.post("/predict", json={"features": [i / 200, (i % 7) / 7, 0.5]})
            client.post("/predict", json={"features": [i]})  # 422
        client.get("/nope")
        client.get("/health")
        registry = client.app.state.server.registry
        times = []
        for _ in range(samples):
            start = default_timer()
            generate_latest(registry)
            times.append(default_timer() - start)
    return statistics.median(times) * 1e3


def render_over_http(workers: int, seconds: int, script: Path) -> WrkResult:
    """GET /metrics latency on a live `python -m server` after some load, one connection."""
    port = free_port()
    argv = [sys.executable, "-m", "server", "--port", str(port), "--workers", str(workers)]
    argv += ["--log-level", "warning"]
    with tempfile.TemporaryDirectory() as tmp:
        # One worker: plain in-memory metrics; more: prometheus-client's multiprocess files.
        env = {"PROMETHEUS_MULTIPROC_DIR": tmp} if workers > 1 else {}
        with serve(argv, port, env) as (url, _):
            wrk(f"{url}/predict", 2, 8, script)
            return wrk(f"{url}/metrics", seconds, 1)


def table(args: argparse.Namespace, apps: dict[str, App], render: float, http: list[WrkResult]) -> str:
    def ok(good: bool) -> str:
        return "✅" if good else "❌"

    rps = {name: statistics.median(app.rps) for name, app in apps.items()}
    cpu = {name: statistics.median(app.cpu_us) for name, app in apps.items()}
    lines = [
        f"{os.cpu_count()} CPUs; one uvicorn worker per app on CPU 0, wrk (1 thread, {args.connections} "
        f"connections) on CPU 1; POST /predict with one row; median of {args.rounds} interleaved "
        f"{args.duration}-second rounds. Capacity = requests per CPU-second of the server process.",
        "",
        "| app | req/s (wall) | p99 ms | CPU µs/request | server ÷ app: capacity | wall | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, app in apps.items():
        capacity, wall = cpu[name] / cpu["server"], rps["server"] / rps[name]
        target = TARGETS.get(name)
        goal = f"≥ {target:.2f} {ok(capacity >= target)}" if target else ""
        lines.append(
            f"| {app.label} | {rps[name]:.0f} | {statistics.median(app.p99_ms):.2f} | {cpu[name]:.1f} | "
            f"{capacity:.2f} | {wall:.2f} | {goal} |"
        )
    lines += [
        "",
        "| /metrics render | p50 ms | p99 ms | target |",
        "|---|---:|---:|---|",
        f"| `generate_latest` in process (populated registry) | {render:.3f} | | "
        f"< {TARGETS['render_ms']:g} {ok(render < TARGETS['render_ms'])} |",
        f"| GET /metrics over HTTP, 1 worker | {http[0].p50_ms:.2f} | {http[0].p99_ms:.2f} | |",
        f"| GET /metrics over HTTP, 2 workers (multiprocess files) | {http[1].p50_ms:.2f} | "
        f"{http[1].p99_ms:.2f} | |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the instrumented model server.")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (make bench does this)")

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        print(f"throughput: {args.rounds} interleaved rounds x {args.duration} s")
        apps = {app.name: app for app in throughput(args, script)}
        print("/metrics render time ...")
        render = render_in_process()
        http = [render_over_http(1, 3, script), render_over_http(2, 3, script)]

    text = table(args, apps, render, http)
    print()
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
