"""The wire contract: every metric name, label and bucket the server exports, its HTTP paths and headers.

Only what crosses the wire lives here (rule and alert names live with their definitions in dashboards/).
Dashboards, alert rules, the Prometheus config, the load generator and outside checks read these
constants, so a name is written here and nowhere else. No imports: infra reads it cheaply.
"""

# Prometheus scrape job and the port the server listens on inside its container.
JOB_NAME = "model-server"
SERVER_PORT = 8000
METRICS_PATH = "/metrics"
# Liveness: the Docker healthchecks (image and stack) and the load generator ask it.
HEALTH_PATH = "/health"
# Readiness: 200 once the model is loaded and its metric series exist, 503 before.
READY_PATH = "/ready"

# Request counter: status is the numeric HTTP code as a string ("200", "422", ...).
REQUESTS_TOTAL = "model_requests_total"
REQUESTS_LABELS = ("handler", "method", "status")

# Request latency histogram.
REQUEST_DURATION = "model_request_duration_seconds"
REQUEST_DURATION_LABELS = ("handler", "method")
REQUEST_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

# Histogram of every prediction (batch items included); predictions are probabilities in [0, 1].
PREDICTION_VALUE = "model_prediction_value"
PREDICTION_VALUE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

# Drift signal: one counter per feature and reference-decile bin ("0".."9").
FEATURE_BIN_TOTAL = "model_feature_bin_total"
FEATURE_BIN_LABELS = ("feature", "bin")
FEATURE_BINS = tuple(str(i) for i in range(10))

# Constant 1 gauge naming the loaded model.
MODEL_INFO = "model_info"
MODEL_INFO_LABELS = ("model", "version")

# Requests the HTTP layer refused before the app saw them, by reason: malformed (the parser's 400),
# headers_too_large (431), read_timeout (408 or closed: the request did not arrive in time), over_capacity
# (503 over the concurrency limit).
HTTP_REJECTED_TOTAL = "model_http_rejected_total"
HTTP_REJECTED_LABELS = ("reason",)
HTTP_REJECTED_REASONS = ("malformed", "headers_too_large", "read_timeout", "over_capacity")

# Handler label values: the route template for matched routes, one value for everything else
# so hostile URLs cannot create new series.
PREDICT_HANDLER = "/predict"
UNMATCHED_HANDLER = "unmatched"

# Chaos request headers (honoured only with MODEL_CHAOS_ENABLED, and only on a request whose token header
# carries the server's MODEL_CHAOS_TOKEN) and the values they accept: the server enforces them, the load
# generator sends them.
CHAOS_TOKEN_HEADER = "X-Chaos-Token"
CHAOS_DELAY_HEADER = "X-Chaos-Delay-Seconds"
CHAOS_STATUS_HEADER = "X-Chaos-Status"
CHAOS_MAX_DELAY_SECONDS = 5.0
CHAOS_STATUSES = (500, 503)

# The gateway (HAProxy) in front of the replicas on the Docker target: its Prometheus job, its two proxies
# (the model API frontend and the replicas' backend; HAProxy's exporter labels its series `proxy`) and
# the port of its exporter and health URI.
GATEWAY_JOB_NAME = "model-gateway"
GATEWAY_FRONTEND = "model-api"
GATEWAY_BACKEND = "model-servers"
GATEWAY_METRICS_PORT = 8405
GATEWAY_HEALTH_PATH = "/healthz"
