"""The stack the Pulumi program declares, realized on a real Docker engine (see conftest.py): model
servers healthy behind the gateway, Prometheus scraping every replica through its declared network alias
and the gateway, rules loaded, real traffic visible through every dashboard query, no failed request
while a replica is stopped and started or replaced by a new image, and the TSDB surviving a restart and a
re-creation.

The tests share one stack (module fixture) and run in file order, like a user bringing it up.
"""

from __future__ import annotations

import io
import math
import random
import threading
import time
from collections.abc import Callable, Iterator

import docker
import httpx
import pytest
import yaml

from dashboards import alerts, queries
from server import contract
from tests.e2e.conftest import Stack
from tests.support.docker_stack import LABEL
from tests.support.net import wait_for
from tests.support.prometheus import (
    dashboard_exprs,
    grafana_expr_to_promql,
    query,
    rule_groups,
    targets,
    values,
)
from tests.support.pulumi_mocks import CONTAINER, REMOTE_IMAGE

pytestmark = pytest.mark.e2e

# Bounded waits (seconds): generous for 2 busy cores, never a timed assertion.
SCRAPE_WAIT = 60
READY_WAIT = 90

VALID, INVALID, BATCHES, BATCH_SIZE = 30, 12, 6, 5
PREDICT = contract.PREDICT_HANDLER


def _features(rng: random.Random) -> list[float]:
    return [round(rng.uniform(-2, 2), 3) for _ in range(3)]


def _invalid_bodies() -> Iterator[dict]:
    bad = [
        {"json": {"features": [1.0, 2.0]}},  # wrong length
        {"json": {"features": ["a", "b", "c"]}},  # strings
        {"json": {"nope": [1, 2, 3]}},  # missing key
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
    ]
    while True:
        yield from bad


def send_traffic(url: str, seed: int = 7) -> dict[str, int]:
    """VALID single, INVALID bad and BATCHES batch predictions through the gateway at `url`; returns how
    many /predict requests got each status."""
    rng = random.Random(seed)
    statuses: dict[str, int] = {}
    invalid = _invalid_bodies()
    requests = (
        [{"json": {"features": _features(rng)}} for _ in range(VALID)]
        + [next(invalid) for _ in range(INVALID)]
        + [{"json": {"instances": [_features(rng) for _ in range(BATCH_SIZE)]}} for _ in range(BATCHES)]
    )
    with httpx.Client(timeout=10) as client:
        for request in requests:
            response = client.post(f"{url}{PREDICT}", **request)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return statuses


def test_model_servers_become_healthy_behind_the_gateway(stack: Stack) -> None:
    containers = stack.model_server_containers()
    assert len(containers) >= 2
    for container in containers:
        assert stack.realized.health(container) == "healthy", stack.realized.logs(container)
        published = stack.realized.containers[container.name].ports  # EXPOSE 8000, bound to nothing
        assert not any(published.values()), published  # reachable through the gateway only
    gateway = stack.program.one(CONTAINER, "gateway")
    assert stack.realized.health(gateway) == "healthy", stack.realized.logs(gateway)
    # Both replicas answer through the one endpoint (fresh connections, balanced round-robin).
    versions = set()
    for _ in range(10):
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{stack.model_api_url}{contract.READY_PATH}")
        assert response.status_code == 200
        versions.add(response.json()["version"])
    assert len(versions) == 1


def test_each_replica_runs_the_declared_worker_processes(stack: Stack) -> None:
    """modelServerWorkers reaches uvicorn (WEB_CONCURRENCY), so metrics run in multiprocess mode."""
    for resource in stack.model_server_containers():
        (declared,) = [e for e in resource.plain_inputs["envs"] if e.startswith("WEB_CONCURRENCY=")]
        processes = stack.realized.containers[resource.name].top()["Processes"]
        # uvicorn spawns each worker through multiprocessing's spawn_main.
        workers = [p for p in processes if "spawn_main" in " ".join(p)]
        assert len(workers) == int(declared.split("=")[1]) >= 2, processes


