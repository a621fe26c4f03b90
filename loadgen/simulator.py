"""Traffic and drift simulator for the model server: ``python -m loadgen --help``.

Sends an open-loop stream of POST /predict requests (single rows, batches and deliberately invalid
bodies) at a fixed rate for a bounded time, in one of these modes:

- ``normal``: every feature is drawn so each reference-decile bin gets 10% of values (PSI ~ 0);
- ``feature-drift``: the chosen features are shifted by a fraction of their P10..P90 spread;
- ``prediction-shift``: rows are chosen (with the model itself) whose prediction lies in the upper
  (or lower) tail of the normal prediction distribution, which moves the prediction median;
- ``latency`` / ``errors``: a share of valid requests carries the server's chaos headers
  (``X-Chaos-Delay-Seconds`` / ``X-Chaos-Status``) and the server's chaos token (``X-Chaos-Token``,
  ``--chaos-token`` or ``$MODEL_CHAOS_TOKEN``), honoured only when the server runs with
  ``MODEL_CHAOS_ENABLED`` and that token (stack config ``chaosEnabled``).

``--scenario demo`` runs the documented sequence of modes so every alert can be watched firing.
Realistic inputs come from the model artifact's ``reference_deciles``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from dashboards.alerts import (
    ALERT_FEATURE_DRIFT,
    ALERT_HIGH_ERROR_RATE,
    ALERT_HIGH_LATENCY,
    ALERT_PREDICTION_SHIFT,
)
from dashboards.settings import (
    DEFAULT_SETTINGS,
    FEATURE_DRIFT_WINDOW_SECONDS,
    PREDICTION_SHIFT_WINDOW_SECONDS,
    AlertSettings,
    promql_duration,
)
from server.contract import (
    CHAOS_DELAY_HEADER,
    CHAOS_MAX_DELAY_SECONDS,
    CHAOS_STATUS_HEADER,
    CHAOS_STATUSES,
    CHAOS_TOKEN_HEADER,
    HEALTH_PATH,
    PREDICT_HANDLER,
)
from server.model import Model, load_model
from server.settings import DEFAULT_MODEL_PATH

MODES = ("normal", "feature-drift", "prediction-shift", "latency", "errors")
CHAOS_MODES = ("latency", "errors")

# Hard caps so a typo cannot turn the simulator into a flood or a run that never ends.
MAX_RATE = 1000.0
MAX_DURATION_SECONDS = 48 * 3600.0  # a day of baseline traffic (prediction shift compares with 24h ago)
MAX_BATCH_SIZE = 64

# Kinds of request in the mix.
SINGLE, BATCH, INVALID = "single", "batch", "invalid"


def _invalid_bodies(n_features: int) -> tuple[tuple[str, bytes], ...]:
    """Bodies the server must reject with 422 (name, raw body): realistic client mistakes."""
    row = [0.5] * n_features
    docs: list[tuple[str, object]] = [
        ("too-few-features", {"features": row[:-1]}),
        ("too-many-features", {"features": [*row, 0.5]}),
        ("string-feature", {"features": ["abc", *row[1:]]}),
        ("null-feature", {"features": [None, *row[1:]]}),
        ("missing-key", {"feature": row}),
        ("empty-batch", {"instances": []}),
        ("ragged-batch", {"instances": [row, row[:-1]]}),
        ("not-an-object", [row]),
    ]
    bodies = [(name, json.dumps(doc).encode()) for name, doc in docs]
    bodies.append(("not-json", b"features=1,2,3"))
    return tuple(bodies)


@dataclass(frozen=True)
class LoadConfig:
    """One run of the simulator (one mode for a bounded time)."""

    url: str = "http://127.0.0.1:8000"
    mode: str = "normal"
    rate: float = 10.0
    duration: float = 60.0
    max_requests: int | None = None
    batch_share: float = 0.1
    batch_size: int = 8
    invalid_share: float = 0.05
    drift_features: tuple[str, ...] = ()  # empty: the feature whose drift moves predictions least
    drift_strength: float = 1.0
    shift_direction: str = "up"
    shift_quantile: float = 0.75
    chaos_share: float = 0.5
    chaos_delay: float = 1.0
    chaos_status: int = 500
    chaos_token: str = field(default="", repr=False)  # the server's MODEL_CHAOS_TOKEN (a secret)
    concurrency: int = 64
    timeout: float = 10.0
    progress_interval: float = 5.0
    seed: int | None = None


@dataclass
class Stats:
    """What one run sent and what came back (client side)."""

    sent: Counter[str] = field(default_factory=Counter)  # by kind
    status: Counter[str] = field(default_factory=Counter)  # by kind/status, e.g. "single/200"
    transport_errors: Counter[str] = field(default_factory=Counter)  # by exception type
    # Recent response times only: a long run must not grow without bound.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    elapsed: float = 0.0

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    def by_status(self) -> Counter[int]:
        out: Counter[int] = Counter()
        for key, n in self.status.items():
            out[int(key.split("/")[1])] += n
        return out

    def count(self, kind: str, status: int) -> int:
        return self.status[f"{kind}/{status}"]


# ---------------------------------------------------------------------------------------------
# Inputs


class InputSampler:
    """Draws feature rows from the model's reference deciles.

    A row picks a bin per feature uniformly (10% each) and a value uniformly inside it; the open
    edge bins are closed one average bin width beyond the outer cut points. So normal traffic puts
    exactly the reference share into every bin, whatever the training distribution looked like.
    """

    def __init__(self, deciles: Sequence[Sequence[float]], rng: random.Random):
        self._rng = rng
        self._edges: list[list[float]] = []
        self.spreads: list[float] = []
        for cuts in deciles:
            cuts = [float(c) for c in cuts]
            spread = cuts[-1] - cuts[0]
            width = spread / (len(cuts) - 1) if spread > 0 else 1.0
            self._edges.append([cuts[0] - width, *cuts, cuts[-1] + width])
            self.spreads.append(spread if spread > 0 else 1.0)

    @property
    def n_features(self) -> int:
        return len(self._edges)

    def row(self, offsets: Sequence[float] | None = None) -> list[float]:
        out = []
        for i, edges in enumerate(self._edges):
            b = self._rng.randrange(len(edges) - 1)
            value = self._rng.uniform(edges[b], edges[b + 1])
            if offsets is not None:
                value += offsets[i]
            out.append(round(value, 6))
        return out


def probe_body(model: Model) -> bytes:
    """A valid single-row request: every feature at its reference median."""
    return json.dumps({"features": [cuts[len(cuts) // 2] for cuts in model.reference_deciles]}).encode()


def quietest_feature(model: Model, strength: float, seed: int = 0) -> str:
    """The feature whose drift (by `strength`) moves the median prediction least: drifting it shows
    FeatureDrift on its own, apart from PredictionDistributionShift."""
    sampler = InputSampler(model.reference_deciles, random.Random(seed))
    rows = [sampler.row() for _ in range(1000)]
    base = statistics.median(model.predict(rows))

    def moved(i: int) -> float:
        offset = strength * sampler.spreads[i]
        shifted = [[x + offset if j == i else x for j, x in enumerate(row)] for row in rows]
        return abs(statistics.median(model.predict(shifted)) - base)

    return model.feature_names[min(range(len(model.feature_names)), key=moved)]


class RowSource:
    """Rows for one mode: normal, drifted features, or rows chosen to move the prediction median."""

    def __init__(self, model: Model, config: LoadConfig, rng: random.Random):
        self.feature_names = list(model.feature_names)
        self._sampler = InputSampler(model.reference_deciles, rng)
        self._offsets: list[float] | None = None
        self._accept: Callable[[float], bool] | None = None
        self._predict = model.predict
        self.description = "every feature drawn from its reference deciles (10% per bin)"
        if config.mode == "feature-drift":
            drifted = set(config.drift_features or [quietest_feature(model, config.drift_strength)])
            self._offsets = [
                config.drift_strength * spread if name in drifted else 0.0
                for name, spread in zip(self.feature_names, self._sampler.spreads, strict=True)
            ]
            self.description = "drifting " + ", ".join(
                f"{name} by {offset:+.3g}"
                for name, offset in zip(self.feature_names, self._offsets, strict=True)
                if offset
            )
        elif config.mode == "prediction-shift":
            # The cut is a quantile of the normal prediction distribution; keeping only rows beyond it
            # moves the median to the middle of the kept tail.
            reference = sorted(self._predict([self._sampler.row() for _ in range(2000)]))
            q = config.shift_quantile if config.shift_direction == "up" else 1.0 - config.shift_quantile
            cut = reference[min(len(reference) - 1, int(q * len(reference)))]
            self.description = (
                f"only rows whose prediction is {'>=' if config.shift_direction == 'up' else '<='} {cut:.3f} "
                f"(the {q:.0%} quantile of normal traffic)"
            )
            if config.shift_direction == "up":
                self._accept = lambda p: p >= cut
            else:
                self._accept = lambda p: p <= cut

    def row(self) -> list[float]:
        if self._accept is None:
            return self._sampler.row(self._offsets)
        # Rejection sampling in chunks: the kept tail holds a fixed share, so this ends quickly.
        for _ in range(100):
            rows = [self._sampler.row() for _ in range(32)]
            for r, p in zip(rows, self._predict(rows), strict=True):
                if self._accept(p):
                    return r
        raise RuntimeError("prediction-shift: no row reached the prediction cut")  # pragma: no cover


@dataclass(frozen=True)
class Planned:
    kind: str
    body: bytes
    headers: dict[str, str]


class RequestPlanner:
    """Chooses each request of the mix: kind, body and chaos headers."""

    def __init__(self, rows: RowSource, config: LoadConfig, rng: random.Random):
        self._rows = rows
        self._config = config
        self._rng = rng
        self._invalid = _invalid_bodies(len(rows.feature_names))

    def next(self) -> Planned:
        c, rng = self._config, self._rng
        draw = rng.random()
        if draw < c.invalid_share:
            return Planned(INVALID, rng.choice(self._invalid)[1], {"content-type": "application/json"})
        headers = {"content-type": "application/json"}
        if c.mode in CHAOS_MODES and rng.random() < c.chaos_share:
            headers[CHAOS_TOKEN_HEADER] = c.chaos_token
            if c.mode == "latency":
                headers[CHAOS_DELAY_HEADER] = f"{c.chaos_delay:g}"
            else:
                headers[CHAOS_STATUS_HEADER] = str(c.chaos_status)
        if draw < c.invalid_share + c.batch_share:
            size = rng.randint(2, c.batch_size) if c.batch_size > 2 else c.batch_size
            body = {"instances": [self._rows.row() for _ in range(size)]}
            return Planned(BATCH, json.dumps(body).encode(), headers)
        return Planned(SINGLE, json.dumps({"features": self._rows.row()}).encode(), headers)


# ---------------------------------------------------------------------------------------------
# Running


class LoadgenError(RuntimeError):
    """A condition that stops the run before traffic starts (unreachable server, chaos off)."""


def split_urls(url: str) -> list[str]:
    """The comma-separated base URLs of `--url` (one per replica), without trailing slashes."""
    return [u.strip().rstrip("/") for u in url.split(",") if u.strip()]


async def preflight(client: httpx.AsyncClient, config: LoadConfig, probe: bytes) -> None:
    """Fail fast with a clear message when a server is down or ignores the chaos headers."""
    for url in split_urls(config.url):
        try:
            r = await client.get(f"{url}{HEALTH_PATH}")
        except httpx.HTTPError as e:
            raise LoadgenError(f"cannot reach the model server at {url}: {e!r}") from e
        if r.status_code != 200:
            raise LoadgenError(f"model server at {url} is not healthy: GET {HEALTH_PATH} -> {r.status_code}")
        if config.mode in CHAOS_MODES and not await chaos_enabled(client, url, probe, config.chaos_token):
            raise LoadgenError(
                f"mode {config.mode!r} needs the server's chaos setting, but {url} ignores "
                f"{CHAOS_STATUS_HEADER}: start it with MODEL_CHAOS_ENABLED=1 and MODEL_CHAOS_TOKEN, and give "
                "this the same token (--chaos-token or $MODEL_CHAOS_TOKEN) "
                "(stack: `pulumi config set chaosEnabled true && make up`)"
            )


async def chaos_enabled(client: httpx.AsyncClient, url: str, probe: bytes, token: str) -> bool:
    """Whether the server honours the chaos headers with this token (probe: one valid request asking
    for a 503)."""
    headers = {"content-type": "application/json", CHAOS_STATUS_HEADER: "503", CHAOS_TOKEN_HEADER: token}
    r = await client.post(f"{url}{PREDICT_HANDLER}", content=probe, headers=headers)
    return r.status_code == 503


def _progress_line(mode: str, t: float, stats: Stats, window_sent: int, window: float) -> str:
    statuses = " ".join(f"{code}:{n}" for code, n in sorted(stats.by_status().items()))
    errors = sum(stats.transport_errors.values())
    lat = sorted(stats.latencies)
    p95 = f"{lat[int(0.95 * (len(lat) - 1))] * 1000:.0f}ms" if lat else "-"
    rate = window_sent / window if window > 0 else 0.0
    return (
        f"[{t:6.1f}s] {mode:<16} sent {stats.total_sent:>6} ({rate:6.1f}/s)  "
        f"status {statuses or '-'}  transport-errors {errors}  p95 {p95}"
    )


async def run(config: LoadConfig, model: Model | None = None, out: TextIO | None = None) -> Stats:
    """Send the configured traffic; returns when the duration or request budget is used up."""
    validate(config)
    out = out if out is not None else sys.stdout
    if model is None:
        model = load_model(DEFAULT_MODEL_PATH)
    rng = random.Random(config.seed)
    rows = RowSource(model, config, rng)
    planner = RequestPlanner(rows, config, rng)
    stats = Stats()
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    targets = [f"{url}{PREDICT_HANDLER}" for url in split_urls(config.url)]
    async with httpx.AsyncClient(timeout=config.timeout, limits=limits) as client:
        await preflight(client, config, probe_body(model))
        print(
            f"{config.mode}: {config.rate:g} requests/s for up to {config.duration:g}s to "
            f"{', '.join(split_urls(config.url))}; {rows.description}",
            file=out,
            flush=True,
        )
        sem = asyncio.Semaphore(config.concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def send(target: str, p: Planned) -> None:
            t0 = loop.time()
            try:
                r = await client.post(target, content=p.body, headers=p.headers)
            except httpx.HTTPError as e:
                stats.transport_errors[type(e).__name__] += 1
            else:
                stats.status[f"{p.kind}/{r.status_code}"] += 1
                stats.latencies.append(loop.time() - t0)
            finally:
                sem.release()

        start = loop.time()
        deadline = start + config.duration
        budget = config.max_requests if config.max_requests is not None else float("inf")
        interval = 1.0 / config.rate
        next_send = start
        next_report, last_report_sent, last_report_t = start + config.progress_interval, 0, start
        while stats.total_sent < budget:
            now = loop.time()
            if now >= next_report:
                print(
                    _progress_line(
                        config.mode,
                        now - start,
                        stats,
                        stats.total_sent - last_report_sent,
                        now - last_report_t,
                    ),
                    file=out,
                    flush=True,
                )
                last_report_sent, last_report_t = stats.total_sent, now
                next_report += config.progress_interval
            if now >= deadline:
                break
            if now < next_send:
                await asyncio.sleep(min(next_send, deadline, next_report) - now)
                continue
            try:
                # Saturated (all connections busy): wait, so the achieved rate shows the slowdown.
                await asyncio.wait_for(sem.acquire(), timeout=max(0.0, min(deadline, next_report) - now))
            except TimeoutError:
                continue
            p = planner.next()
            # Round robin over the replicas, like a load balancer would.
            task = asyncio.create_task(send(targets[stats.total_sent % len(targets)], p))
            stats.sent[p.kind] += 1
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            # Never burst more than one second's worth to catch up after a stall.
            next_send = max(next_send + interval, loop.time() - 1.0)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=config.timeout + 1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        stats.elapsed = loop.time() - start
    return stats


def summary(config: LoadConfig, stats: Stats) -> str:
    rate = stats.total_sent / stats.elapsed if stats.elapsed > 0 else 0.0
    kinds = " ".join(f"{k}:{n}" for k, n in sorted(stats.sent.items()))
    statuses = " ".join(f"{code}:{n}" for code, n in sorted(stats.by_status().items()))
    errors = " ".join(f"{k}:{n}" for k, n in sorted(stats.transport_errors.items())) or "0"
    return (
        f"done {config.mode}: {stats.total_sent} requests in {stats.elapsed:.1f}s ({rate:.1f}/s); "
        f"kinds {kinds or '-'}; status {statuses or '-'}; transport errors {errors}"
    )


# ---------------------------------------------------------------------------------------------
# Demo scenario


@dataclass(frozen=True)
class Phase:
    mode: str
    seconds: float
    watch: str  # what to look at while this phase runs


# A demo runs for hours: fewer, coarser progress lines.
SCENARIO_PROGRESS_INTERVAL = 30.0


def demo_phases(settings: AlertSettings = DEFAULT_SETTINGS) -> tuple[Phase, ...]:
    """The demo sequence: each alerting phase lasts its alert's window plus its `for:` with some margin,
    and says what to watch in the thresholds and windows the alerts actually use."""
    s = settings
    rate_window = promql_duration(s.rate_window_seconds)
    drift_window = promql_duration(FEATURE_DRIFT_WINDOW_SECONDS)
    shift_window = promql_duration(PREDICTION_SHIFT_WINDOW_SECONDS)

    def fires_after(lead_seconds: int, for_seconds: int) -> str:
        return f"~{round((lead_seconds + for_seconds) / 60)} min"

    # The 5xx share and the P95 cross their thresholds about a minute into the phase (half the requests
    # are affected, the rate window fills quickly); the drift phase starts with the 1h PSI window full of
    # undrifted traffic, and shifting one feature by its whole P10..P90 spread takes its PSI over the
    # default threshold after ~8 min.
    errors_for, latency_for = s.error_rate_for_seconds, s.latency_for_seconds
    return (
        Phase("normal", 120, "baseline: every panel has data, no alert fires"),
        Phase(
            "errors",
            s.rate_window_seconds + errors_for,
            f"5xx share > {s.error_rate_threshold:.0%} over {rate_window}, "
            f"for {promql_duration(errors_for)}: "
            f"{ALERT_HIGH_ERROR_RATE} fires after {fires_after(60, errors_for)}",
        ),
        Phase(
            "latency",
            s.rate_window_seconds + latency_for,
            f"p95 of {PREDICT_HANDLER} > {s.latency_p95_seconds:g}s over {rate_window}, "
            f"for {promql_duration(latency_for)}: "
            f"{ALERT_HIGH_LATENCY} fires after {fires_after(60, latency_for)}",
        ),
        Phase(
            "feature-drift",
            s.feature_drift_for_seconds + 900,
            f"PSI of one feature > {s.feature_drift_psi_threshold:g} ({drift_window} window), for "
            f"{promql_duration(s.feature_drift_for_seconds)}: {ALERT_FEATURE_DRIFT} fires after "
            f"{fires_after(480, s.feature_drift_for_seconds)}",
        ),
        Phase(
            "prediction-shift",
            PREDICTION_SHIFT_WINDOW_SECONDS,
            f"{shift_window} median vs 24h earlier moves > {s.prediction_shift_threshold:g}, for "
            f"{promql_duration(s.prediction_shift_for_seconds)}: {ALERT_PREDICTION_SHIFT} fires only when "
            "the stack already holds traffic from 24h ago",
        ),
        Phase(
            "normal",
            300,
            f"recovery: error and latency alerts resolve; PSI and the median recover within {drift_window}",
        ),
    )


DEMO_PHASES = demo_phases()


async def run_scenario(
    base: LoadConfig,
    phases: Sequence[Phase] = DEMO_PHASES,
    time_scale: float = 1.0,
    model: Model | None = None,
    out: TextIO | None = None,
) -> list[tuple[Phase, Stats | None]]:
    """Run the phases in order; chaos phases are skipped (loudly) when the server ignores chaos."""
    out = out if out is not None else sys.stdout
    if model is None:
        model = load_model(DEFAULT_MODEL_PATH)
    needs_chaos = any(phase.mode in CHAOS_MODES for phase in phases)
    async with httpx.AsyncClient(timeout=base.timeout) as client:
        await preflight(client, replace(base, mode="normal"), probe_body(model))
        chaos = needs_chaos and all(
            [
                await chaos_enabled(client, url, probe_body(model), base.chaos_token)
                for url in split_urls(base.url)
            ]
        )
    if needs_chaos and not chaos:
        print(
            f"warning: {base.url} ignores the chaos headers, so the latency and error phases are skipped; "
            "enable them with `pulumi config set chaosEnabled true && make up` and pass the server's "
            "chaos token (--chaos-token or $MODEL_CHAOS_TOKEN)",
            file=out,
            flush=True,
        )
    results: list[tuple[Phase, Stats | None]] = []
    for i, phase in enumerate(phases, 1):
        seconds = phase.seconds * time_scale
        if phase.mode in CHAOS_MODES and not chaos:
            print(f"== phase {i}/{len(phases)}: {phase.mode} skipped (chaos disabled)", file=out, flush=True)
            results.append((phase, None))
            continue
        print(
            f"== phase {i}/{len(phases)}: {phase.mode} for {seconds:.0f}s -- {phase.watch}",
            file=out,
            flush=True,
        )
        config = replace(base, mode=phase.mode, duration=seconds)
        stats = await run(config, model=model, out=out)
        print(summary(config, stats), file=out, flush=True)
        results.append((phase, stats))
    return results


# ---------------------------------------------------------------------------------------------
# Validation and CLI


def validate(c: LoadConfig) -> None:
    """Raise ValueError naming the setting and its allowed values."""

    def check(ok: bool, name: str, allowed: str, value: object) -> None:
        if not ok:
            raise ValueError(f"{name} must be {allowed} (got {value!r})")

    urls = split_urls(c.url)
    for url in urls or [c.url]:
        parts = urlsplit(url)
        check(
            parts.scheme in ("http", "https") and bool(parts.netloc),
            "url",
            "http(s) URLs, comma-separated",
            url,
        )
    check(c.mode in MODES, "mode", f"one of {', '.join(MODES)}", c.mode)
    check(0 < c.rate <= MAX_RATE, "rate", f"> 0 and <= {MAX_RATE:g} requests/s", c.rate)
    check(
        0 < c.duration <= MAX_DURATION_SECONDS,
        "duration",
        f"> 0 and <= {MAX_DURATION_SECONDS:g} s",
        c.duration,
    )
    check(c.max_requests is None or c.max_requests > 0, "requests", "a positive integer", c.max_requests)
    check(0 <= c.batch_share <= 1, "batch-share", "between 0 and 1", c.batch_share)
    check(0 <= c.invalid_share <= 1, "invalid-share", "between 0 and 1", c.invalid_share)
    check(
        c.batch_share + c.invalid_share <= 1,
        "batch-share + invalid-share",
        "at most 1",
        c.batch_share + c.invalid_share,
    )
    check(2 <= c.batch_size <= MAX_BATCH_SIZE, "batch-size", f"between 2 and {MAX_BATCH_SIZE}", c.batch_size)
    check(c.drift_strength > 0, "drift-strength", "> 0", c.drift_strength)
    check(c.shift_direction in ("up", "down"), "shift-direction", "up or down", c.shift_direction)
    check(0.5 < c.shift_quantile < 1, "shift-quantile", "between 0.5 and 1 (exclusive)", c.shift_quantile)
    check(0 < c.chaos_share <= 1, "chaos-share", "> 0 and <= 1", c.chaos_share)
    check(
        0 < c.chaos_delay <= CHAOS_MAX_DELAY_SECONDS,
        "chaos-delay",
        f"> 0 and <= {CHAOS_MAX_DELAY_SECONDS:g} s",
        c.chaos_delay,
    )
    check(
        c.chaos_status in CHAOS_STATUSES,
        "chaos-status",
        " or ".join(map(str, CHAOS_STATUSES)),
        c.chaos_status,
    )
    check(1 <= c.concurrency <= 1024, "concurrency", "between 1 and 1024", c.concurrency)
    check(0 < c.timeout <= 60, "timeout", "> 0 and <= 60 s", c.timeout)
    check(c.progress_interval > 0, "progress-interval", "> 0 s", c.progress_interval)


def select_phases(phases: Sequence[Phase], names: str) -> tuple[Phase, ...]:
    """The phases whose mode is in the comma-separated `names` (all when empty), in scenario order."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in MODES]
    if unknown:
        raise ValueError(f"phases: unknown {', '.join(unknown)}; choose from {', '.join(MODES)}")
    return tuple(ph for ph in phases if not wanted or ph.mode in wanted)


