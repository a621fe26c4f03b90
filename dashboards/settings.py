"""Alert thresholds and windows: the one typed object the dashboard, both rule renderers and infra share.

Defaults are the documented values; the stack config (infra) overrides them. Invalid values raise
`ValueError` naming the field and the allowed range, before anything is rendered or deployed.
"""

from dataclasses import dataclass, fields

from server import contract

# Fixed UIDs so panels, alert rules and the provisioned data source agree across deploys.
DATASOURCE_UID = "model-monitoring-prometheus"
DASHBOARD_UID = "model-monitoring"
RUNBOOKS_DASHBOARD_UID = "model-monitoring-runbooks"

# Windows that are part of the alert definitions (not tunables): the prediction-shift comparison is
# "median of the last hour vs the same hour one day earlier", and the drift recording rule is ":1h".
PREDICTION_SHIFT_WINDOW_SECONDS = 3600
PREDICTION_SHIFT_OFFSET_SECONDS = 86400
FEATURE_DRIFT_WINDOW_SECONDS = 3600
# The SLO error-ratio windows (Google SRE workbook ch. 5, as Sloth and Pyrra generate them); every one is
# a multiple of 300 s, so `slo_window_divisor` (any divisor of 300) keeps them whole seconds.
SLO_WINDOWS_SECONDS = (300, 1800, 3600, 7200, 21600, 86400, 259200)
# The error budget is counted over 30 days (the dashboard's "budget remaining").
SLO_PERIOD_SECONDS = 30 * 86400

# Exclusive (lower, upper) bounds of each threshold.
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "error_rate_threshold": (0.0, 1.0),
    "latency_p95_seconds": (0.0, float("inf")),
    "prediction_shift_threshold": (0.0, 1.0),
    "feature_drift_psi_threshold": (0.0, float("inf")),
}
# SLO targets: 0 turns the SLO (its recording rules and burn-rate alert) off, else 0.5 <= x < 1.
_SLO_FIELDS = ("availability_slo", "latency_slo")
_URL_FIELDS = ("runbook_base_url", "grafana_url")


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
    # Share of model API requests that are not 5xx (0 = no availability SLO).
    availability_slo: float = 0.999
    # Share of /predict requests faster than latency_p95_seconds (0 = no latency SLO).
    latency_slo: float = 0.99
    # Every SLO window (5m ... 3d) divided by this: 1 in production; tests and demos shrink them.
    slo_window_divisor: int = 1
    # Where runbook links point: "" = the Runbooks dashboard of this Grafana, else <base>/<AlertName>.md.
    runbook_base_url: str = ""
    # Grafana's root URL as users open it, for absolute links in notifications ("" = relative links).
    grafana_url: str = ""
    # The model API is served through the stack's gateway (job model-gateway, the Docker target): its
    # alert (ModelEndpointDown) and its dashboard row exist only then.
    gateway: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "gateway":
                if not isinstance(value, bool):
                    raise ValueError(f"gateway must be true or false, got {value!r}")
            elif f.name in _URL_FIELDS:
                if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
                    raise ValueError(f"{f.name} must be empty or an http(s):// URL, got {value!r}")
            elif f.name in _SLO_FIELDS:
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not (value == 0 or 0.5 <= value < 1)
                ):
                    raise ValueError(f"{f.name} must be 0 (off) or satisfy 0.5 <= x < 1, got {value!r}")
            elif f.name == "slo_window_divisor":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1 or 300 % value:
                    raise ValueError(
                        f"{f.name} must be a divisor of 300 (1, 2, 3, 4, 5, 6, 10, ...), got {value!r}"
                    )
            elif f.name in _FLOAT_RANGES:
                low, high = _FLOAT_RANGES[f.name]
                allowed = f"{low} < x < {high}" if high != float("inf") else f"x > {low}"
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{f.name} must be a number ({allowed}), got {value!r}")
                if not low < value < high:
                    raise ValueError(f"{f.name} must satisfy {allowed}, got {value!r}")
            # Whole seconds; a rate window needs two scrapes, so at least 2 s (tests use 1 s scrapes).
            elif isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{f.name} must be a whole number of seconds, at least 2, got {value!r}")
        if self.latency_p95_seconds not in contract.REQUEST_DURATION_BUCKETS:
            bounds = ", ".join(f"{b:g}" for b in contract.REQUEST_DURATION_BUCKETS)
            raise ValueError(
                f"latency_p95_seconds must be a bucket bound of {contract.REQUEST_DURATION} ({bounds}), "
                f"got {self.latency_p95_seconds!r}"
            )

    def slo_window(self, seconds: int) -> int:
        """An SLO window (one of SLO_WINDOWS_SECONDS) as this configuration runs it."""
        return seconds // self.slo_window_divisor


def promql_duration(seconds: int, *, days: bool = False) -> str:
    """Seconds as a PromQL/Grafana duration in the largest exact unit up to hours ("24h", "5m", "90s"),
    or up to days with `days` ("3d": the SLO windows' names)."""
    if seconds == 0:
        return "0s"
    units = (("d", 86400),) if days else ()
    for unit, size in (*units, ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# The documented defaults (frozen, so safe to share as a default argument).
DEFAULT_SETTINGS = AlertSettings()
