"""FeatureDrift and PredictionDistributionShift under random (seeded) traffic, through promtool.

The traffic is the load generator's (`loadgen.simulator.RowSource`: normal rows, a drifted feature, rows
that move the prediction median) with Poisson arrivals, binned as the server bins them (`bisect_left` on
the model's decile cut points) and sampled once a minute into the counters the server exports. Nothing is
hand-picked: each case says a rate, a duration and a seed.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from dashboards import alerts, noise
from dashboards.settings import DEFAULT_SETTINGS
from loadgen.simulator import LoadConfig, RowSource
from server import contract
from server.model import load_model
from server.settings import DEFAULT_MODEL_PATH
from tests.dashboards.test_rules_promtool import (
    INSTANCE,
    JOB,
    expected,
    rule_paths,
    run_unit_tests,
    selector,
)
from tests.support.psi import reference_psi

MODEL = load_model(DEFAULT_MODEL_PATH)
FEATURES = tuple(MODEL.feature_names)
HOUR = 60  # minutes
DRIFTED_FEATURE = FEATURES[0]
# The old share floor, for the "as fast as before" comparison only.
OLD_SHARE_FLOOR = 1e-4


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return rule_paths(tmp_path_factory.mktemp("export"))


# --- traffic -----------------------------------------------------------------------------------------


def arrivals(rate_per_hour: float, minutes: int, rng: random.Random) -> list[int]:
    """Requests in each minute of a Poisson process of `rate_per_hour`."""
    per_minute = [0] * minutes
    t = rng.expovariate(rate_per_hour / HOUR)
    while t < minutes:
        per_minute[int(t)] += 1
        t += rng.expovariate(rate_per_hour / HOUR)
    return per_minute


def rows(
    rate_per_hour: float, minutes: int, seed: int, changed: LoadConfig | None = None, change_at: int = 0
) -> list[list[list[float]]]:
    """Rows per minute: the simulator's normal traffic, and from `change_at` on the mode `changed`."""
    rng = random.Random(seed)
    normal = RowSource(MODEL, LoadConfig(mode="normal"), rng)
    other = RowSource(MODEL, changed, rng) if changed else normal
    return [
        [(other if minute >= change_at else normal).row() for _ in range(count)]
        for minute, count in enumerate(arrivals(rate_per_hour, minutes, rng))
    ]


def bin_counts(traffic: Sequence[Sequence[Sequence[float]]]) -> dict[str, list[list[int]]]:
    """Per feature, the values of each minute per reference-decile bin, binned as the server does."""
    out: dict[str, list[list[int]]] = {f: [] for f in FEATURES}
    for minute_rows in traffic:
        for f in FEATURES:
            out[f].append([0] * len(contract.FEATURE_BINS))
        for row in minute_rows:
            for f, cuts, x in zip(FEATURES, MODEL.reference_deciles, row, strict=True):
                out[f][-1][bisect.bisect_left(cuts, x)] += 1
    return out


def cumulative(per_minute: Sequence[float]) -> str:
    """promtool values of a counter scraped every minute from t=0 (0 before the first minute's traffic)."""
    total, values = 0.0, ["0"]
    for count in per_minute:
        total += count
        values.append(f"{total:g}")
    return " ".join(values)


def feature_series(counts: dict[str, list[list[int]]]) -> list[dict]:
    return [
        {
            "series": selector(
                contract.FEATURE_BIN_TOTAL, {**JOB, "instance": INSTANCE, "feature": f, "bin": b}
            ),
            "values": cumulative([minute[index] for minute in per_minute]),
        }
        for f, per_minute in counts.items()
        for index, b in enumerate(contract.FEATURE_BINS)
    ]


