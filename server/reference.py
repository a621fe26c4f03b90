"""The reference a model is monitored against, built from its training data: ``MODEL_DIR/reference.json``.

    python -m server.reference --model MODEL_DIR --data train.csv [--target COLUMN] [--categorical A,B]
                               [--task binary|multiclass|regression]

Per feature, in the model's order: a ``numeric`` feature keeps the nine training-data decile cut points
(bins "0".."9", bin ``k`` holding ``cut[k-1] < x <= cut[k]`` as the server counts them); a
``categorical`` one its levels by frequency (at most 20; the rest, and a level literally named "other"
or "missing", fold into bin "other"). Every feature also has a "missing" bin (null or absent). The share
of the training rows in every bin is stored (``reference_share``), not assumed. The prediction keeps its
histogram buckets (classifiers: the 0.05 steps; regression: about 20 bounds at the training
predictions' P1..P99) and, for classifiers, the class list and each class's share of the predicted
labels. Reads CSV (header row) or Parquet (``.parquet``); needs the ``models`` extra.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.contract import FEATURE_BINS, PREDICTION_VALUE_BUCKETS
from server.loaders import CATEGORICAL, NUMERIC, REFERENCE_FILE, TASKS, LoadedModel, load_model_dir
from server.model import ModelLoadError

FORMAT = 1
MAX_LEVELS = 20
SUMMARY_FEATURES = 12  # the summary lists this many features, then counts the rest
OTHER_BIN, MISSING_BIN = "other", "missing"
DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))
# Regression prediction buckets: 20 quantiles from P1 to P99 of the training predictions.
REGRESSION_QUANTILES = tuple(0.01 + i * 0.98 / 19 for i in range(20))


class ReferenceDataError(ValueError):
    """The data does not fit the model (or is unusable); the message says which column and why."""


def read_data(path: str | Path, categorical: Sequence[str] = ()) -> Any:
    """A DataFrame from CSV (header row) or Parquet; categorical columns read as strings."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ReferenceDataError(f"--data {path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=dict.fromkeys(categorical, "string"), skipinitialspace=True)
    except Exception as e:  # pandas' and pyarrow's parse errors share no base class
        raise ReferenceDataError(f"--data {path}: cannot be read: {type(e).__name__}: {e}") from e
    if frame.empty:
        raise ReferenceDataError(f"--data {path}: no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise ReferenceDataError(f"--data {path}: duplicated columns {', '.join(duplicated)}")
    return frame


def _feature_columns(model: LoadedModel, columns: list[str], target: str | None) -> list[str]:
    if target is not None and target not in columns:
        raise ReferenceDataError(
            f"--target {target!r} is not a column of the data (columns: {', '.join(columns)})"
        )
    candidates = [c for c in columns if c != target]
    if model.feature_names:
        absent = [n for n in model.feature_names if n not in candidates]
        if absent:
            raise ReferenceDataError(f"the data has no column for the model's features {', '.join(absent)}")
        extra = [c for c in candidates if c not in model.feature_names]
        if extra:
            raise ReferenceDataError(
                f"columns {', '.join(extra)} are not features of the model"
                + ("" if target else " (name the target column with --target)")
            )
        return list(model.feature_names)
    if model.n_features is not None and len(candidates) != model.n_features:
        raise ReferenceDataError(
            f"the model takes {model.n_features} features, the data has {len(candidates)} columns"
            + (f" besides the target {target!r}" if target else " (name the target column with --target)")
        )
    return candidates


def _types(model: LoadedModel, frame: Any, names: list[str], categorical: Sequence[str]) -> dict[str, str]:
    import pandas as pd

    unknown = [c for c in categorical if c not in names]
    if unknown:
        raise ReferenceDataError(f"--categorical {', '.join(unknown)}: not features of the model")
    types = {}
    for name in names:
        declared = (model.feature_types or {}).get(name, NUMERIC if model.numeric_only else None)
        numeric_data = pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
            frame[name]
        )
        if name in categorical or declared == CATEGORICAL or not numeric_data:
            if declared == NUMERIC:
                why = "is declared categorical" if name in categorical else "holds non-numeric values"
                raise ReferenceDataError(f"feature {name!r} {why}, but the model takes it as a number")
            types[name] = CATEGORICAL
        else:
            types[name] = NUMERIC
    return types


def _numeric_feature(name: str, values: Any, rows: int) -> dict[str, Any]:
    import numpy as np

    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    present = x[~np.isnan(x)]
    if present.size == 0:
        raise ReferenceDataError(f"feature {name!r} has no values in the data")
    if not np.isfinite(present).all():
        raise ReferenceDataError(f"feature {name!r} holds infinite values")
    cuts = np.quantile(present, DECILES)
    counts = np.bincount(np.searchsorted(cuts, present, side="left"), minlength=len(FEATURE_BINS))
    shares = {b: int(c) / rows for b, c in zip(FEATURE_BINS, counts, strict=True)}
    shares[MISSING_BIN] = (rows - present.size) / rows
    return {"name": name, "type": NUMERIC, "cuts": [float(c) for c in cuts], "reference_share": shares}


def _categorical_feature(name: str, values: Any, rows: int) -> dict[str, Any]:
    present = [str(v) for v in values if not _missing(v)]
    if not present:
        raise ReferenceDataError(f"feature {name!r} has no values in the data")
    counts = Counter(v for v in present if v not in (OTHER_BIN, MISSING_BIN))
    # By frequency, ties by name, so the file is the same on every run.
    levels = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_LEVELS]
    shares = {level: counts[level] / rows for level in levels}
    shares[OTHER_BIN] = (len(present) - sum(counts[level] for level in levels)) / rows
    shares[MISSING_BIN] = (rows - len(present)) / rows
    return {"name": name, "type": CATEGORICAL, "levels": levels, "reference_share": shares}


