"""The noise gates' constants (dashboards/noise.py) against independent computations."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

from dashboards import noise
from server import contract
from tests.support.psi import reference_psi


def chi2_cdf(x: float, degrees_of_freedom: int) -> float:
    """P(χ²_k <= x) as the regularized lower incomplete gamma function P(k/2, x/2), by its power series
    P(s, y) = y^s e^-y / Γ(s + 1) * Σ_j y^j / ((s + 1) ... (s + j))."""
    s, y = degrees_of_freedom / 2, x / 2
    term, total, j = 1.0, 1.0, 0
    while term > 1e-17 * total:
        j += 1
        term *= y / (s + j)
        total += term
    return math.exp(s * math.log(y) - y - math.lgamma(s + 1)) * total


def test_chi2_cdf_matches_the_closed_forms() -> None:
    # The helper itself, where the χ² distribution function is elementary: k = 2 and k = 1.
    for x in (0.5, 3.0, 27.0):
        assert math.isclose(chi2_cdf(x, 2), 1 - math.exp(-x / 2), rel_tol=1e-12)
        assert math.isclose(chi2_cdf(x, 1), math.erf(math.sqrt(x / 2)), rel_tol=1e-12)


def test_the_chi2_constant_is_the_quantile_of_the_contract_bins() -> None:
    assert noise.FEATURE_DRIFT_NOISE_DEGREES_OF_FREEDOM == len(contract.FEATURE_BINS) - 1 == 9
    # 27.8772 is chi2.ppf(0.999, 9) rounded to 4 decimals: its CDF is 0.999 within the rounding.
    cdf = chi2_cdf(noise.FEATURE_DRIFT_NOISE_CHI2, noise.FEATURE_DRIFT_NOISE_DEGREES_OF_FREEDOM)
    assert abs(cdf - noise.NOISE_QUANTILE) < 1e-7
    # Wilson-Hilferty's normal approximation of the same quantile agrees to 1%.
    k, z = noise.FEATURE_DRIFT_NOISE_DEGREES_OF_FREEDOM, NormalDist().inv_cdf(noise.NOISE_QUANTILE)
    wilson_hilferty = k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3
    assert math.isclose(noise.FEATURE_DRIFT_NOISE_CHI2, wilson_hilferty, rel_tol=0.01)


def test_undrifted_smoothed_psi_crosses_the_gate_about_once_in_a_thousand_hours() -> None:
    """Multinomial hours drawn from the reference: the smoothed PSI exceeds CHI2 / n about as often as
    the 99.9% quantile says (0.1%), and never with a handful of values."""
    rng = random.Random(20261202)
    bins = len(contract.FEATURE_BINS)
    hours = 20_000
    for n, low, high in ((60, 5, 60), (15, 0, 0)):
        crossed = 0
        for _ in range(hours):
            counts = [0] * bins
            for _ in range(n):
                counts[rng.randrange(bins)] += 1
            crossed += reference_psi(counts) > noise.FEATURE_DRIFT_NOISE_CHI2 / n
        assert low <= crossed <= high, (n, crossed)


def test_minimum_counts_follow_the_thresholds() -> None:
    assert noise.feature_drift_min_samples(0.25) == 112  # 27.8772 / 0.25 = 111.5
    assert noise.feature_drift_min_samples(0.1) == 279
    # z = 3.29 (two-sided 99.9%), f = 1: 3.29² / (2 * 0.15²) = 240.6.
    assert noise.prediction_shift_min_count(0.15) == 241
    assert noise.prediction_shift_min_count(0.3) == 61


def test_the_median_shift_minimum_holds_its_noise_level() -> None:
    """Two independent hours of the minimum count of uniform predictions: their sample medians differ by
    more than the threshold in about 0.1% of pairs (the two-sided level the minimum is derived for)."""
    rng = random.Random(7)
    threshold = 0.15
    n = noise.prediction_shift_min_count(threshold)
    pairs = 4000
    beyond = 0
    for _ in range(pairs):
        a = sorted(rng.random() for _ in range(n))[n // 2]
        b = sorted(rng.random() for _ in range(n))[n // 2]
        beyond += abs(a - b) > threshold
    assert beyond <= 0.005 * pairs, beyond
