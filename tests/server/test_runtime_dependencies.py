"""The server package runs on its runtime dependencies alone: what its image installs.

A subprocess imports the server and builds the app behind an import hook that refuses every top-level
module outside the standard library, the server package itself and the distributions that
`project.dependencies` pulls in (transitively). The load generator's httpx, the dashboards' pyyaml or any
dev tool imported by server code would fail here, as it would in the image.
"""

import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions

from tests.support import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(requirements: list[str]) -> set[str]:
    """Distribution names of `requirements` and everything they require (extras not followed)."""
    seen: set[str] = set()
    todo = [r for r in requirements if "sys_platform == 'win32'" not in r]
    while todo:
        name = _name(todo.pop())
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a platform-conditional requirement not installed here
        seen.add(name)
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return seen


def _allowed_modules() -> set[str]:
    runtime = _closure(PYPROJECT["project"]["dependencies"])
    return {
        module
        for module, dists in packages_distributions().items()
        if any(_name(d) in runtime for d in dists)
    }


CHECK = textwrap.dedent(
    """
    import sys

    ALLOWED = set(sys.argv[1].split(",")) | set(sys.stdlib_module_names) | {"server"}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top not in ALLOWED and not top.startswith("_"):
                # What Python raises for a module that is not installed (libraries probe optional ones).
                raise ModuleNotFoundError(f"server imported {name!r}, which is not a runtime dependency")
            return None

    sys.meta_path.insert(0, Refuse())
    import server.__main__
    from server.app import create_app

    create_app()
    print("ok")
    """
)


def test_server_imports_only_its_runtime_dependencies():
    allowed = _allowed_modules()
    assert {"fastapi", "uvicorn", "prometheus_client"} <= allowed
    # So that the check below can fail: the load generator's and the dashboards' libraries are not allowed.
    assert "httpx" not in allowed
    assert "yaml" not in allowed
    result = subprocess.run(
        [sys.executable, "-c", CHECK, ",".join(sorted(allowed))],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
