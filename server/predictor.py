"""A user model ready to serve: its ``reference.json`` checked against it, request rows validated per
feature, predictions in the task's shape, and the reference bin of every value.

``load_predictor(MODEL_DIR)`` loads the artifact (``server.loaders``) and the reference built by
``python -m server.reference``. ``Predictor.parse`` turns one instance, positional
(``[v, ...]``) or named (``{"name": v, ...}``), into a row in feature order, raising ``InputError``
naming the feature for an unknown name, a wrong count, a wrong type or NaN/inf; an absent or null value
is missing. ``Predictor.predict`` runs the model on parsed rows; ``Predictor.bins`` gives each value's
bin: "0".."9" for numeric (``cut[k-1] < x <= cut[k]``), the level or "other" for categorical (an
unseen category is not an error), and "missing".
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.contract import FEATURE_BINS
from server.loaders import CATEGORICAL, NUMERIC, REFERENCE_FILE, TASKS, LoadedModel, load_model_dir
from server.model import ModelLoadError

MISSING_BIN, OTHER_BIN = "missing", "other"
REFERENCE_FORMAT = 1


class InputError(ValueError):
    """The request's fault (a 422): ``feature`` names the offending feature (None: the instance)."""

    def __init__(self, message: str, feature: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.feature = feature
        self.index = index  # position of the instance in a batch


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # "numeric" | "categorical"
    cuts: tuple[float, ...] = ()  # numeric: the nine decile cut points
    levels: tuple[str, ...] = ()  # categorical: the kept levels, most frequent first
    reference_share: Mapping[str, float] | None = None  # every bin, "missing" included

    @property
    def bins(self) -> tuple[str, ...]:
        if self.type == NUMERIC:
            return (*FEATURE_BINS, MISSING_BIN)
        return (*self.levels, OTHER_BIN, MISSING_BIN)

    def bin(self, value: Any) -> str:
        if value is None:
            return MISSING_BIN
        if self.type == NUMERIC:
            return FEATURE_BINS[bisect_left(self.cuts, value)]
        return value if value in self.levels else OTHER_BIN


@dataclass(frozen=True)
class Reference:
    task: str
    classes: tuple[Any, ...] | None
    features: tuple[Feature, ...]
    buckets: tuple[float, ...]
    class_share: Mapping[str, float] | None
    version: str  # the artifact version the reference was built for


def _fail(path: Path, message: str) -> ModelLoadError:
    return ModelLoadError(f"{path}: {message} (rebuild it with python -m server.reference)")


def _shares(path: Path, where: str, raw: Any, bins: Sequence[str]) -> dict[str, float]:
    if not isinstance(raw, dict) or list(raw) != list(bins):
        raise _fail(path, f"{where} must give the share of the bins {', '.join(bins)}")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in raw.values()
    ):
        raise _fail(path, f"{where} values must be shares in [0, 1]")
    if not math.isclose(sum(raw.values()), 1.0, abs_tol=1e-6):
        raise _fail(path, f"{where} must add up to 1")
    return {k: float(v) for k, v in raw.items()}


def _feature(path: Path, i: int, raw: Any) -> Feature:
    where = f"features[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise _fail(path, f"{where} needs a name")
    where = f"feature {raw['name']!r}"
    kind = raw.get("type")
    if kind == NUMERIC:
        cuts = raw.get("cuts")
        if (
            not isinstance(cuts, list)
            or len(cuts) != len(FEATURE_BINS) - 1
            or not all(isinstance(c, int | float) and math.isfinite(c) for c in cuts)
            or cuts != sorted(cuts)
        ):
            raise _fail(path, f"{where}: cuts must be {len(FEATURE_BINS) - 1} ascending finite numbers")
        f = Feature(raw["name"], NUMERIC, cuts=tuple(float(c) for c in cuts))
    elif kind == CATEGORICAL:
        levels = raw.get("levels")
        if (
            not isinstance(levels, list)
            or not all(isinstance(v, str) for v in levels)
            or len(set(levels)) != len(levels)
        ):
            raise _fail(path, f"{where}: levels must be a list of distinct strings")
        if {OTHER_BIN, MISSING_BIN} & set(levels):
            raise _fail(path, f"{where}: 'other' and 'missing' are bin names, not levels")
        f = Feature(raw["name"], CATEGORICAL, levels=tuple(levels))
    else:
        raise _fail(path, f"{where}: type must be numeric or categorical, got {kind!r}")
    shares = _shares(path, f"{where}: reference_share", raw.get("reference_share"), f.bins)
    return Feature(f.name, f.type, f.cuts, f.levels, shares)