def test_only_grafana_is_skipped(stack: Stack) -> None:
    """No Grafana image can be had here: its container (and its config carrier) are the one part not
    realized (said loudly)."""
    skipped = {s.resource.name: s.resource.plain_inputs["image"] for s in stack.realized.skipped}
    grafana_image = stack.program.one(REMOTE_IMAGE, "grafana-image")
    assert grafana_image.plain_inputs["name"] == stack.program.config["grafanaImage"]
    assert skipped == dict.fromkeys(["grafana-config", "grafana"], grafana_image.outputs["imageId"])
    prometheus = stack.program.one(CONTAINER, "prometheus")
    assert stack.realized.health(prometheus) == "healthy", stack.realized.logs(prometheus)


def test_prometheus_sends_its_alerts_to_the_alertmanager_container(stack: Stack) -> None:
    resource = stack.program.one(CONTAINER, "alertmanager")
    assert stack.realized.health(resource) == "healthy", stack.realized.logs(resource)
    assert httpx.get(f"{stack.alertmanager_url}/-/ready", timeout=10).status_code == 200

    def active() -> list[str] | None:
        body = httpx.get(f"{stack.prometheus_url}/api/v1/alertmanagers", timeout=10).json()
        return [a["url"] for a in body["data"]["activeAlertmanagers"]] or None

    # Through its network alias, as the declared alerting config names it.
    assert wait_for(active, SCRAPE_WAIT, what="an active alertmanager") == [
        "http://alertmanager:9093/api/v2/alerts"
    ]
    # It runs the routing the program declared.
    (upload,) = stack.program.one(CONTAINER, "alertmanager-config").plain_inputs["uploads"]
    declared = yaml.safe_load(upload["content"])
    status = httpx.get(f"{stack.alertmanager_url}/api/v2/status", timeout=10).json()
    loaded = yaml.safe_load(status["config"]["original"])  # with Alertmanager's defaults filled in
    assert loaded["route"]["receiver"] == declared["route"]["receiver"]
    assert [r["name"] for r in loaded["receivers"]] == [r["name"] for r in declared["receivers"]]
    assert len(loaded["inhibit_rules"]) == len(declared["inhibit_rules"]) == 1


def _replica_names(stack: Stack) -> set[str]:
    return {
        alias
        for container in stack.model_server_containers()
        for network in container.plain_inputs["networksAdvanced"]
        for alias in network["aliases"]
    }


def test_prometheus_scrapes_every_replica_through_its_alias_and_the_gateway(stack: Stack) -> None:
    expected = _replica_names(stack)
    assert len(expected) == len(stack.model_server_containers())

    def all_up() -> list[dict] | None:
        active = [t for t in targets(stack.prometheus_url) if t["labels"].get("job") == contract.JOB_NAME]
        # Discovered by DNS: one target per container address, labelled with the name it answers to.
        if sorted(t["labels"]["replica"] for t in active) == sorted(expected) and all(
            t["health"] == "up" for t in active
        ):
            return active
        return None

    active = wait_for(all_up, SCRAPE_WAIT, what=f"replicas {sorted(expected)} up")
    # instance = "<replica>@<container address>": readable, and unique per container.
    for target in active:
        address = target["discoveredLabels"]["__address__"]
        assert address.endswith(f":{contract.SERVER_PORT}")
        assert target["labels"]["instance"] == f"{target['labels']['replica']}@{address}"
    instances = {t["labels"]["instance"] for t in active}
    assert len(instances) == len(expected)
    up = query(stack.prometheus_url, f'up{{job="{contract.JOB_NAME}"}}')
    assert values(up) == [1.0] * len(expected)
    gateway = f'up{{job="{contract.GATEWAY_JOB_NAME}"}}'
    wait_for(lambda: values(query(stack.prometheus_url, gateway)) == [1.0], SCRAPE_WAIT, what="gateway up")