def validate_features(c: LoadConfig, feature_names: Sequence[str]) -> None:
    unknown = [f for f in c.drift_features if f not in feature_names]
    if unknown:
        raise ValueError(
            f"drift-features: unknown {', '.join(unknown)}; the model has {', '.join(feature_names)}"
        )


def build_parser() -> argparse.ArgumentParser:
    d = LoadConfig()
    p = argparse.ArgumentParser(
        prog="python -m loadgen",
        description="Send realistic traffic (drift, prediction shift, latency, errors) to a model server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--url",
        default=d.url,
        help="model server base URL; comma-separated URLs (replicas) get requests in turn",
    )
    p.add_argument("--mode", choices=MODES, default=d.mode, help="what the traffic does to the metrics")
    p.add_argument(
        "--scenario",
        choices=("demo",),
        help="run the demo sequence of modes ("
        + ", ".join(ph.mode for ph in DEMO_PHASES)
        + "); ignores --mode",
    )
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply the scenario's phase durations")
    p.add_argument(
        "--phases",
        default="",
        help="comma-separated modes: run only these phases of the scenario (default: all)",
    )
    p.add_argument("--rate", type=float, default=d.rate, help="requests per second")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds to run")
    p.add_argument("--requests", type=int, dest="max_requests", help="stop after this many requests")
    p.add_argument("--batch-share", type=float, default=d.batch_share, help="share of batch requests")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="largest batch (rows)")
    p.add_argument("--invalid-share", type=float, default=d.invalid_share, help="share of invalid requests")
    p.add_argument(
        "--drift-features",
        default="",
        help="comma-separated features to drift (default: the one whose drift moves predictions least)",
    )
    p.add_argument(
        "--drift-strength",
        type=float,
        default=d.drift_strength,
        help="shift in units of each feature's P10..P90",
    )
    p.add_argument("--shift-direction", choices=("up", "down"), default=d.shift_direction)
    p.add_argument(
        "--shift-quantile",
        type=float,
        default=d.shift_quantile,
        help="keep rows whose prediction is beyond this quantile of normal traffic",
    )
    p.add_argument(
        "--chaos-share", type=float, default=d.chaos_share, help="share of requests with chaos headers"
    )
    p.add_argument("--chaos-delay", type=float, default=d.chaos_delay, help="latency mode: seconds of delay")
    p.add_argument("--chaos-status", type=int, default=d.chaos_status, help="errors mode: status to ask for")
    p.add_argument(
        "--chaos-token",
        # No default shown: it is a secret. `%(default).0s` as below.
        help="the server's MODEL_CHAOS_TOKEN, sent with the chaos headers (default: $MODEL_CHAOS_TOKEN)"
        "%(default).0s",
    )
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="most requests in flight")
    p.add_argument("--timeout", type=float, default=d.timeout, help="per-request timeout (s)")
    p.add_argument(
        "--progress-interval",
        type=float,
        # `%(default).0s` prints nothing; it only stops the formatter from appending "(default: None)".
        help=f"seconds between progress lines (default: {d.progress_interval:g}; "
        f"{SCENARIO_PROGRESS_INTERVAL:g} with --scenario)%(default).0s",
    )
    p.add_argument("--seed", type=int, help="random seed (reproducible traffic)")
    p.add_argument(
        "--model", type=Path, help="model artifact to draw inputs from (default: the packaged one)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    d = LoadConfig()
    args = parser.parse_args(argv)
    config = LoadConfig(
        url=args.url,
        mode=args.mode,
        rate=args.rate,
        duration=args.duration,
        max_requests=args.max_requests,
        batch_share=args.batch_share,
        batch_size=args.batch_size,
        invalid_share=args.invalid_share,
        drift_features=tuple(f.strip() for f in args.drift_features.split(",") if f.strip()),
        drift_strength=args.drift_strength,
        shift_direction=args.shift_direction,
        shift_quantile=args.shift_quantile,
        chaos_share=args.chaos_share,
        chaos_delay=args.chaos_delay,
        chaos_status=args.chaos_status,
        chaos_token=(
            args.chaos_token if args.chaos_token is not None else os.environ.get("MODEL_CHAOS_TOKEN", "")
        ).strip(),
        concurrency=args.concurrency,
        timeout=args.timeout,
        progress_interval=(
            args.progress_interval
            if args.progress_interval is not None
            else SCENARIO_PROGRESS_INTERVAL
            if args.scenario
            else d.progress_interval
        ),
        seed=args.seed,
    )
    try:
        validate(config)
        if not 0 < args.time_scale <= 10:
            raise ValueError(f"time-scale must be > 0 and <= 10 (got {args.time_scale!r})")
        phases = select_phases(DEMO_PHASES, args.phases)
    except ValueError as e:
        parser.error(str(e))
    try:
        model = load_model(args.model or DEFAULT_MODEL_PATH)
    except ValueError as e:
        parser.error(f"model: {e}")
    try:
        validate_features(config, list(model.feature_names))
    except ValueError as e:
        parser.error(str(e))
    try:
        if args.scenario == "demo":
            asyncio.run(run_scenario(config, phases, time_scale=args.time_scale, model=model))
        else:
            stats = asyncio.run(run(config, model=model))
            print(summary(config, stats), flush=True)
    except LoadgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