def _missing(v: Any) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or v == ""


def _column(values: Any, kind: str) -> list[Any]:
    if kind == NUMERIC:
        return [None if _missing(v) else float(v) for v in values]
    return [None if _missing(v) else str(v) for v in values]


def _prediction_reference(model: LoadedModel, values: list[Any], probabilities: Any) -> dict[str, Any]:
    import numpy as np

    if model.task == "regression":
        y = np.asarray(values, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ReferenceDataError("the model predicts non-finite values on the training data")
        bounds = sorted({float(b) for b in np.quantile(y, REGRESSION_QUANTILES)})
        if len(bounds) < 2:
            raise ReferenceDataError("the model predicts one constant value on the training data")
        p10, p50, p90 = (float(q) for q in np.quantile(y, (0.1, 0.5, 0.9)))
        return {"buckets": bounds, "quantiles": {"p10": p10, "p50": p50, "p90": p90}}
    assert model.classes is not None
    assert probabilities is not None
    predicted = np.argmax(np.asarray(probabilities), axis=1)
    counts = np.bincount(predicted, minlength=len(model.classes))
    return {
        "buckets": list(PREDICTION_VALUE_BUCKETS),
        "class_share": {str(c): int(n) / len(predicted) for c, n in zip(model.classes, counts, strict=True)},
    }


def build_reference(
    model: LoadedModel,
    frame: Any,
    target: str | None = None,
    categorical: Sequence[str] = (),
    source: str = "",
) -> dict[str, Any]:
    """The reference of ``model`` from the training ``frame`` (a DataFrame); see the module docstring."""
    names = _feature_columns(model, [str(c) for c in frame.columns], target)
    types = _types(model, frame, names, categorical)
    rows = len(frame)
    features = [
        (_numeric_feature if types[n] == NUMERIC else _categorical_feature)(n, frame[n], rows) for n in names
    ]
    columns = [_column(frame[n], types[n]) for n in names]
    try:
        out = model.predict(columns, names, types)
    except Exception as e:
        missing = [n for n, col in zip(names, columns, strict=True) if any(v is None for v in col)]
        hint = f" (features with missing values: {', '.join(missing)})" if missing else ""
        raise ReferenceDataError(
            f"the model fails on the training data{hint}: {type(e).__name__}: {e}"
        ) from e
    reference: dict[str, Any] = {
        "format": FORMAT,
        "model": {
            "artifact": model.artifact.name,
            "kind": model.kind,
            "name": model.name,
            "version": model.version,
        },
        "task": model.task,
        "features": features,
        "prediction": _prediction_reference(model, out.values, out.probabilities),
        "data": {"source": source, "rows": rows, "target": target},
    }
    if model.classes is not None:
        reference["classes"] = list(model.classes)
    return reference


def render(reference: dict[str, Any]) -> str:
    return json.dumps(reference, indent=2) + "\n"


def summary(reference: dict[str, Any], path: Path) -> str:
    model, data, features = reference["model"], reference["data"], reference["features"]
    task = reference["task"]
    if "classes" in reference:
        task += f" (classes {', '.join(str(c) for c in reference['classes'])})"
    kinds = Counter(f["type"] for f in features)
    lines = [
        f"wrote {path}",
        f"model: {model['kind']} {model['artifact']}, version {model['version']}; task: {task}",
        f"rows used: {data['rows']} from {data['source']}"
        + (f" (target column {data['target']!r})" if data["target"] else ""),
        f"features: {len(features)} ({kinds[NUMERIC]} numeric, {kinds[CATEGORICAL]} categorical)",
    ]
    shown = features[:SUMMARY_FEATURES]
    width = max(len(f["name"]) for f in shown)
    for f in shown:
        detail = f"{len(f['levels'])} levels" if f["type"] == CATEGORICAL else "deciles"
        missing = f["reference_share"][MISSING_BIN]
        lines.append(f"  {f['name']:<{width}}  {f['type']:<11}  {detail:<9}  missing {missing:.1%}")
    if len(features) > len(shown):
        lines.append(f"  ... and {len(features) - len(shown)} more (all in {path.name})")
    buckets = reference["prediction"]["buckets"]
    lines.append(f"prediction buckets: {len(buckets)} from {buckets[0]:g} to {buckets[-1]:g}")
    return "\n".join(lines)


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m server.reference",
        description="Build MODEL_DIR/reference.json (the drift and prediction reference) from training data.",
    )
    parser.add_argument("--model", required=True, type=Path, help="MODEL_DIR, holding exactly one artifact")
    parser.add_argument(
        "--data", required=True, type=Path, help="training data: CSV with a header, or Parquet"
    )
    parser.add_argument("--target", help="the label column of the data (not a feature)")
    parser.add_argument(
        "--categorical", type=_csv_list, default=[], help="comma-separated categorical features"
    )
    parser.add_argument("--task", choices=TASKS, help="override the task detected from the model")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = load_model_dir(args.model)
        if args.task:
            model = model.with_task(args.task)
        declared = [n for n, t in (model.feature_types or {}).items() if t == CATEGORICAL]
        frame = read_data(args.data, [*args.categorical, *declared])
        reference = build_reference(model, frame, args.target, args.categorical, source=args.data.name)
    except (ModelLoadError, ReferenceDataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = args.model / REFERENCE_FILE
    path.write_text(render(reference))
    print(summary(reference, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
