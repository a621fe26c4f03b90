"""The one independent PSI calculation the tests compare the recording rule against."""

import math
from collections.abc import Sequence

from dashboards.queries import PSI_SHARE_FLOOR


def reference_psi(counts: Sequence[float], reference_shares: Sequence[float] | None = None) -> float:
    """PSI of the bin shares of `counts` against `reference_shares` (default: equal shares), each live share
    floored at PSI_SHARE_FLOOR as the recording rule does: sum of (share - ref) * ln(share / ref)."""
    total = sum(counts)
    if total <= 0:
        raise ValueError("PSI of no observations")
    refs = reference_shares if reference_shares is not None else [1 / len(counts)] * len(counts)
    shares = [max(c / total, PSI_SHARE_FLOOR) for c in counts]
    return sum((s - r) * math.log(s / r) for s, r in zip(shares, refs, strict=True))
