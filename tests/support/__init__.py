"""Helpers shared by the test packages."""

from pathlib import Path

# The directory of Pulumi.yaml and pyproject.toml.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# String-hash seeds for the determinism tests. Each seed orders a set at random, so two seeds agree on a
# two-element set half the time (1 and 2 do for the two replica names); with five, an ordering bug slips
# through at most 1 time in 16.
HASH_SEEDS = ("1", "2", "3", "4", "5")
