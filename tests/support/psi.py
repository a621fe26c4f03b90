"""The one independent PSI calculation the tests compare the recording rule against."""

import math
from collections.abc import Sequence

from dashboards.noise import PSI_PSEUDO_COUNT


def reference_psi(counts: Sequence[float], reference_shares: Sequence[float] | None = None) -> float:
    """PSI of the bin shares of `counts` against `reference_shares` (default: equal shares), each count
    smoothed by PSI_PSEUDO_COUNT (a) as the recording rule does: share = (count + a) / (total + a * bins),
    then the sum of (share - ref) * ln(share / ref)."""
    total = sum(counts)
    if total <= 0:
        raise ValueError("PSI of no observations")
    refs = reference_shares if reference_shares is not None else [1 / len(counts)] * len(counts)
    smoothed_total = total + PSI_PSEUDO_COUNT * len(counts)
    shares = [(c + PSI_PSEUDO_COUNT) / smoothed_total for c in counts]
    return sum((s - r) * math.log(s / r) for s, r in zip(shares, refs, strict=True))
