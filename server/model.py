"""The model behind /predict: a small protocol plus the logistic-regression artifact loader.

Any object with these attributes and ``predict`` can be passed to ``create_app(model=...)``; the
JSON artifact produced by ``server/model/train.py`` is the built-in implementation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from server.contract import FEATURE_BINS

DECILE_CUTS = len(FEATURE_BINS) - 1  # nine cut points split a feature into the ten reference bins


@runtime_checkable
class Model(Protocol):
    """What the server needs from a model."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def feature_names(self) -> tuple[str, ...]: ...
    @property
    def reference_deciles(self) -> tuple[tuple[float, ...], ...]:
        """Per feature (in ``feature_names`` order), the 9 ascending training-data decile cut points."""
        ...

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """One probability in [0, 1] per row; each row has ``len(feature_names)`` finite floats."""
        ...


class ModelLoadError(ValueError):
    """The artifact is missing or malformed; the message names the file and the offending key."""


def _sigmoid(z: float) -> float:
    # Two branches so neither exp() can overflow.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


_SCALE = 2.0**600


def _linear(row: Sequence[float], weights: Sequence[float], bias: float) -> float:
    """``row . weights + bias`` for any finite inputs, even when a product overflows a float."""
    terms = [x * c for x, c in zip(row, weights, strict=True)]
    terms.append(bias)
    try:
        z = math.fsum(terms)
    except (OverflowError, ValueError):  # inf - inf, or an overflowing partial sum
        z = math.nan
    if math.isfinite(z):
        return z
    # Sum again scaled down; the result may still be +-inf, where the sigmoid saturates cleanly.
    scaled = [(x / _SCALE) * c for x, c in zip(row, weights, strict=True)]
    scaled.append(bias / _SCALE)
    return math.fsum(scaled) * _SCALE


@dataclass(frozen=True)
class LogisticRegression:
    name: str
    version: str
    feature_names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    reference_deciles: tuple[tuple[float, ...], ...]

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        w, b = self.weights, self.bias
        return [_sigmoid(_linear(row, w, b)) for row in rows]


def _finite_floats(path: Path, key: str, value: Any, length: int) -> tuple[float, ...]:
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise ModelLoadError(f"{path}: {key!r} must be a list of {length} finite numbers")
    return tuple(float(v) for v in value)


def load_model(path: str | Path) -> LogisticRegression:
    """Read and validate a logistic-regression artifact written by ``server/model/train.py``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ModelLoadError(f"cannot read model artifact {path} (MODEL_PATH): {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    if data.get("kind", "logistic_regression") != "logistic_regression":
        raise ModelLoadError(f"{path}: 'kind' must be 'logistic_regression', got {data.get('kind')!r}")
    for key in ("name", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ModelLoadError(f"{path}: {key!r} must be a non-empty string")
    names = data.get("feature_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ModelLoadError(f"{path}: 'feature_names' must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise ModelLoadError(f"{path}: 'feature_names' must be unique")
    weights = _finite_floats(path, "weights", data.get("weights"), len(names))
    bias = _finite_floats(path, "bias", [data.get("bias")], 1)[0]
    deciles = data.get("reference_deciles")
    if not isinstance(deciles, dict) or set(deciles) != set(names):
        raise ModelLoadError(f"{path}: 'reference_deciles' must map every feature name to its cut points")
    cuts = []
    for name in names:
        row = _finite_floats(path, f"reference_deciles.{name}", deciles[name], DECILE_CUTS)
        if list(row) != sorted(row):
            raise ModelLoadError(f"{path}: 'reference_deciles.{name}' must be ascending")
        cuts.append(row)
    return LogisticRegression(
        name=data["name"],
        version=data["version"],
        feature_names=tuple(names),
        weights=weights,
        bias=bias,
        reference_deciles=tuple(cuts),
    )
