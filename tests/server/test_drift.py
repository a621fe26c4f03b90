import pytest

from server import contract
from server.drift import bin_index

CUTS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-5.0, 0),
        (0.05, 0),
        (0.1, 0),  # a value equal to a cut point belongs to the bin below (`le` convention)
        (0.1000001, 1),
        (0.45, 4),
        (0.9, 8),
        (0.95, 9),
        (1e9, 9),
    ],
)
def test_values_land_in_their_decile_bin(value, expected):
    assert bin_index(CUTS, value) == expected


def test_every_bin_label_is_reachable():
    assert {str(bin_index(CUTS, v / 100)) for v in range(0, 101)} == set(contract.FEATURE_BINS)


def test_each_feature_uses_its_own_cuts():
    assert [bin_index(cuts, 0.55) for cuts in (CUTS, [10 * c for c in CUTS])] == [5, 0]
