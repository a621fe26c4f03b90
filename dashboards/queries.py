"""Every PromQL string of the project, built once from the metric contract.

Panels, Grafana alert rules and Prometheus rule files import these; nothing else writes PromQL.
Functions take the range window so the dashboard can pass Grafana's `$__rate_interval` while alert
rules pass a fixed duration from `AlertSettings`, and a `Scope`: the dashboard reads the replicas its
`instance` / `version` variables select (DASHBOARD), alert and recording rules every replica (FLEET).
"""

from dataclasses import dataclass

from dashboards import noise
from dashboards.settings import (
    FEATURE_DRIFT_WINDOW_SECONDS,
    PREDICTION_SHIFT_OFFSET_SECONDS,
    PREDICTION_SHIFT_WINDOW_SECONDS,
    SLO_PERIOD_SECONDS,
    promql_duration,
)
from server import contract

# Grafana picks a range that always spans at least four scrapes; panels use it for rate()/increase().
RATE_INTERVAL = "$__rate_interval"

# Recording rules: the PSI of the last hour's bin shares against the reference (what FeatureDrift reads),
# and the helpers it and the prediction-shift alert are built from: the sample counts of the hour that
# their noise gates (dashboards.noise) read.
FEATURE_DRIFT_PSI = "model:feature_drift_psi:1h"
FEATURE_BIN_SHARE = "model:feature_bin_share:1h"
FEATURE_SAMPLES = "model:feature_samples:1h"
PREDICTION_MEDIAN = "model:prediction_median:1h"
PREDICTION_SAMPLES = "model:prediction_samples:1h"

_JOB = f'job="{contract.JOB_NAME}"'
# Model API traffic: every route but Prometheus' scrapes and the health probes (Docker, a load balancer),
# which would otherwise dilute the error share at low traffic.
_NOT_API = "|".join((contract.METRICS_PATH, contract.HEALTH_PATH, contract.READY_PATH))
_API = f'{_JOB},handler!~"{_NOT_API}"'
_PREDICT = f'{_JOB},handler="{contract.PREDICT_HANDLER}"'
_REFERENCE_SHARE = 1 / len(contract.FEATURE_BINS)


# --- scope: which replicas a query reads ------------------------------------------------------------

# The label that tells replicas apart (Prometheus' target label).
REPLICA_LABEL = "instance"
# The main dashboard's template variables (multi-value, with "All" = ALL_VALUE, a regex matching anything).
INSTANCE_VARIABLE = "instance"
VERSION_VARIABLE = "version"
ALL_VALUE = ".*"


@dataclass(frozen=True)
class Scope:
    """The replicas a query reads: `instance` is a regex over the scrape target's `instance` label,
    `version` a regex over the model version the replica reports in model_info; "" = no restriction.

    Only model_info carries `version`, so other series are restricted per replica with
    `unless on (instance) model_info{version!~"..."}`: drop the replicas that serve another version. It
    never multiplies or duplicates a series (sums stay exact, unlike a `* on (instance) group_left` join),
    and with ALL_VALUE it drops nothing, not even a replica that is down (its model_info is stale, its `up`
    still 0), so "All" reads exactly what the alert rules read.
    """

    instance: str = ""
    version: str = ""

    def selector(self, matchers: str) -> str:
        """`matchers` (label matchers, comma-separated) plus the instance restriction."""
        if not self.instance:
            return matchers
        return f'{matchers},{REPLICA_LABEL}=~"{self.instance}"'

    def info_selector(self) -> str:
        """Matchers of the model_info series in scope (model_info has the version label itself)."""
        version = f',version=~"{self.version}"' if self.version else ""
        return self.selector(_JOB) + version

    def restrict(self, vector: str) -> str:
        """`vector` (per-replica series, with `instance`) without the replicas serving another version."""
        if not self.version:
            return vector
        other_version = f'{contract.MODEL_INFO}{{{_JOB},version!~"{self.version}"}}'
        return f"{vector} unless on ({REPLICA_LABEL}) {other_version}"

    def range(self, function: str, metric: str, matchers: str, window: str) -> str:
        """`function(metric{matchers}[window])` per replica in scope, e.g. a rate()."""
        return self.restrict(f"{function}({metric}{{{self.selector(matchers)}}}[{window}])")


