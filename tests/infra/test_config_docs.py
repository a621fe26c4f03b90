"""The config keys are defined once (infra/config.py KEYS); the README table and Pulumi.dev.yaml must say the
same keys and defaults, so a new key or a changed default cannot be documented wrong."""

import re

import yaml

from infra.config import KEYS, NAMESPACE
from tests.support import PROJECT_ROOT

DEFINED = {key.name: key.default for key in KEYS}


def _readme_table() -> dict[str, str | None]:
    """key -> default as the README's Configuration table shows it (None: unset, no default)."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("### Configuration", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for match in re.finditer(r"^\| `(\w+)` \| (.+?) \|", section, re.M):
        key, cell = match.groups()
        if cell == "*(empty)*":
            rows[key] = ""
        elif cell.startswith("*(unset"):
            rows[key] = None
        else:
            rows[key] = cell.strip("`")
    return rows


def test_readme_config_table_lists_every_key_with_its_default():
    assert _readme_table() == DEFINED


def test_dev_stack_spells_out_every_default():
    document = yaml.safe_load((PROJECT_ROOT / "Pulumi.dev.yaml").read_text())
    config = {k.removeprefix(f"{NAMESPACE}:"): str(v) for k, v in document["config"].items()}
    assert config == {name: default for name, default in DEFINED.items() if default is not None}