def prediction_series(traffic: Sequence[Sequence[Sequence[float]]]) -> list[dict]:
    """The prediction histogram of the model's predictions on the rows, sampled every minute."""
    bounds = [*contract.PREDICTION_VALUE_BUCKETS, math.inf]
    per_bucket: list[list[int]] = []
    for minute_rows in traffic:
        counts = [0] * len(bounds)
        for p in MODEL.predict(minute_rows) if minute_rows else []:
            counts[bisect.bisect_left(bounds, p)] += 1
        per_bucket.append(counts)
    labels = {**JOB, "instance": INSTANCE}
    out = []
    for index, le in enumerate(bounds):
        le_text = "+Inf" if le == math.inf else repr(float(le))
        at_or_below = [sum(minute[: index + 1]) for minute in per_bucket]
        name = f"{contract.PREDICTION_VALUE}_bucket"
        out.append({"series": selector(name, {**labels, "le": le_text}), "values": cumulative(at_or_below)})
    totals = [sum(minute) for minute in per_bucket]
    out.append(
        {"series": selector(f"{contract.PREDICTION_VALUE}_count", labels), "values": cumulative(totals)}
    )
    return out


def never_fired(name: str, minutes: int, matchers: str = "") -> dict:
    """A check at the end that the alert was never firing: ALERTS holds every evaluation's state."""
    return {
        "eval_time": f"{minutes}m",
        "expr": f'count_over_time(ALERTS{{alertname="{name}",alertstate="firing"{matchers}}}[{minutes}m])',
        "exp_samples": [],
    }


def nothing_firing(name: str, minute: int) -> dict:
    """A check that no instance of the alert fires at `minute` (pending ones may exist)."""
    return {
        "eval_time": f"{minute}m",
        "expr": f'ALERTS{{alertname="{name}",alertstate="firing"}}',
        "exp_samples": [],
    }


def firing(name: str, minute: int, **labels: str) -> dict:
    """A check that exactly one instance of the alert fires at `minute`: its severity plus `labels`."""
    series = {
        "__name__": "ALERTS",
        "alertname": name,
        "alertstate": "firing",
        **expected(name)["exp_labels"],
        **labels,
    }
    return {
        "eval_time": f"{minute}m",
        "expr": f'ALERTS{{alertname="{name}",alertstate="firing"}}',
        "exp_samples": [{"labels": selector("", series), "value": 1}],
    }


def drift(feature: str) -> LoadConfig:
    """The simulator's strong drift: `feature` shifted by its whole P10..P90 spread."""
    return LoadConfig(mode="feature-drift", drift_features=(feature,), drift_strength=1.0)


# --- FeatureDrift ------------------------------------------------------------------------------------

LOW_RATES = (30, 60)
SEEDS = (1, 2, 3, 4, 5)
SIX_HOURS = 6 * HOUR


