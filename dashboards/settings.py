"""Alert thresholds and windows: the one typed object the dashboard, both rule renderers and infra share.

Defaults are the documented values; the stack config (infra) overrides them. Invalid values raise
`ValueError` naming the field and the allowed range, before anything is rendered or deployed.
"""

from dataclasses import dataclass, fields

# Fixed UIDs so panels, alert rules and the provisioned data source agree across deploys.
DATASOURCE_UID = "model-monitoring-prometheus"
DASHBOARD_UID = "model-monitoring"

# Windows that are part of the alert definitions (not tunables): the prediction-shift comparison is
# "median of the last hour vs the same hour one day earlier", and the drift recording rule is ":1h".
PREDICTION_SHIFT_WINDOW_SECONDS = 3600
PREDICTION_SHIFT_OFFSET_SECONDS = 86400
FEATURE_DRIFT_WINDOW_SECONDS = 3600

# Exclusive (lower, upper) bounds of each threshold.
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "error_rate_threshold": (0.0, 1.0),
    "latency_p95_seconds": (0.0, float("inf")),
    "prediction_shift_threshold": (0.0, 1.0),
    "feature_drift_psi_threshold": (0.0, float("inf")),
}


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds (and their windows) for every alert; validated on construction."""

    # Share of 5xx responses among all model API requests, 0 < x < 1.
    error_rate_threshold: float = 0.05
    # P95 latency of /predict in seconds, > 0.
    latency_p95_seconds: float = 0.5
    # Absolute change of the median prediction vs 24h earlier, 0 < x < 1.
    prediction_shift_threshold: float = 0.15
    # Population stability index per feature, > 0 (0.1 = watch, 0.25 = significant).
    feature_drift_psi_threshold: float = 0.25
    # Rate window of the error-rate and latency alerts, in seconds (multiple of 60, >= 60).
    rate_window_seconds: int = 300
    # How long each condition must hold before the alert fires, in seconds (multiple of 60, >= 60).
    server_down_for_seconds: int = 60
    error_rate_for_seconds: int = 300
    latency_for_seconds: int = 300
    prediction_shift_for_seconds: int = 1800
    feature_drift_for_seconds: int = 1800

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _FLOAT_RANGES:
                low, high = _FLOAT_RANGES[f.name]
                allowed = f"{low} < x < {high}" if high != float("inf") else f"x > {low}"
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{f.name} must be a number ({allowed}), got {value!r}")
                if not low < value < high:
                    raise ValueError(f"{f.name} must satisfy {allowed}, got {value!r}")
            else:
                if isinstance(value, bool) or not isinstance(value, int) or value < 60 or value % 60:
                    raise ValueError(
                        f"{f.name} must be a whole number of minutes in seconds (60, 120, ...), got {value!r}"
                    )


def promql_duration(seconds: int) -> str:
    """Seconds as a PromQL/Grafana duration in the largest exact unit up to hours ("24h", "5m", "90s")."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# The documented defaults (frozen, so safe to share as a default argument).
DEFAULT_SETTINGS = AlertSettings()
