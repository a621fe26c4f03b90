"""server/Dockerfile against the wire contract and pyproject (the image itself is built in tests/e2e)."""

from __future__ import annotations

import re
import tomllib

from server import contract
from tests.support import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "server" / "Dockerfile").read_text()


def test_requirements_layer_is_exactly_the_runtime_dependencies() -> None:
    """The image installs server/requirements.txt; pyproject is where dependencies are edited."""
    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (PROJECT_ROOT / "server" / "requirements.txt").read_text().splitlines()
    listed = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert listed == declared, "server/requirements.txt must be pyproject's [project].dependencies, in order"


def test_dependencies_are_installed_before_the_server_code_is_copied() -> None:
    """Layer order: a server code change must reuse the dependency layer."""
    install = DOCKERFILE.index("pip install -r /tmp/requirements.txt")
    code = DOCKERFILE.index("COPY server ./server")
    assert DOCKERFILE.index("COPY server/requirements.txt") < install < code


def test_port_and_healthcheck_come_from_the_contract() -> None:
    port = contract.SERVER_PORT
    assert re.search(rf"^EXPOSE {port}$", DOCKERFILE, re.M)
    (healthcheck,) = re.findall(r"^HEALTHCHECK .*\n\s+CMD (.*)$", DOCKERFILE, re.M)
    assert f"'http://127.0.0.1:{port}{contract.HEALTH_PATH}'" in healthcheck
    (cmd,) = re.findall(r"^CMD (.*)$", DOCKERFILE, re.M)
    assert cmd.endswith(f'"--port", "{port}"]')