def test_undrifted_low_traffic_never_fires(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    """30 and 60 requests an hour drawn from the reference, five seeds each, six hours: FeatureDrift
    never fires (the old rules, a 1e-4 share floor and no noise gate, fired in 10 of 10 of these runs)."""
    groups = [
        {
            "input_series": feature_series(bin_counts(rows(rate, SIX_HOURS, seed))),
            "promql_expr_test": [never_fired(alerts.ALERT_FEATURE_DRIFT, SIX_HOURS)],
        }
        for rate in LOW_RATES
        for seed in SEEDS
    ]
    run_unit_tests(promtool, rules, tmp_path, groups)


def test_strong_drift_at_60_an_hour_fires_within_two_hours_for_that_feature_only(
    promtool: str, rules: list[Path], tmp_path: Path
) -> None:
    minutes = 4 * HOUR
    groups = []
    for seed in SEEDS[:3]:
        traffic = rows(60, minutes, seed, changed=drift(DRIFTED_FEATURE), change_at=HOUR)
        groups.append(
            {
                "input_series": feature_series(bin_counts(traffic)),
                "promql_expr_test": [
                    firing(alerts.ALERT_FEATURE_DRIFT, HOUR + 2 * HOUR, feature=DRIFTED_FEATURE),
                    never_fired(alerts.ALERT_FEATURE_DRIFT, minutes, f',feature!="{DRIFTED_FEATURE}"'),
                    never_fired(alerts.ALERT_FEATURE_DRIFT, HOUR),  # nothing before the drift
                ],
            }
        )
    run_unit_tests(promtool, rules, tmp_path, groups)


def first_minute_above(per_minute: Sequence[Sequence[int]], condition) -> int:
    """The first minute whose trailing hour (promtool's 1h range at a minute holds the 60 minutes
    before it) satisfies `condition(counts)`."""
    for t in range(HOUR, len(per_minute) + 1):
        window = [sum(minute[b] for minute in per_minute[t - HOUR : t]) for b in range(len(per_minute[0]))]
        if condition(window):
            return t
    raise AssertionError("the condition never holds")


def old_psi(counts: Sequence[int]) -> float:
    """The PSI as the rules recorded it before the noise gate: shares floored at 1e-4, no smoothing."""
    total = sum(counts)
    shares = [max(c / total, OLD_SHARE_FLOOR) for c in counts]
    return sum((s - 0.1) * math.log(s / 0.1) for s in shares)


def test_busy_traffic_fires_as_fast_as_without_the_noise_gate(
    promtool: str, rules: list[Path], tmp_path: Path
) -> None:
    """6000 requests an hour, the same strong drift: the condition starts holding the same minute as the
    old rule's (PSI > 0.25 alone), and the alert fires exactly `for: 30m` later."""
    threshold = DEFAULT_SETTINGS.feature_drift_psi_threshold
    for_minutes = DEFAULT_SETTINGS.feature_drift_for_seconds // 60
    minutes = 2 * HOUR
    counts = bin_counts(rows(6000, minutes, seed=9, changed=drift(DRIFTED_FEATURE), change_at=HOUR))
    before = first_minute_above(counts[DRIFTED_FEATURE], lambda c: old_psi(c) > threshold)
    now = first_minute_above(
        counts[DRIFTED_FEATURE],
        lambda c: reference_psi(c) > max(threshold, noise.FEATURE_DRIFT_NOISE_CHI2 / sum(c)),
    )
    assert now == before
    assert HOUR < before <= HOUR + 20  # the strong drift crosses 0.25 within minutes
    name = alerts.ALERT_FEATURE_DRIFT
    group = {
        "input_series": feature_series(counts),
        "promql_expr_test": [
            nothing_firing(name, before + for_minutes - 1),  # still pending
            firing(name, before + for_minutes, feature=DRIFTED_FEATURE),
        ],
    }
    run_unit_tests(promtool, rules, tmp_path, [group])


# --- PredictionDistributionShift ---------------------------------------------------------------------

DAY = 24 * HOUR
SHIFT_UP = LoadConfig(mode="prediction-shift", shift_direction="up")


def day_then(rate_before: float, rate_after: float, seed: int, after: LoadConfig | None, hours: int) -> list:
    """A day and an hour of normal traffic at `rate_before`, then `hours` at `rate_after` in `after` mode
    (None: normal): the alert compares the last hours with the same hours of the first day."""
    history = rows(rate_before, DAY + HOUR, seed)
    return history + rows(rate_after, hours * HOUR, seed + 1000, changed=after)


def test_prediction_shift_needs_enough_predictions_in_both_hours(
    promtool: str, rules: list[Path], tmp_path: Path
) -> None:
    """Median comparisons of random traffic: at 60 predictions an hour (under the 241 minimum) neither
    noise nor a real shift fires; the same shift at 600 an hour fires, unless the reference hour held
    fewer than the minimum."""
    name = alerts.ALERT_PREDICTION_SHIFT
    assert noise.prediction_shift_min_count(DEFAULT_SETTINGS.prediction_shift_threshold) == 241
    end = DAY + 3 * HOUR
    cases = [
        (day_then(60, 60, seed, None, 2), None)
        for seed in SEEDS[:3]  # undrifted low traffic
    ]
    cases += [
        (day_then(60, 60, 4, SHIFT_UP, 2), None),  # a real shift, but too few predictions to tell
        (day_then(600, 600, 5, SHIFT_UP, 2), end),  # enough in both hours: it fires
        (day_then(120, 600, 6, SHIFT_UP, 2), None),  # enough now, too few in the reference hour
    ]
    groups = [
        {
            "input_series": prediction_series(traffic),
            "promql_expr_test": [
                firing(name, fires_at) if fires_at else never_fired(name, end),
            ],
        }
        for traffic, fires_at in cases
    ]
    # Every 5 minutes: a day of history is 300 evaluations, not 1500 (`for: 30m` is still six of them).
    run_unit_tests(promtool, rules, tmp_path, groups, evaluation_interval="5m")
