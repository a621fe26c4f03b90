"""HTTP behaviour and the metrics it produces (in-process app, its own registry)."""

import json
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import contract
from tests.support.server import CHAOS_TOKEN

from .conftest import VALID, value

PREDICT = contract.PREDICT_HANDLER


def requests(client, status: int, handler: str = PREDICT, method: str = "POST") -> float:
    return value(client, contract.REQUESTS_TOTAL, handler=handler, method=method, status=str(status))


def families(client) -> dict:
    response = client.get(contract.METRICS_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def test_predict_single_and_batch(client):
    single = client.post(PREDICT, json=VALID)
    assert single.status_code == 200
    body = single.json()
    assert set(body) == {"prediction", "model_version"}
    assert 0.0 <= body["prediction"] <= 1.0
    assert body["model_version"] == client.app.state.server.model.version

    batch = client.post(PREDICT, json={"instances": [VALID["features"], [0.1, 0.9, 0.2]]})
    assert batch.status_code == 200
    assert batch.json()["predictions"][0] == pytest.approx(body["prediction"])
    assert len(batch.json()["predictions"]) == 2


def test_health_and_ready(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    model = client.app.state.server.model
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model": model.name, "version": model.version}


def test_ready_is_503_before_start_up():
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import ServerSettings

    client = TestClient(create_app(ServerSettings()))  # no `with`: the lifespan has not run
    assert client.get("/ready").status_code == 503


def test_every_family_has_the_contract_names_labels_and_buckets(client):
    client.post(PREDICT, json=VALID)
    fams = families(client)
    # The parser drops the `_total` suffix from counter family names.
    requests_family = fams[contract.REQUESTS_TOTAL.removesuffix("_total")]
    assert requests_family.type == "counter"
    assert {tuple(sorted(s.labels)) for s in requests_family.samples} == {
        tuple(sorted(contract.REQUESTS_LABELS))
    }

    duration = fams[contract.REQUEST_DURATION]
    assert duration.type == "histogram"
    les = [
        s.labels["le"]
        for s in duration.samples
        if s.name.endswith("_bucket") and s.labels["handler"] == PREDICT
    ]
    assert [float(le) for le in les] == [*contract.REQUEST_DURATION_BUCKETS, math.inf]
    assert {k for s in duration.samples for k in s.labels} == {*contract.REQUEST_DURATION_LABELS, "le"}

    prediction = fams[contract.PREDICTION_VALUE]
    assert prediction.type == "histogram"
    les = [float(s.labels["le"]) for s in prediction.samples if s.name.endswith("_bucket")]
    assert les == [*contract.PREDICTION_VALUE_BUCKETS, math.inf]

    bins = fams[contract.FEATURE_BIN_TOTAL.removesuffix("_total")]
    assert bins.type == "counter"
    model = client.app.state.server.model
    # Every feature x bin series exists (created at start-up, before any traffic).
    assert {(s.labels["feature"], s.labels["bin"]) for s in bins.samples} == {
        (f, b) for f in model.feature_names for b in contract.FEATURE_BINS
    }

    info = fams[contract.MODEL_INFO]
    assert info.type == "gauge"
    assert [(s.labels, s.value) for s in info.samples if s.labels["model"] == model.name] == [
        ({"model": model.name, "version": model.version}, 1.0)
    ]
    assert not any(s.name.endswith("_created") for f in fams.values() for s in f.samples)


def test_valid_requests_are_counted_and_observed(client):
    before = requests(client, 200), value(client, contract.PREDICTION_VALUE + "_count")
    duration_before = value(client, contract.REQUEST_DURATION + "_count", handler=PREDICT, method="POST")
    for _ in range(3):
        client.post(PREDICT, json=VALID)
    assert requests(client, 200) - before[0] == 3
    assert value(client, contract.PREDICTION_VALUE + "_count") - before[1] == 3
    assert (
        value(client, contract.REQUEST_DURATION + "_count", handler=PREDICT, method="POST") - duration_before
        == 3
    )


def test_every_batch_item_is_observed(client):
    rows = [[i / 10, 0.2, 0.5] for i in range(10)]
    before_requests = requests(client, 200)
    before = value(client, contract.PREDICTION_VALUE + "_count")
    before_sum = value(client, contract.PREDICTION_VALUE + "_sum")
    predictions = client.post(PREDICT, json={"instances": rows}).json()["predictions"]
    assert requests(client, 200) - before_requests == 1  # one request ...
    assert value(client, contract.PREDICTION_VALUE + "_count") - before == 10  # ... ten predictions
    assert value(client, contract.PREDICTION_VALUE + "_sum") - before_sum == pytest.approx(sum(predictions))


def test_feature_values_land_in_their_reference_bins(client):
    model = client.app.state.server.model
    cuts = model.reference_deciles
    # Exactly on a cut point -> the bin below; just above the last cut -> bin 9; far below -> bin 0.
    row = [cuts[0][3], cuts[1][-1] + 1e-3, -100.0]
    expected = {("f0", "3"), ("f1", "9"), ("f2", "0")}
    assert {
        (f, str(sum(x > cut for cut in c))) for f, c, x in zip(model.feature_names, cuts, row, strict=True)
    } == expected
    before = {(f, b): value(client, contract.FEATURE_BIN_TOTAL, feature=f, bin=b) for f, b in expected}
    total_before = sum(
        value(client, contract.FEATURE_BIN_TOTAL, feature=f, bin=b)
        for f in model.feature_names
        for b in contract.FEATURE_BINS
    )
    client.post(PREDICT, json={"instances": [row, row]})
    for key, old in before.items():
        assert value(client, contract.FEATURE_BIN_TOTAL, feature=key[0], bin=key[1]) - old == 2
    total = sum(
        value(client, contract.FEATURE_BIN_TOTAL, feature=f, bin=b)
        for f in model.feature_names
        for b in contract.FEATURE_BINS
    )
    assert total - total_before == 6  # 2 rows x 3 features, nothing else moved


BAD_BODIES = {
    "too short": {"features": [0.5, 0.3]},
    "too long": {"features": [0.5, 0.3, 0.7, 0.1]},
    "string": {"features": ["0.5", 0.3, 0.7]},
    "boolean": {"features": [True, 0.3, 0.7]},
    "null": {"features": [None, 0.3, 0.7]},
    "missing key": {"values": [0.5, 0.3, 0.7]},
    "both keys": {"features": [0.5, 0.3, 0.7], "instances": [[0.5, 0.3, 0.7]]},
    "not an object": [0.5, 0.3, 0.7],
    "empty batch": {"instances": []},
    "bad batch row": {"instances": [[0.5, 0.3, 0.7], [0.5, 0.3]]},
    "batch over the limit": {"instances": [[0.5, 0.3, 0.7]] * 101},
}
RAW_BODIES = {
    "NaN": b'{"features": [NaN, 0.3, 0.7]}',
    "Infinity": b'{"features": [Infinity, 0.3, 0.7]}',
    "overflows to inf": b'{"features": [1e999, 0.3, 0.7]}',
    "huge integer": b'{"features": [1' + b"0" * 400 + b", 0.3, 0.7]}",
    "non-JSON": b"features=0.5,0.3,0.7",
    "truncated JSON": b'{"features": [0.5, 0.3',
    "empty body": b"",
}


@pytest.mark.parametrize("kind", [*BAD_BODIES, *RAW_BODIES])
def test_bad_input_gets_422_with_a_reason_and_is_counted(client, kind):
    before_422 = requests(client, 422)
    before_predictions = value(client, contract.PREDICTION_VALUE + "_count")
    if kind in BAD_BODIES:
        response = client.post(PREDICT, json=BAD_BODIES[kind])
    else:
        response = client.post(
            PREDICT, content=RAW_BODIES[kind], headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail
    assert all(isinstance(d["msg"], str) and d["msg"] and d["loc"][0] == "body" for d in detail)
    assert requests(client, 422) - before_422 == 1
    assert value(client, contract.PREDICTION_VALUE + "_count") == before_predictions


def test_reasons_say_what_is_wrong(client):
    assert client.post(PREDICT, json=BAD_BODIES["too short"]).json()["detail"][0]["type"] == "too_short"
    assert client.post(PREDICT, json=BAD_BODIES["string"]).json()["detail"][0]["type"] == "float_type"
    raw = client.post(PREDICT, content=RAW_BODIES["NaN"], headers={"content-type": "application/json"})
    assert raw.json()["detail"][0]["type"] == "finite_number"
    over = client.post(PREDICT, json=BAD_BODIES["batch over the limit"])
    assert over.json()["detail"][0]["msg"] == "List should have at most 100 items after validation, not 101"


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_gets_413_and_is_counted_under_the_route(client, chunked):
    limit = client.app.state.server.settings.max_body_bytes
    body = json.dumps({"features": [0.5] * (limit // 4)}).encode()
    assert len(body) > limit
    before = requests(client, 413)
    # A generator is sent with chunked transfer encoding (no Content-Length to check up front).
    content = iter([body[: limit // 2], body[limit // 2 :]]) if chunked else body
    response = client.post(PREDICT, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]
    assert requests(client, 413) - before == 1


def test_status_label_is_the_numeric_code_and_handler_the_route_template(client):
    before_405 = requests(client, 405, method="GET")
    before_404 = requests(client, 404, handler=contract.UNMATCHED_HANDLER, method="GET")
    before_other = requests(client, 405, "/health", "other")
    client.get(PREDICT)  # 405
    client.get("/no/such/path")  # 404
    client.request("BREW", "/health")  # unknown method folded into one label value
    assert requests(client, 405, method="GET") - before_405 == 1
    assert requests(client, 404, handler=contract.UNMATCHED_HANDLER, method="GET") - before_404 == 1
    assert requests(client, 405, "/health", "other") - before_other == 1
    statuses = {s.labels["status"] for s in families(client)["model_requests"].samples}
    assert all(s.isdigit() for s in statuses)
    methods = {s.labels["method"] for s in families(client)["model_requests"].samples}
    assert "BREW" not in methods
    assert "other" in methods


def test_unknown_methods_are_counted_without_growing_the_label_cache(client):
    from server.metrics import MetricsMiddleware

    middleware = client.app.middleware_stack
    while not isinstance(middleware, MetricsMiddleware):
        middleware = middleware.app
    client.request("BREW", "/health")
    before, cached = requests(client, 405, "/health", "other"), len(middleware._children)
    for i in range(20):
        client.request(f"BREW{i}", "/health")
    assert requests(client, 405, "/health", "other") - before == 20
    assert len(middleware._children) == cached


def test_chaos_is_off_by_default_and_headers_are_ignored(client):
    before = requests(client, 200)
    response = client.post(
        PREDICT, json=VALID, headers={"X-Chaos-Status": "503", "X-Chaos-Delay-Seconds": "9"}
    )
    assert response.status_code == 200
    assert requests(client, 200) - before == 1


@pytest.mark.parametrize(
    "token", [None, "", "wrong", CHAOS_TOKEN[:-1], CHAOS_TOKEN + "x", CHAOS_TOKEN.upper()]
)
def test_chaos_headers_without_the_token_are_ignored(chaos_client, token):
    headers = {"X-Chaos-Status": "503", "X-Chaos-Delay-Seconds": "9"}  # 9 s: out of range, a 422 if read
    if token is None:
        del chaos_client.headers[contract.CHAOS_TOKEN_HEADER]
    else:
        headers[contract.CHAOS_TOKEN_HEADER] = token
    before = requests(chaos_client, 200)
    response = chaos_client.post(PREDICT, json=VALID, headers=headers)
    assert response.status_code == 200
    assert requests(chaos_client, 200) - before == 1


@pytest.mark.parametrize("status", [500, 503])
def test_chaos_status_is_honoured_and_counted(chaos_client, status):
    before = requests(chaos_client, status)
    before_predictions = value(chaos_client, contract.PREDICTION_VALUE + "_count")
    response = chaos_client.post(PREDICT, json=VALID, headers={"X-Chaos-Status": str(status)})
    assert response.status_code == status
    assert "chaos" in response.json()["detail"]
    assert requests(chaos_client, status) - before == 1
    assert value(chaos_client, contract.PREDICTION_VALUE + "_count") == before_predictions


def test_chaos_delay_is_honoured_and_lands_in_the_latency_histogram(chaos_client):
    labels = {"handler": PREDICT, "method": "POST"}
    slow_bucket = contract.REQUEST_DURATION + "_bucket"

    # Requests slower than 0.25 s: everything minus the le=0.25 bucket.
    def slow() -> float:
        return value(chaos_client, contract.REQUEST_DURATION + "_count", **labels) - value(
            chaos_client, slow_bucket, le="0.25", **labels
        )

    before = slow()
    response = chaos_client.post(PREDICT, json=VALID, headers={"X-Chaos-Delay-Seconds": "0.3"})
    assert response.status_code == 200
    assert slow() - before == 1  # a sleep of 0.3 s can only be longer, never shorter


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Chaos-Status": "404"},
        {"X-Chaos-Status": "abc"},
        {"X-Chaos-Delay-Seconds": "6"},
        {"X-Chaos-Delay-Seconds": "-1"},
        {"X-Chaos-Delay-Seconds": "nan"},
    ],
)
def test_bad_chaos_headers_get_422(chaos_client, headers):
    response = chaos_client.post(PREDICT, json=VALID, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "chaos_header"


def test_metrics_text_parses(client):
    client.post(PREDICT, json=VALID)
    client.post(PREDICT, json={"features": []})
    fams = families(client)
    assert {
        contract.REQUESTS_TOTAL.removesuffix("_total"),
        contract.REQUEST_DURATION,
        contract.PREDICTION_VALUE,
        contract.FEATURE_BIN_TOTAL.removesuffix("_total"),
        contract.MODEL_INFO,
    } <= set(fams)