def load_reference(model_dir: str | Path, model: LoadedModel) -> Reference:
    """Read ``MODEL_DIR/reference.json`` and check it belongs to ``model``: one error naming the mismatch."""
    path = Path(model_dir) / REFERENCE_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path}: no reference; build it with "
            f"python -m server.reference --model {model_dir} --data TRAIN.csv"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise _fail(path, f"cannot be read: {e}") from e
    if not isinstance(raw, dict) or raw.get("format") != REFERENCE_FORMAT:
        raise _fail(path, f"format must be {REFERENCE_FORMAT}")
    built_for = raw.get("model") or {}
    if built_for.get("artifact") != model.artifact.name or built_for.get("version") != model.version:
        raise _fail(
            path,
            f"built for {built_for.get('artifact')} version {built_for.get('version')}, "
            f"but the model is {model.artifact.name} version {model.version}",
        )
    task = raw.get("task")
    if task not in TASKS:
        raise _fail(path, f"task must be one of {', '.join(TASKS)}")
    try:
        model = model.with_task(task)  # a reference built with --task reads the model that way
    except ModelLoadError as e:
        raise _fail(path, f"task {task}: {e}") from e
    features = raw.get("features")
    if not isinstance(features, list) or not features:
        raise _fail(path, "features must be a non-empty list")
    parsed = tuple(_feature(path, i, f) for i, f in enumerate(features))
    names = [f.name for f in parsed]
    if len(set(names)) != len(names):
        raise _fail(path, "feature names must be unique")
    if model.feature_names and tuple(names) != model.feature_names:
        raise _fail(path, f"features {names} differ from the model's {list(model.feature_names)}")
    if model.n_features is not None and len(names) != model.n_features:
        raise _fail(path, f"{len(names)} features, the model takes {model.n_features}")
    for f in parsed:
        declared = (model.feature_types or {}).get(f.name, NUMERIC if model.numeric_only else f.type)
        if declared != f.type:
            raise _fail(path, f"feature {f.name!r} is {f.type}, the model takes it as {declared}")
    prediction = raw.get("prediction")
    if not isinstance(prediction, dict):
        raise _fail(path, "prediction must be an object")
    buckets = prediction.get("buckets")
    if (
        not isinstance(buckets, list)
        or not buckets
        or not all(isinstance(b, int | float) and math.isfinite(b) for b in buckets)
        or buckets != sorted(set(buckets))
    ):
        raise _fail(path, "prediction.buckets must be ascending distinct finite numbers")
    classes = raw.get("classes")
    class_share = None
    if task == "regression":
        if classes is not None:
            raise _fail(path, "a regression reference has no classes")
    else:
        expected = list(model.classes) if model.classes is not None else None
        if classes != expected:
            raise _fail(path, f"classes {classes} differ from the model's {expected}")
        class_share = _shares(
            path, "prediction.class_share", prediction.get("class_share"), [str(c) for c in classes]
        )
    return Reference(
        task=task,
        classes=tuple(classes) if classes is not None else None,
        features=parsed,
        buckets=tuple(float(b) for b in buckets),
        class_share=class_share,
        version=model.version,
    )


