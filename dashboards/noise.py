"""How large the drift and shift signals get from sampling noise alone, at a window's sample count.

An alert on a statistic of an hour's traffic must not fire on what chance alone produces with that hour's
sample count n: a model that sees 60 requests an hour has a PSI of a few tenths from noise alone.

**FeatureDrift.** With B reference bins of share q_i (the deciles: q_i = 1/B) and n values drawn from the
reference itself, the bin counts c_i are multinomial(n, q). The PSI of the shares p_i = c_i / n is

    PSI = Σ (p_i - q_i) · ln(p_i / q_i) = Σ (p_i - q_i)² / q_i + O(|p - q|³),

and n · Σ (p_i - q_i)² / q_i is Pearson's X², asymptotically χ² with B - 1 degrees of freedom. So an
undrifted PSI is ≈ χ²(B - 1) / n: mean (B - 1) / n, and its 99.9th percentile FEATURE_DRIFT_NOISE_CHI2 / n.
The alert fires only when the PSI exceeds both the configured threshold and FEATURE_DRIFT_NOISE_CHI2 / n.

Shares are smoothed by adding PSI_PSEUDO_COUNT (½, the Jeffreys / Krichevsky-Trofimov prior) to every
bin's count: p_i = (c_i + ½) / (n + B/2). An empty bin then has a small positive share instead of being
floored (a share floored at 1e-4 adds (0.1 - 1e-4) · ln(0.1 / 1e-4) ≈ 0.69 to the PSI by itself). With
q_i = 1/B the smoothed share's deviation is (c_i - n q_i) / (n + B/2), so the smoothed PSI is
≈ X² · n / (n + B/2)², never above the unsmoothed X² / n: the χ² gate stays valid. A simulation (4·10⁵
undrifted hours per n) puts P(smoothed PSI > FEATURE_DRIFT_NOISE_CHI2 / n) at 0.10-0.13% for n = 60…1000
and below 0.01% for n ≤ 30, the χ² tail it is meant to have.

Below FEATURE_DRIFT_NOISE_CHI2 / threshold values an hour (112 at the default 0.25) the noise gate is the
stricter bound: a PSI above the threshold may still be noise, and the dashboard says "not enough data".
A drift can still alert there when it is large: all 60 values of an hour in one bin give a smoothed PSI
of 3.98, against a gate of 0.46.

**PredictionDistributionShift.** The sample median of n predictions has a standard error of
1 / (2 f √n), f the density of the predictions at their median. The alert compares two independent
hours, so their difference has a standard error of 1 / (f √(2n)) when both hold n predictions. For a
shift of the threshold t to stand out from that noise at the two-sided 99.9% level (z ≈ 3.29), both
hours need n ≥ z² / (2 f² t²) predictions. Predictions are probabilities in [0, 1]; spread evenly over
it they have f = 1 (the example model has f ≈ 1.1), which gives 241 predictions an hour at t = 0.15.
"""

import math
from statistics import NormalDist

from server import contract

# Both gates are set at the 99.9% level: an undrifted window crosses them once in a thousand.
NOISE_QUANTILE = 0.999

# --- FeatureDrift ------------------------------------------------------------------------------------

# Pearson's X² of B bins has B - 1 degrees of freedom.
FEATURE_DRIFT_NOISE_DEGREES_OF_FREEDOM = len(contract.FEATURE_BINS) - 1
# The NOISE_QUANTILE quantile of χ² with FEATURE_DRIFT_NOISE_DEGREES_OF_FREEDOM (9) degrees of freedom,
# scipy.stats.chi2.ppf(0.999, 9) = 27.8772 (scipy is not a dependency: tests/dashboards/test_noise.py
# checks it against the χ² distribution function, computed independently).
FEATURE_DRIFT_NOISE_CHI2 = 27.8772
# Pseudo-count added to every bin's count before the shares are taken (Jeffreys prior).
PSI_PSEUDO_COUNT = 0.5


def feature_drift_min_samples(threshold: float) -> int:
    """Values an hour from which the noise gate (FEATURE_DRIFT_NOISE_CHI2 / n) no longer exceeds the PSI
    `threshold`: below it, the PSI is "not enough data"."""
    return math.ceil(FEATURE_DRIFT_NOISE_CHI2 / threshold)


# --- PredictionDistributionShift ---------------------------------------------------------------------

# Assumed density of the predictions at their median: probabilities spread evenly over [0, 1].
PREDICTION_MEDIAN_DENSITY = 1.0


def prediction_shift_min_count(threshold: float) -> int:
    """Predictions both compared hours need so that a median difference of `threshold` is not sampling
    noise at the two-sided NOISE_QUANTILE level: z² / (2 f² t²)."""
    z = NormalDist().inv_cdf(1 - (1 - NOISE_QUANTILE) / 2)
    return math.ceil(z**2 / (2 * PREDICTION_MEDIAN_DENSITY**2 * threshold**2))
