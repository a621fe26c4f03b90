"""The ServiceMonitor's relabelling, run by a real Prometheus: whatever job name the operator derives (the
Service's name, or its `jobLabel`), the scraped series carry `job="model-server"`, the job every dashboard
and alert query selects.

The operator renders each `relabelings` item as a `relabel_configs` entry (camelCase fields to snake_case)
after its own rules, which set `job` first; the test builds that scrape config around a static target and
asks Prometheus which labels the target ends up with.
"""

from __future__ import annotations

import re

import pytest
import yaml

from server import contract
from tests.infra.kubernetes.test_program import KUBERNETES
from tests.support.kubernetes import manifest
from tests.support.net import free_port, wait_for
from tests.support.prometheus import prometheus_with_config, targets
from tests.support.pulumi_mocks import SERVICE_MONITOR, run_program

pytestmark = pytest.mark.live


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_relabelling_sets_the_contract_job_whatever_the_operator_named_it(tmp_path):
    (endpoint,) = manifest(run_program(KUBERNETES).one(SERVICE_MONITOR))["spec"]["endpoints"]
    operator_job = {"target_label": "job", "replacement": "some-renamed-service", "action": "replace"}
    ours = [{_snake(k): v for k, v in item.items()} for item in endpoint["relabelings"]]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "serviceMonitor/model-monitoring/model-server/0",
                "metrics_path": endpoint["path"],
                # Nothing listens there: only the target's labels matter.
                "static_configs": [{"targets": [f"127.0.0.1:{free_port()}"]}],
                "relabel_configs": [operator_job, *ours],
            }
        ],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with prometheus_with_config(path) as prometheus:
        (target,) = wait_for(lambda: targets(prometheus.base_url), 60, what="the target")
    assert target["labels"]["job"] == contract.JOB_NAME
    assert target["scrapePool"] == "serviceMonitor/model-monitoring/model-server/0"