def _number(feature: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(
            f"feature {feature!r} is numeric: expected a number, got {type(value).__name__}", feature
        )
    try:
        x = float(value)
    except OverflowError:  # an integer beyond any float (JSON integers are unbounded)
        x = math.inf
    if not math.isfinite(x):
        raise InputError(f"feature {feature!r} must be a finite number", feature)
    return x


def _category(feature: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(
            f"feature {feature!r} is categorical: expected a string, got {type(value).__name__}", feature
        )
    return value


class Predictor:
    """A loaded model plus its reference: parse instances, predict, bin."""

    def __init__(self, model: LoadedModel, reference: Reference) -> None:
        if reference.task != model.task:
            model = model.with_task(reference.task)  # the reference was built with --task
        self.model = model
        self.reference = reference
        self.task = reference.task
        self.features = reference.features
        self.feature_names = tuple(f.name for f in reference.features)
        self.feature_types = {f.name: f.type for f in reference.features}
        self._index = {name: i for i, name in enumerate(self.feature_names)}
        self._coerce = [(f.name, _number if f.type == NUMERIC else _category) for f in reference.features]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> str:
        return self.model.version

    def parse(self, instance: Any) -> list[Any]:
        """One instance (a list in feature order, or an object by name) as a row; missing values None."""
        n = len(self.feature_names)
        if isinstance(instance, Mapping):
            unknown = [k for k in instance if k not in self._index]
            if unknown:
                raise InputError(
                    f"unknown feature {unknown[0]!r}; the model's features: {', '.join(self.feature_names)}",
                    unknown[0],
                )
            return [coerce(name, instance.get(name)) for name, coerce in self._coerce]
        if isinstance(instance, list | tuple):
            if len(instance) != n:
                raise InputError(
                    f"expected {n} feature values ({', '.join(self.feature_names)}), got {len(instance)}"
                )
            return [coerce(name, v) for (name, coerce), v in zip(self._coerce, instance, strict=True)]
        raise InputError("an instance is a list of feature values or an object of them by name")

    def parse_many(self, instances: Sequence[Any]) -> list[list[Any]]:
        rows = []
        for i, instance in enumerate(instances):
            try:
                rows.append(self.parse(instance))
            except InputError as e:
                e.index = i
                raise
        return rows

    def _missing_features(self, rows: Sequence[Sequence[Any]]) -> list[str]:
        return [name for j, name in enumerate(self.feature_names) if any(row[j] is None for row in rows)]

    def predict(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Per row: binary P(positive); regression the number; multiclass (label, {label: p})."""
        # Whether a model takes missing values is not knowable up front (a Pipeline's encoder may take a
        # missing category while its scaler refuses NaN): they are passed, and a refusal is the input's fault.
        missing = self._missing_features(rows)
        columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in self.feature_names]
        try:
            out = self.model.predict(columns, self.feature_names, self.feature_types)
        except Exception as e:
            if missing:  # the library refused a missing value: the input's fault
                first_line = (str(e).splitlines() or [""])[0]
                raise InputError(
                    f"feature {missing[0]!r} is missing and the model does not accept missing values "
                    f"({type(e).__name__}: {first_line})",
                    missing[0],
                ) from e
            raise
        if self.task == "multiclass":
            assert out.probabilities is not None
            labels = [str(c) for c in self.model.classes or ()]
            return [
                (str(label), dict(zip(labels, probs, strict=True)))
                for label, probs in zip(out.values, out.probabilities, strict=True)
            ]
        values = [float(v) for v in out.values]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"the model predicted a non-finite value: {values}")
        return values

    def bins(self, row: Sequence[Any]) -> list[str]:
        """The reference bin of each value of a parsed row, in feature order."""
        return [f.bin(v) for f, v in zip(self.features, row, strict=True)]


def load_predictor(model_dir: str | Path) -> Predictor:
    model = load_model_dir(model_dir)
    return Predictor(model, load_reference(model_dir, model))


@dataclass(frozen=True)
class BinaryNumericModel:
    """A user's binary classifier with numeric features, as the server's ``Model`` protocol: the /predict
    contract of today (positional floats in, P(positive) out, ten decile bins per feature) unchanged."""

    predictor: Predictor

    @property
    def name(self) -> str:
        return self.predictor.name

    @property
    def version(self) -> str:
        return self.predictor.version

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.predictor.feature_names

    @property
    def reference_deciles(self) -> tuple[tuple[float, ...], ...]:
        return tuple(f.cuts for f in self.predictor.features)

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        return self.predictor.predict(rows)


def load_served_model(path: str | Path) -> Any:
    """What ``MODEL_PATH`` names, as the server's ``Model``: a model.json file (as before), or a model
    directory. A directory's model.json is the built-in model itself; another artifact is served through
    its library when it is a binary classifier with numeric features (the other tasks and categorical
    features need the /predict contract to grow first)."""
    from server.loaders import find_artifact
    from server.model import load_model

    path = Path(path)
    if not path.is_dir():
        return load_model(path)
    kind, artifact = find_artifact(path)
    if kind == "builtin":
        return load_model(artifact)
    predictor = load_predictor(path)
    categorical = [f.name for f in predictor.features if f.type != NUMERIC]
    if predictor.task != "binary" or categorical:
        what = (
            f"a {predictor.task} model"
            if predictor.task != "binary"
            else f"categorical features ({', '.join(categorical)})"
        )
        raise ModelLoadError(
            f"MODEL_PATH {path}: serving {what} is not supported yet; "
            "binary classifiers with numeric features are"
        )
    return BinaryNumericModel(predictor)