FLEET = Scope()
DASHBOARD = Scope(instance=f"${INSTANCE_VARIABLE}", version=f"${VERSION_VARIABLE}")


def instance_values() -> str:
    """The `instance` variable's values: every model-server scrape target, up or down."""
    return f"label_values(up{{{_JOB}}}, {REPLICA_LABEL})"


def version_values() -> str:
    """The `version` variable's values: every model version a replica reports."""
    return f"label_values({contract.MODEL_INFO}{{{_JOB}}}, version)"


def _shift_window() -> str:
    return promql_duration(PREDICTION_SHIFT_WINDOW_SECONDS)


# --- traffic -----------------------------------------------------------------------------------------


def request_rate_by_status(window: str = RATE_INTERVAL, scope: Scope = FLEET) -> str:
    """Requests per second to the model API, one series per HTTP status code."""
    return f"sum by (status) ({scope.range('rate', contract.REQUESTS_TOTAL, _API, window)})"


def predict_request_rate(window: str = RATE_INTERVAL, scope: Scope = FLEET) -> str:
    """/predict requests per second (a batch counts once), the replicas in scope together."""
    return f"sum({scope.range('rate', contract.REQUESTS_TOTAL, _PREDICT, window)})"


def prediction_rate(window: str = RATE_INTERVAL, scope: Scope = FLEET) -> str:
    """Predictions per second (every batch item counts), the replicas in scope together."""
    return f"sum({scope.range('rate', f'{contract.PREDICTION_VALUE}_count', _JOB, window)})"


def _sum(per_replica: bool) -> str:
    """`sum`, or `sum by (instance) ` to keep one series per replica (an alert then names the replica)."""
    return f"sum by ({REPLICA_LABEL}) " if per_replica else "sum"


def _status_class_ratio(status_regex: str, window: str, scope: Scope, per_replica: bool = False) -> str:
    # `or <zero>`: before the first error there is no such series, and the share is 0, not "no data".
    status = f'{_API},status=~"{status_regex}"'
    errors = f"{_sum(per_replica)}({scope.range('rate', contract.REQUESTS_TOTAL, status, window)})"
    total = f"{_sum(per_replica)}({scope.range('rate', contract.REQUESTS_TOTAL, _API, window)})"
    zero = f"{total} * 0" if per_replica else "vector(0)"
    return f"({errors} or {zero}) / {total}"


def server_error_ratio(window: str = RATE_INTERVAL, scope: Scope = FLEET, per_replica: bool = False) -> str:
    """Share (0..1) of model API requests answered with 5xx; 4xx are the client's fault and excluded.
    `per_replica`: one series per replica (`instance`), else the replicas in scope together."""
    return _status_class_ratio("5..", window, scope, per_replica)


def client_error_ratio(window: str = RATE_INTERVAL, scope: Scope = FLEET) -> str:
    """Share (0..1) of model API requests rejected with 4xx (bad input); shown, never alerted on."""
    return _status_class_ratio("4..", window, scope)


# --- latency -----------------------------------------------------------------------------------------


def predict_latency_quantile(
    quantile: float, window: str = RATE_INTERVAL, scope: Scope = FLEET, per_replica: bool = False
) -> str:
    """Latency quantile (seconds) of /predict (any method) across the replicas in scope, or per replica."""
    rates = scope.range("rate", f"{contract.REQUEST_DURATION}_bucket", _PREDICT, window)
    by = f"{REPLICA_LABEL}, le" if per_replica else "le"
    return f"histogram_quantile({quantile}, sum by ({by}) ({rates}))"


# --- predictions -------------------------------------------------------------------------------------


def prediction_heatmap(window: str = RATE_INTERVAL, scope: Scope = FLEET) -> str:
    """Predictions per histogram bucket and interval, for a heatmap panel (format heatmap, legend {{le}})."""
    increases = scope.range("increase", f"{contract.PREDICTION_VALUE}_bucket", _JOB, window)
    return f"sum by (le) ({increases})"


