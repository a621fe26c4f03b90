"""Reference-decile binning: the drift signal behind ``model_feature_bin_total``.

Bin ``k`` of a feature holds values ``x`` with ``cut[k-1] < x <= cut[k]`` (bin 0 is everything up to
the first cut, bin 9 everything above the last), the same "less or equal" convention as Prometheus
histogram buckets. On training data each bin holds a tenth of the values, so a recording rule can
compare live shares against 0.1 (PSI) over any window, summed over workers and replicas.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence

# Index 0..len(cuts) of the bin ``value`` falls in. The C function itself rather than a Python
# wrapper around it: it runs for every feature of every request.
bin_index: Callable[[Sequence[float], float], int] = bisect_left
