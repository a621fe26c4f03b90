"""Pulumi.yaml and infra/requirements.txt: what the Pulumi CLI reads before it runs the program.

Facts from pulumi/pulumi (sdk/python/cmd/pulumi-language-python, toolchain/pip.go): a relative
`virtualenv` is joined to the project root (the directory of Pulumi.yaml), the program runs with the
`main` directory as working directory, and `pulumi install` with the pip toolchain runs
`pip install -r requirements.txt` in that directory.
"""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml

from infra.config import NAMESPACE
from tests.support.pulumi_mocks import PROJECT_ROOT

PROJECT = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
LOCAL_PACKAGES = {"infra", "dashboards", "server"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalise(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


def test_project_name_is_the_config_namespace_and_main_is_infra():
    assert PROJECT["name"] == NAMESPACE
    assert PROJECT["description"]
    assert PROJECT["runtime"]["name"] == "python"
    main = PROJECT_ROOT / PROJECT["main"]
    assert main == PROJECT_ROOT / "infra"
    assert (main / "__main__.py").is_file()


def test_virtualenv_resolves_to_the_venv_make_creates():
    options = PROJECT["runtime"]["options"]
    assert options["toolchain"] == "pip"
    # Relative to the project root, not to `main`.
    venv = PROJECT_ROOT / options["virtualenv"]
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    (make_venv,) = re.findall(r"^VENV\s*:?=\s*(\S+)", makefile, flags=re.MULTILINE)
    assert venv == PROJECT_ROOT / make_venv


def test_requirements_install_this_project_with_the_infra_extra():
    lines = [
        line.strip()
        for line in (PROJECT_ROOT / "infra" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    (editable,) = [line for line in lines if line.startswith("-e ")]
    target = editable.removeprefix("-e ").strip()
    path, _, extras = target.partition("[")
    # pip runs in infra/ (the program directory), so the path is relative to it.
    assert (PROJECT_ROOT / "infra" / path).resolve() == PROJECT_ROOT
    assert PYPROJECT["project"]["name"] == "model-monitoring"
    assert "infra" in extras.rstrip("]").split(",")


def _imports(directory: Path) -> set[str]:
    modules = set()
    for source in directory.rglob("*.py"):  # subpackages too (infra/kubernetes)
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_everything_the_program_imports_is_installed_by_pulumi_install():
    """A fresh `pulumi install` (requirements.txt -> the infra extra) must bring every import."""
    declared = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    declared |= {_requirement_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["infra"]}
    distributions = packages_distributions()
    third_party = set()
    for package in ("infra", "dashboards"):
        third_party |= _imports(PROJECT_ROOT / package)
    third_party -= LOCAL_PACKAGES | set(sys.stdlib_module_names)
    assert third_party, "expected pulumi, pulumi_docker, ... among the imports"
    for module in sorted(third_party):
        names = {_normalise(d) for d in distributions.get(module, [])}
        assert names & declared, f"{module} (from {names}) is not in the runtime or infra dependencies"