def prediction_median_expr(scope: Scope = FLEET) -> str:
    """Median prediction over the shift window; recorded as PREDICTION_MEDIAN (FLEET), computed on the fly
    for the replicas the dashboard selects."""
    rates = scope.range("rate", f"{contract.PREDICTION_VALUE}_bucket", _JOB, _shift_window())
    return f"histogram_quantile(0.5, sum by (le) ({rates}))"


def prediction_median() -> str:
    """The recorded median prediction of the last hour."""
    return PREDICTION_MEDIAN


def prediction_samples_expr() -> str:
    """Predictions (batch items included) over the shift window, all replicas; recorded as
    PREDICTION_SAMPLES."""
    return f"sum(increase({contract.PREDICTION_VALUE}_count{{{_JOB}}}[{_shift_window()}]))"


def prediction_shift(threshold: float) -> str:
    """|median of the last hour - the same median 24h earlier|; empty unless the server already reported
    predictions a full window before the reference hour, so a fresh deploy compares nothing, and unless
    both hours hold `noise.prediction_shift_min_count(threshold)` predictions (fewer, and a difference of
    `threshold` is within the medians' sampling noise).

    The history gate is explicit rather than relying on the offset series being absent: a reference
    median built from a few minutes of a first day would otherwise be compared like a full hour.
    """
    offset = promql_duration(PREDICTION_SHIFT_OFFSET_SECONDS)
    gate_offset = promql_duration(PREDICTION_SHIFT_OFFSET_SECONDS + PREDICTION_SHIFT_WINDOW_SECONDS)
    minimum = noise.prediction_shift_min_count(threshold)
    diff = f"abs({PREDICTION_MEDIAN} - {PREDICTION_MEDIAN} offset {offset})"
    gate = f"absent_over_time({contract.PREDICTION_VALUE}_count{{{_JOB}}}[10m] offset {gate_offset})"
    current = f"{PREDICTION_SAMPLES} >= {minimum}"
    reference = f"{PREDICTION_SAMPLES} offset {offset} >= {minimum}"
    enough = f"on () ({current}) and on () ({reference})"
    # Parenthesized: `unless` and `and` bind looser than the comparison an alert appends.
    return f"(({diff} unless on () {gate}) and {enough})"


# --- drift -------------------------------------------------------------------------------------------


def feature_samples_expr(scope: Scope = FLEET) -> str:
    """Values of each feature over the drift window (one per row, batch items included), summed over
    workers and replicas: the n of the PSI's noise gate; recorded as FEATURE_SAMPLES."""
    window = promql_duration(FEATURE_DRIFT_WINDOW_SECONDS)
    return f"sum by (feature) ({scope.range('increase', contract.FEATURE_BIN_TOTAL, _JOB, window)})"


def feature_samples(scope: Scope = FLEET) -> str:
    """The values per feature of the last hour: recorded for the fleet, computed for any other scope."""
    return FEATURE_SAMPLES if scope == FLEET else feature_samples_expr(scope)


def feature_bin_share_expr(scope: Scope = FLEET) -> str:
    """Smoothed share of each feature's values per reference-decile bin over the drift window, summed
    over workers and replicas: (count + ½) / (n + bins/2), so an empty bin keeps PSI finite without a
    floor (see dashboards.noise); recorded as FEATURE_BIN_SHARE."""
    window = promql_duration(FEATURE_DRIFT_WINDOW_SECONDS)
    pseudo = f"{noise.PSI_PSEUDO_COUNT!r}"
    pseudo_total = f"{noise.PSI_PSEUDO_COUNT * len(contract.FEATURE_BINS)!r}"
    per_bin = f"sum by (feature, bin) ({scope.range('increase', contract.FEATURE_BIN_TOTAL, _JOB, window)})"
    samples = feature_samples(scope)
    return f"({per_bin} + {pseudo}) / on (feature) group_left () ({samples} + {pseudo_total})"


def feature_drift_psi_expr(scope: Scope = FLEET) -> str:
    """PSI per feature: sum over bins of (share - ref) * ln(share / ref), ref = 1/len(FEATURE_BINS);
    recorded as FEATURE_DRIFT_PSI (it reads the recorded shares; any other scope computes them)."""
    ref = f"{_REFERENCE_SHARE:g}"
    share = FEATURE_BIN_SHARE if scope == FLEET else f"({feature_bin_share_expr(scope)})"
    return f"sum by (feature) (({share} - {ref}) * ln({share} / {ref}))"


