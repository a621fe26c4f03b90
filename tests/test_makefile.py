"""The Makefile's entry points exist: every `python -m MODULE` a recipe runs names an importable module."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.support import PROJECT_ROOT

MAKEFILE = (PROJECT_ROOT / "Makefile").read_text()
MODULES = sorted(set(re.findall(r"\$\(PY\) -m ([\w.]+)", MAKEFILE)))


def test_the_makefile_runs_modules():
    assert {"pytest", "loadgen", "server"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_a_recipe_runs_exists(module):
    assert importlib.util.find_spec(module) is not None, f"Makefile runs `-m {module}`, which does not exist"