def test_rules_loaded_and_healthy(stack: Stack) -> None:
    uploads = stack.program.one(CONTAINER, "prometheus-config").plain_inputs["uploads"]
    declared = {
        rule.get("record") or rule.get("alert")
        for upload in uploads
        if "/rules/" in upload["file"]
        for group in yaml.safe_load(upload["content"])["groups"]
        for rule in group["rules"]
    }
    assert queries.FEATURE_DRIFT_PSI in declared
    assert alerts.ALERT_FEATURE_DRIFT in declared  # alertEngine=both: Prometheus evaluates alerts too

    def evaluated() -> list[dict] | None:
        rules = [r for g in rule_groups(stack.prometheus_url) for r in g["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = wait_for(evaluated, SCRAPE_WAIT, what="every rule evaluated once")
    assert {r["name"] for r in rules} == declared
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken


def test_traffic_is_counted_exactly_across_replicas(stack: Stack) -> None:
    statuses = send_traffic(stack.model_api_url)
    assert statuses == {"200": VALID + BATCHES, "422": INVALID}
    selector = f'job="{contract.JOB_NAME}",handler="{PREDICT}"'
    by_status = f"sum by (status) ({contract.REQUESTS_TOTAL}{{{selector}}})"
    predictions = f'sum({contract.PREDICTION_VALUE}_count{{job="{contract.JOB_NAME}"}})'

    def counted() -> bool:
        seen = {s["metric"]["status"]: float(s["value"][1]) for s in query(stack.prometheus_url, by_status)}
        return seen == {k: float(v) for k, v in statuses.items()}

    wait_for(counted, SCRAPE_WAIT, what=f"Prometheus to count {statuses}")
    assert values(query(stack.prometheus_url, predictions)) == [float(VALID + BATCHES * BATCH_SIZE)]


def test_every_container_runs_hardened_within_its_declared_limits(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read-only root (a write fails), no capabilities, no-new-privileges, the declared memory (no swap)
    and nofile limits, tmpfs where declared, and still healthy after serving traffic."""
    realized = [c for c in stack.program.of_type(CONTAINER) if c.plain_inputs.get("start") is not False]
    realized = [c for c in realized if c.name in stack.realized.containers]
    assert {c.name for c in realized} >= {"gateway", "prometheus", "alertmanager"}
    assert len(stack.model_server_containers()) == sum(c.name.startswith("model-server-") for c in realized)
    figures = []
    for resource in realized:
        declared = resource.plain_inputs
        container = stack.realized.containers[resource.name]
        container.reload()
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True, resource.name
        assert host["CapDrop"] == ["ALL"], resource.name
        assert host["SecurityOpt"] == ["no-new-privileges:true"], resource.name
        assert host["Memory"] == host["MemorySwap"] == int(declared["memory"]) * 2**20, resource.name
        nofile = int(declared["ulimits"][0]["soft"])
        assert host["Ulimits"] == [{"Name": "nofile", "Soft": nofile, "Hard": nofile}], resource.name
        assert (host.get("Tmpfs") or {}) == (declared.get("tmpfs") or {}), resource.name
        # The limits as the processes see them, and a write to the root refused.
        code, output = container.exec_run(["sh", "-c", "ulimit -n"])
        assert (code, output.decode().strip()) == (0, str(nofile)), resource.name
        code, output = container.exec_run(["sh", "-c", "touch /hardening-probe"])
        assert code != 0, resource.name
        assert "Read-only file system" in output.decode(errors="replace"), resource.name
        if resource in stack.model_server_containers():
            # The multiprocess metrics directory (python -m server makes it) lives on the tmpfs.
            code, output = container.exec_run(["sh", "-c", "ls /tmp/model-server-metrics-*/"])
            assert code == 0, (resource.name, output)
            assert ".db" in output.decode(), (resource.name, output)
        assert stack.realized.health(resource) == "healthy", stack.realized.logs(resource)
        usage = container.stats(stream=False)["memory_stats"]["usage"]
        figures.append(f"{resource.name} {usage / 2**20:.0f}/{host['Memory'] / 2**20:.0f} MiB")
    with capsys.disabled():
        print(f"\ncontainer memory use / limit: {', '.join(figures)}")


@pytest.fixture
def steady_traffic(stack: Stack) -> Iterator[None]:
    """Light traffic in the background (bounded), so rate() windows of the panels are never empty."""
    stop = threading.Event()

    def run() -> None:
        for round_ in range(600):  # at most ~2 minutes
            if stop.wait(0.2):
                return
            send_traffic(stack.model_api_url, seed=round_) if round_ % 10 == 0 else None

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.mark.usefixtures("steady_traffic")
def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """The queries of the dashboard the program deploys, as Grafana would send them, all answer."""
    panels = dashboard_exprs(stack.dashboard())
    assert len(panels) >= 10
    missing: dict[str, str] = {}
    for title, expr in panels:
        promql = grafana_expr_to_promql(expr, stack.scrape_interval_s)

        def answers(promql: str = promql) -> list[float] | None:
            found = [v for v in values(query(stack.prometheus_url, promql)) if math.isfinite(v)]
            return found or None

        try:
            wait_for(answers, SCRAPE_WAIT, what=f"{title!r}: {promql}")
        except TimeoutError as exc:
            missing[title] = str(exc)
    assert not missing


class Load:
    """Valid predictions through the gateway from two clients, back to back, until stopped (bounded);
    every answer or error counted."""

    def __init__(self, url: str, clients: int = 2, max_seconds: float = 300) -> None:
        self.url, self.max_seconds = url, max_seconds
        self.statuses: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(seed,), daemon=True) for seed in range(clients)
        ]

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    outcome = str(
                        client.post(f"{self.url}{PREDICT}", json={"features": _features(rng)}).status_code
                    )
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                with self.lock:
                    self.statuses[outcome] = self.statuses.get(outcome, 0) + 1

    def ok(self) -> int:
        with self.lock:
            return self.statuses.get("200", 0)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _counted_since(stack: Stack, since: float) -> float:
    """/predict requests Prometheus counted after `since`, exactly, from the raw samples: per series (one
    per container address) the increases between consecutive samples, a drop counting as a restart from
    0, starting from the series' last sample at or before `since` (0 for a series that began later)."""
    window = math.ceil(time.time() - since) + 60
    expr = f'{contract.REQUESTS_TOTAL}{{job="{contract.JOB_NAME}",handler="{PREDICT}"}}[{window}s]'
    body = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    total = 0.0
    for series in body["data"]["result"]:
        points = [(float(t), float(v)) for t, v in series["values"]]
        previous = ([v for t, v in points if t <= since] or [0.0])[-1]
        for _, value in (p for p in points if p[0] > since):
            total += value - previous if value >= previous else value
            previous = value
    return total


def _active_backends(stack: Stack) -> float | None:
    """Replica containers in the gateway's pool, as its dashboard panel reads them."""
    found = values(query(stack.prometheus_url, queries.gateway_backends_up()))
    return found[0] if found else None


def _through_a_disruption(stack: Stack, disrupt: Callable[[], None]) -> dict[str, int]:
    """Continuous load through the gateway while `disrupt()` runs; then no request may have failed and
    Prometheus must count exactly what the clients got answered. Returns the statuses."""
    replicas = len(stack.model_server_containers())
    wait_for(lambda: _active_backends(stack) == replicas, SCRAPE_WAIT, what="every replica in the pool")
    since = float(query(stack.prometheus_url, "time()")[0]["value"][1])
    time.sleep(2 * stack.scrape_interval_s)  # a sample of every series at or before `since`
    with Load(stack.model_api_url) as load:
        wait_for(lambda: load.ok() >= 50, READY_WAIT, what="load through the gateway")
        disrupt()
        done = load.ok()
        wait_for(lambda: load.ok() >= done + 50, READY_WAIT, what="load after the disruption")
    assert set(load.statuses) == {"200"}, load.statuses
    wait_for(lambda: _active_backends(stack) == replicas, SCRAPE_WAIT, what="every replica back in the pool")
    sent = load.statuses["200"]
    counted: list[float] = []

    def all_counted() -> bool:
        counted.append(_counted_since(stack, since))
        return counted[-1] == sent

    try:
        wait_for(all_counted, SCRAPE_WAIT, what=f"Prometheus to count the {sent} predictions sent")
    except TimeoutError as error:
        raise AssertionError(f"{error}; Prometheus counted {counted[-1:]} (last of {len(counted)})") from None
    return load.statuses


def test_a_replica_stopped_and_started_costs_no_request(stack: Stack) -> None:
    replica = stack.model_server_containers()[0]
    container = stack.realized.containers[replica.name]

    (alias,) = replica.plain_inputs["networksAdvanced"][0]["aliases"]
    down = f'up{{job="{contract.JOB_NAME}",replica="{alias}"}} == 0'

    def stop_and_start() -> None:
        container.stop()  # SIGTERM; Docker waits the declared stop timeout (drain + grace)
        # Prometheus keeps scraping the address it last found behind the name: the replica is down
        # (what ModelServerDown reads), not silently gone.
        wait_for(lambda: query(stack.prometheus_url, down), SCRAPE_WAIT, what=f"{alias} reported down")
        container.start()
        stack.realized.wait_healthy(replica, timeout=READY_WAIT)

    _through_a_disruption(stack, stop_and_start)


def test_a_replica_replaced_by_a_new_image_costs_no_request(stack: Stack) -> None:
    replica = stack.model_server_containers()[0]
    old = stack.realized.containers[replica.name]
    # A new image (what a change under server/ builds): the declared one plus a label, built in seconds.
    new_image, _ = stack.realized.client.images.build(
        fileobj=io.BytesIO(f"FROM {old.image.id}\nLABEL {LABEL}.rollout=1\n".encode()), rm=True
    )
    try:
        _through_a_disruption(stack, lambda: stack.realized.replace(replica, image=new_image.id))
        new = stack.realized.containers[replica.name]
        assert new.id != old.id
        assert new.image.id == new_image.id
        with pytest.raises(docker.errors.NotFound):
            old.reload()  # the old container is gone, after its replacement was healthy
    finally:
        stack.realized.recreate(replica)  # back to the declared image, so the image can go
        stack.realized.client.images.remove(new_image.id, force=True)


def test_prometheus_keeps_its_data_across_restart_and_recreation(stack: Stack) -> None:
    prometheus = stack.program.one(CONTAINER, "prometheus")
    expr = f'sum({contract.REQUESTS_TOTAL}{{job="{contract.JOB_NAME}"}})'
    at = float(query(stack.prometheus_url, "time()")[0]["value"][1]) - 1
    before = values(query(stack.prometheus_url, expr, at=at))
    assert len(before) == 1
    assert before[0] > 0

    def ready() -> bool:
        return httpx.get(f"{stack.prometheus_url}/-/ready", timeout=5).status_code == 200

    def same_history() -> bool:
        return values(query(stack.prometheus_url, expr, at=at)) == before

    # A restart keeps the container; a re-creation (what `pulumi up` does on a change) keeps only the volume.
    stack.realized.containers[prometheus.name].restart(timeout=20)
    stack.realized.wait_healthy(prometheus, timeout=READY_WAIT)
    wait_for(ready, READY_WAIT, what="Prometheus ready after restart")
    wait_for(same_history, SCRAPE_WAIT, what="the same history after a restart")

    stack.realized.recreate(prometheus)
    wait_for(ready, READY_WAIT, what="Prometheus ready after re-creation")
    wait_for(same_history, SCRAPE_WAIT, what="the same history in a new container on the same volume")