def feature_drift_psi(scope: Scope = FLEET) -> str:
    """The PSI per feature: recorded for the fleet, computed for any other scope."""
    return FEATURE_DRIFT_PSI if scope == FLEET else feature_drift_psi_expr(scope)


def feature_drift_noise_bound() -> str:
    """The PSI that sampling noise alone stays under in 99.9% of undrifted hours at each feature's n:
    FEATURE_DRIFT_NOISE_CHI2 / n (+Inf for an hour without values)."""
    return f"({noise.FEATURE_DRIFT_NOISE_CHI2!r} / {FEATURE_SAMPLES})"


def feature_drift_beyond_noise() -> str:
    """The PSI per feature where it exceeds feature_drift_noise_bound(); what FeatureDrift compares with
    its threshold."""
    return f"({FEATURE_DRIFT_PSI} > on (feature) {feature_drift_noise_bound()})"


# --- SLOs (multiwindow, multi-burn-rate: Google SRE workbook ch. 5) ---------------------------------

AVAILABILITY, LATENCY = "availability", "latency"


def slo_error_ratio_record(sli: str, window_seconds: int) -> str:
    """Name of the recorded error ratio of `sli` over a window, Sloth/Pyrra style
    ("model:availability_error_ratio:rate5m")."""
    return f"model:{sli}_error_ratio:rate{promql_duration(window_seconds, days=True)}"


def _le(bound: float) -> str:
    # As prometheus-client writes the bucket label: repr of the float ("0.5", "1.0", "10.0").
    return repr(float(bound))


def availability_error_ratio_expr(window: str, scope: Scope = FLEET) -> str:
    """Share of model API requests answered with 5xx over `window` (the availability SLI's complement)."""
    return server_error_ratio(window, scope)


def latency_error_ratio_expr(bound_seconds: float, window: str, scope: Scope = FLEET) -> str:
    """Share of /predict requests slower than `bound_seconds` (a bucket bound) over `window`."""
    duration = contract.REQUEST_DURATION
    total = f"sum({scope.range('rate', f'{duration}_count', _PREDICT, window)})"
    bound = f'{_PREDICT},le="{_le(bound_seconds)}"'
    fast = f"sum({scope.range('rate', f'{duration}_bucket', bound, window)})"
    return f"({total} - {fast}) / {total}"


def slo_error_ratio_expr(sli: str, window: str, latency_bound_seconds: float, scope: Scope = FLEET) -> str:
    """The error ratio of `sli` (AVAILABILITY or LATENCY) over `window`."""
    if sli == AVAILABILITY:
        return availability_error_ratio_expr(window, scope)
    return latency_error_ratio_expr(latency_bound_seconds, window, scope)


def slo_error_ratio(
    sli: str, window_seconds: int, scope: Scope = FLEET, latency_bound_seconds: float | None = None
) -> str:
    """The error ratio of `sli` over a window: the recorded series for the fleet (what the alerts read),
    computed from the raw series for any other scope (the recording rules keep no `instance`)."""
    if scope == FLEET:
        return slo_error_ratio_record(sli, window_seconds)
    window = promql_duration(window_seconds)
    return f"({slo_error_ratio_expr(sli, window, latency_bound_seconds, scope)})"


def burn_rate(
    sli: str,
    window_seconds: int,
    budget: float,
    scope: Scope = FLEET,
    latency_bound_seconds: float | None = None,
) -> str:
    """How fast the error budget (1 - SLO) burns over a window: 1 = the budget lasts exactly the period."""
    return f"{slo_error_ratio(sli, window_seconds, scope, latency_bound_seconds)} / {budget!r}"


def multiwindow_burn(
    sli: str, budget: float, tiers: tuple[tuple[float, int, int], ...], severity: str
) -> str:
    """The burn rate over the long window of the first tier (factor, long, short seconds) whose long and
    short windows both burn faster than `factor`, labelled `severity`; empty while no tier holds."""
    conditions = [
        f"({burn_rate(sli, long, budget)} > {factor!r} and {burn_rate(sli, short, budget)} > {factor!r})"
        for factor, long, short in tiers
    ]
    return f'label_replace({" or ".join(conditions)}, "severity", "{severity}", "", "")'


