"""The monitoring stack: one program, two targets (config key `target`), built from the same definitions.

Only wiring: settings come from infra/config.py (validated before any resource), each target declares
its components and returns the stack outputs.
"""

import pulumi

from infra import docker_stack
from infra.config import DOCKER, KUBERNETES, load_settings
from infra.kubernetes import stack as kubernetes_stack

DEPLOY = {DOCKER: docker_stack.deploy, KUBERNETES: kubernetes_stack.deploy}

settings = load_settings()
for name, value in DEPLOY[settings.target](settings).items():
    pulumi.export(name, value)
