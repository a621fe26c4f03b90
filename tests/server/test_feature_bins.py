"""Reference-decile binning as the recorder counts it: bin k holds cut[k-1] < x <= cut[k] (`le`)."""

import dataclasses

import pytest

from server import contract, metrics
from server.model import load_model
from server.settings import DEFAULT_MODEL_PATH

CUTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _bin_counts(feature: str) -> dict[str, float]:
    return {b: metrics.FEATURE_BINS.labels(feature, b)._value.get() for b in contract.FEATURE_BINS}


def _recorded_bin(recorder: metrics.PredictionRecorder, feature: str, row: list[float]) -> str:
    """The one bin of `feature` whose counter moved when `row` was recorded (counters are process-wide)."""
    before = _bin_counts(feature)
    recorder.record([row], [0.5])
    moved = [b for b, v in _bin_counts(feature).items() if v != before[b]]
    assert len(moved) == 1, moved
    return moved[0]


@pytest.fixture(scope="module")
def recorder() -> metrics.PredictionRecorder:
    base = load_model(DEFAULT_MODEL_PATH)
    n = len(base.feature_names)
    # Feature 0 uses CUTS, feature 1 the same cuts times ten: each feature is binned by its own cuts.
    cuts = (CUTS, tuple(10 * c for c in CUTS), *base.reference_deciles[2:])
    return metrics.PredictionRecorder(dataclasses.replace(base, reference_deciles=cuts[:n]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-5.0, "0"),
        (0.05, "0"),
        (0.1, "0"),  # a value equal to a cut point belongs to the bin below (`le` convention)
        (0.1000001, "1"),
        (0.45, "4"),
        (0.9, "8"),
        (0.95, "9"),
        (1e9, "9"),
    ],
)
def test_values_land_in_their_decile_bin(recorder, value, expected):
    name = load_model(DEFAULT_MODEL_PATH).feature_names[0]
    assert _recorded_bin(recorder, name, [value, 0.0, 0.0]) == expected


def test_each_feature_uses_its_own_cuts(recorder):
    names = load_model(DEFAULT_MODEL_PATH).feature_names
    assert [_recorded_bin(recorder, name, [0.55, 0.55, 0.0]) for name in names[:2]] == ["5", "0"]