def error_budget_remaining(
    sli: str, budget: float, latency_bound_seconds: float, scope: Scope = FLEET
) -> str:
    """Share of the 30-day error budget left (1 = untouched, < 0 = overspent)."""
    period = promql_duration(SLO_PERIOD_SECONDS)
    return f"1 - ({slo_error_ratio_expr(sli, period, latency_bound_seconds, scope)}) / {budget!r}"


def sli(
    sli_name: str, window_seconds: int, scope: Scope = FLEET, latency_bound_seconds: float | None = None
) -> str:
    """The SLI itself (share of good requests) over an SLO window."""
    return f"1 - {slo_error_ratio(sli_name, window_seconds, scope, latency_bound_seconds)}"


# --- fleet -------------------------------------------------------------------------------------------


def target_up(scope: Scope = FLEET) -> str:
    """1 per scraped model-server replica that answered its last scrape, 0 when it did not."""
    return scope.restrict(f"up{{{scope.selector(_JOB)}}}")


def replicas_up(scope: Scope = FLEET) -> str:
    """Number of model-server replicas answering scrapes."""
    return f"sum({target_up(scope)})"


def model_versions(scope: Scope = FLEET) -> str:
    """Replicas serving each model name/version."""
    return f"count by (model, version) ({contract.MODEL_INFO}{{{scope.info_selector()}}})"


# --- gateway (HAProxy's own exporter, Docker target) -------------------------------------------------

_GATEWAY = f'job="{contract.GATEWAY_JOB_NAME}"'
_GATEWAY_FRONTEND = f'{_GATEWAY},proxy="{contract.GATEWAY_FRONTEND}"'
_GATEWAY_BACKEND = f'{_GATEWAY},proxy="{contract.GATEWAY_BACKEND}"'


def gateway_response_rate(window: str = RATE_INTERVAL) -> str:
    """Responses per second the gateway sent clients, one series per class ("2xx" ... "5xx")."""
    return f"sum by (code) (rate(haproxy_frontend_http_responses_total{{{_GATEWAY_FRONTEND}}}[{window}]))"


def gateway_server_error_ratio(window: str = RATE_INTERVAL) -> str:
    """Share of the gateway's responses that were 5xx: what clients saw, its own 503s included."""
    responses = "haproxy_frontend_http_responses_total"
    errors = f'sum(rate({responses}{{{_GATEWAY_FRONTEND},code="5xx"}}[{window}]))'
    return f"{errors} / sum(rate({responses}{{{_GATEWAY_FRONTEND}}}[{window}]))"


def gateway_backends_up() -> str:
    """Replica containers in the gateway's pool that pass its health check."""
    return f"sum(haproxy_backend_active_servers{{{_GATEWAY_BACKEND}}})"


def gateway_retries(window: str = RATE_INTERVAL) -> str:
    """Requests per second the gateway resent (a connection failed) or sent to another replica."""
    backend = _GATEWAY_BACKEND
    retries = f"rate(haproxy_backend_retry_warnings_total{{{backend}}}[{window}])"
    redispatches = f"rate(haproxy_backend_redispatch_warnings_total{{{backend}}}[{window}])"
    return f"sum({retries}) + sum({redispatches})"


def gateway_queue_time() -> str:
    """Average seconds a request waited in the gateway's queue (its last 1024 requests)."""
    return f"max(haproxy_backend_queue_time_average_seconds{{{_GATEWAY_BACKEND}}})"


def gateway_connect_time() -> str:
    """Average seconds the gateway took to connect to a replica (its last 1024 connections)."""
    return f"max(haproxy_backend_connect_time_average_seconds{{{_GATEWAY_BACKEND}}})"


def endpoint_up() -> str:
    """At least 1 while the model API answers through the gateway (Prometheus reaches it and it has a
    healthy replica), 0 otherwise: the two series differ in labels, so `or` keeps both and `min` takes
    the worse; with the gateway unreachable its pool series are gone and `up` is 0."""
    return f"min({gateway_backends_up()} or up{{{_GATEWAY}}})"
