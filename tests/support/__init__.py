"""Helpers shared by the test packages."""

from pathlib import Path

# The directory of Pulumi.yaml and pyproject.toml.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
