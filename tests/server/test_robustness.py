"""Hostile input: schema-driven fuzzing of every operation, and random paths that must not add series."""

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from server import contract
from server.app import create_app
from server.settings import ServerSettings

APP = create_app(ServerSettings(chaos_enabled=True, chaos_token="robustness-chaos-token"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def started() -> Iterator[None]:
    with TestClient(APP):  # run the lifespan start-up once for every generated call
        yield


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_5xx(case):
    # Positive and negative cases (schemathesis' default modes): invalid bodies must be refused with a
    # 4xx, never crash the app. Chaos is enabled but no generated case sends the chaos headers.
    case.call_and_validate(checks=[not_a_server_error])


def sample(client: TestClient, labels: dict[str, str]) -> float:
    return client.app.state.server.registry.get_sample_value(contract.REQUESTS_TOTAL, labels) or 0.0


def series_count(client: TestClient) -> int:
    return sum(
        len(metric.samples)
        for metric in client.app.state.server.registry.collect()
        if metric.name.startswith("model_")
    )


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND", "X-HACK"]
KNOWN = {route.path for route in APP.routes}
segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#"),
    min_size=0,
    max_size=30,
)


@pytest.fixture(scope="module")
def warm_client() -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings())) as client:
        for method in METHODS:  # the one "unmatched" series per method exists from here on
            client.request(method, "/definitely/not/a/route")
        yield client


@given(method=st.sampled_from(METHODS), segments=st.lists(segment, min_size=1, max_size=5))
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_paths_do_not_create_series(warm_client, method, segments):
    # Absolute URL: a relative "//x" would be read as a host name. httpx resolves ".." and
    # percent-encodes the rest, so `url.path` is what the router sees.
    url = httpx.URL("http://testserver/" + "/".join(segments))
    path = url.path
    # A known route (or the same with/without a trailing slash, which redirects) is not "random".
    assume(path.rstrip("/") not in KNOWN and path != "/")
    label = (
        method
        if method.isalpha() and method in {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}
        else "other"
    )
    unmatched = {"handler": contract.UNMATCHED_HANDLER, "method": label, "status": "404"}
    before, before_unmatched = series_count(warm_client), sample(warm_client, unmatched)
    response = warm_client.request(method, url)
    assert response.status_code == 404
    assert series_count(warm_client) == before
    assert sample(warm_client, unmatched) == before_unmatched + 1
