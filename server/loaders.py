"""A user's model directory (``MODEL_DIR``) loaded through its own library, behind one small interface.

The directory holds exactly one artifact, and its file name says what it is:

- ``MLmodel``: an MLflow model directory, loaded with ``mlflow.pyfunc.load_model``;
- ``model.joblib``: a scikit-learn estimator or ``Pipeline``, loaded with ``joblib.load``;
- ``model.onnx``: an ONNX graph, run by onnxruntime;
- ``model.json``: the built-in logistic-regression format (``server.model``).

Each library is imported only when its artifact is loaded, so a server without the ``models`` extra
still serves ``model.json``. Every loader gives a ``LoadedModel``: its task (``binary``, ``multiclass``
or ``regression``), the feature names when the model knows them, the class labels of a classifier, and
``predict(columns)``, which takes the rows as one sequence of values per feature and returns the
model's own outputs (no re-implementation of any model format).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.model import ModelLoadError

# File name -> kind. The order is the order an error lists them in.
ARTIFACTS = {"MLmodel": "mlflow", "model.joblib": "sklearn", "model.onnx": "onnx", "model.json": "builtin"}
TASKS = ("binary", "multiclass", "regression")
NUMERIC, CATEGORICAL = "numeric", "categorical"
REFERENCE_FILE = "reference.json"
VERSION_CHARS = 12


@dataclass
class Outputs:
    """A batch's predictions, in row order.

    values: binary, P(positive class) (``classes[1]``); multiclass, the predicted label; regression,
        the predicted number.
    probabilities: classifiers only, one row of ``len(classes)`` probabilities per prediction.
    """

    values: list[Any]
    probabilities: list[list[float]] | None = None


@dataclass
class LoadedModel:
    """One artifact behind one interface; ``predict`` gets one value sequence per feature, in order.

    feature_names / feature_types: what the model itself says (``None`` when it does not know: a
        scikit-learn model fitted on an array, a one-tensor ONNX graph, an MLflow model without a
        signature); the reference supplies them then.
    n_features: how many inputs the model takes, when it says so.
    accepts_missing: what the estimator's tags say (``None``: unknown). Informative only: a Pipeline's
        tags speak for its first step, so missing values are always tried, a failure being the input's.
    numeric_only: every input is a number, even where the names are unknown (one ONNX float tensor).
    """

    kind: str
    artifact: Path
    name: str
    version: str
    task: str
    classes: tuple[Any, ...] | None
    feature_names: tuple[str, ...] | None
    feature_types: dict[str, str] | None
    n_features: int | None
    _predict: Callable[..., Outputs] = field(repr=False)
    accepts_missing: bool | None = None
    numeric_only: bool = False
    native: Any = field(default=None, repr=False)  # the library's own object (tests compare against it)

    def predict(
        self,
        columns: Sequence[Sequence[Any]],
        names: Sequence[str] | None = None,
        types: dict[str, str] | None = None,
    ) -> Outputs:
        """Predict rows given as one column of values per feature, in feature order (``None``: missing).

        names / types: the features' names and kinds, when the model does not know them itself (the
        reference's); numeric values are numbers, categorical ones strings.
        """
        names = self.feature_names or names
        if names is None:
            names = tuple(f"x{i}" for i in range(len(columns)))
        return self._predict(names, columns, self.feature_types or types)

    def with_task(self, task: str) -> LoadedModel:
        """The same model read as another task (``--task``); refuses a reading its outputs cannot give."""
        if task not in TASKS:
            raise ModelLoadError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if task == self.task:
            return self
        if self.task == "binary" and task == "multiclass":
            return _replace_task(self, task, _binary_as_multiclass(self._predict, self.classes))
        if self.task == "regression" and task == "binary":
            return _replace_task(self, task, _regression_as_binary(self._predict), classes=(0, 1))
        raise ModelLoadError(
            f"{self.artifact}: a {self.task} model cannot be read as {task}"
            + (f" (classes {list(self.classes)})" if self.classes else "")
        )


def _replace_task(model: LoadedModel, task: str, predict: Callable, classes: Any = None) -> LoadedModel:
    import dataclasses

    return dataclasses.replace(model, task=task, _predict=predict, classes=classes or model.classes)


def _binary_as_multiclass(predict: Callable, classes: Any) -> Callable:
    def as_multiclass(*args: Any) -> Outputs:
        out = predict(*args)
        assert out.probabilities is not None
        labels = [classes[max(range(len(p)), key=p.__getitem__)] for p in out.probabilities]
        return Outputs(labels, out.probabilities)

    return as_multiclass


def _regression_as_binary(predict: Callable) -> Callable:
    def as_binary(*args: Any) -> Outputs:
        out = predict(*args)
        values = [float(v) for v in out.values]
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError("read as binary, the model's output must be a probability in [0, 1]")
        return Outputs(values, [[1.0 - v, v] for v in values])

    return as_binary


def find_artifact(model_dir: str | Path) -> tuple[str, Path]:
    """The kind and path of the one artifact in ``model_dir``; a clear error for none or several."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        what = "does not exist" if not model_dir.exists() else "is not a directory"
        raise ModelLoadError(f"model directory {model_dir} {what}")
    found = [(kind, model_dir / name) for name, kind in ARTIFACTS.items() if (model_dir / name).is_file()]
    if not found:
        raise ModelLoadError(
            f"{model_dir}: no model artifact; expected exactly one of {', '.join(ARTIFACTS)}"
        )
    if len(found) > 1:
        raise ModelLoadError(
            f"{model_dir}: several model artifacts ({', '.join(p.name for _, p in found)}); "
            "keep exactly one per directory"
        )
    return found[0]


def content_version(artifact: Path) -> str:
    """A short hash of the artifact's content (for MLflow: every file of its directory, by path)."""
    digest = hashlib.sha256()
    if artifact.name == "MLmodel":
        root = artifact.parent
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != REFERENCE_FILE):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    else:
        digest.update(artifact.read_bytes())
    return digest.hexdigest()[:VERSION_CHARS]


def load_model_dir(model_dir: str | Path) -> LoadedModel:
    """Load the one artifact of ``model_dir`` with its library."""
    kind, artifact = find_artifact(model_dir)
    loader = {"mlflow": _load_mlflow, "sklearn": _load_sklearn, "onnx": _load_onnx, "builtin": _load_builtin}
    return loader[kind](artifact)


def _require(module: str, kind: str, artifact: Path) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModelLoadError(
            f"{artifact}: a {kind} model needs the Python package {module.partition('.')[0]!r} "
            f"(install the project's `models` extra): {e}"
        ) from e


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _frame(names: Sequence[str], columns: Sequence[Sequence[Any]], types: dict[str, str] | None) -> Any:
    """A pandas DataFrame: numeric columns as float64 (missing: NaN), categorical as object (None)."""
    import numpy as np
    import pandas as pd

    data = {}
    for name, values in zip(names, columns, strict=True):
        if types and types.get(name) == CATEGORICAL:
            data[name] = pd.Series([None if _is_missing(v) else v for v in values], dtype=object)
        elif all(isinstance(v, int | float) or v is None for v in values):
            data[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            data[name] = pd.Series([None if _is_missing(v) else v for v in values], dtype=object)
    return pd.DataFrame(data, columns=list(names))


def _matrix(columns: Sequence[Sequence[Any]]) -> Any:
    import numpy as np

    rows = len(columns[0]) if columns else 0
    out = np.empty((rows, len(columns)), dtype=np.float64)
    for j, values in enumerate(columns):
        out[:, j] = [np.nan if v is None else v for v in values]
    return out


def _classifier_outputs(proba: Any, classes: Sequence[Any], task: str) -> Outputs:
    import numpy as np

    proba = np.asarray(proba, dtype=np.float64)
    rows = proba.tolist()
    if task == "binary":
        return Outputs(proba[:, 1].tolist(), rows)
    labels = [classes[i] for i in np.argmax(proba, axis=1)]
    return Outputs(labels, rows)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can carry (class labels)."""
    return value.item() if hasattr(value, "item") else value


def _estimator_task(estimator: Any, artifact: Path) -> tuple[str, tuple[Any, ...] | None]:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        classes = getattr(estimator, "classes_", None)
        if classes is None or not hasattr(estimator, "predict_proba"):
            raise ModelLoadError(f"{artifact}: a classifier needs classes_ and predict_proba (is it fitted?)")
        classes = tuple(_plain(c) for c in classes)
        if len(classes) < 2:
            raise ModelLoadError(f"{artifact}: a classifier with {len(classes)} class cannot be monitored")
        return ("binary" if len(classes) == 2 else "multiclass"), classes
    if is_regressor(estimator):
        return "regression", None
    raise ModelLoadError(
        f"{artifact}: {type(estimator).__name__} is neither a scikit-learn classifier nor a regressor"
    )


def _accepts_missing(estimator: Any) -> bool | None:
    try:
        return bool(estimator.__sklearn_tags__().input_tags.allow_nan)
    except Exception:  # tags are a scikit-learn >= 1.6 API; third-party estimators may not have them
        return None


def _sklearn_model(kind: str, artifact: Path, estimator: Any, name: str, version: str, **extra: Any):
    """A LoadedModel around a fitted scikit-learn estimator (joblib, or MLflow's sklearn flavour)."""
    task, classes = _estimator_task(estimator, artifact)
    names = getattr(estimator, "feature_names_in_", None)
    names = tuple(str(n) for n in names) if names is not None else None
    n_features = getattr(estimator, "n_features_in_", None)

    def predict(feature_names: Sequence[str], columns: Sequence[Sequence[Any]], types: Any) -> Outputs:
        x = _frame(feature_names, columns, types) if names else _matrix(columns)
        if task == "regression":
            import numpy as np

            return Outputs(np.asarray(estimator.predict(x), dtype=np.float64).reshape(-1).tolist())
        return _classifier_outputs(estimator.predict_proba(x), classes or (), task)

    return LoadedModel(
        kind=kind,
        artifact=artifact,
        name=name,
        version=version,
        task=task,
        classes=classes,
        feature_names=names,
        feature_types=extra.get("feature_types"),
        n_features=int(n_features) if n_features is not None else (len(names) if names else None),
        _predict=predict,
        accepts_missing=_accepts_missing(estimator),
        native=extra.get("native", estimator),
    )


def _load_sklearn(artifact: Path) -> LoadedModel:
    joblib = _require("joblib", "scikit-learn", artifact)
    _require("sklearn", "scikit-learn", artifact)
    try:
        estimator = joblib.load(artifact)
    except Exception as e:
        raise ModelLoadError(f"{artifact}: joblib cannot load it: {type(e).__name__}: {e}") from e
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{artifact}: holds a {type(estimator).__name__}, not a scikit-learn estimator")
    return _sklearn_model("sklearn", artifact, estimator, artifact.parent.name, content_version(artifact))


def _load_builtin(artifact: Path) -> LoadedModel:
    from server.model import load_model

    model = load_model(artifact)

    def predict(_names: Sequence[str], columns: Sequence[Sequence[Any]], _types: Any) -> Outputs:
        rows = [list(r) for r in zip(*columns, strict=True)]
        p = model.predict(rows)
        return Outputs(p, [[1.0 - v, v] for v in p])

    return LoadedModel(
        kind="builtin",
        artifact=artifact,
        name=model.name,
        version=model.version,
        task="binary",
        classes=(0, 1),
        feature_names=model.feature_names,
        feature_types=dict.fromkeys(model.feature_names, NUMERIC),
        n_features=len(model.feature_names),
        _predict=predict,
        accepts_missing=False,
        numeric_only=True,
        native=model,
    )


# ONNX tensor element types this module feeds: float and double numbers, strings for categories.
_ONNX_NUMERIC = {"tensor(float)": "float32", "tensor(double)": "float64"}
_ONNX_INTEGER = {"tensor(int64)": "int64", "tensor(int32)": "int32"}


def _onnx_classes(artifact: Path) -> tuple[Any, ...] | None:
    """The class labels an ONNX classifier's graph declares: the ``classlabels_*`` attribute of its
    ai.onnx.ml classifier node (LinearClassifier, TreeEnsembleClassifier, SVMClassifier) or ZipMap."""
    onnx = _require("onnx", "ONNX", artifact)
    graph = onnx.load(str(artifact)).graph
    for node in graph.node:
        if node.domain != "ai.onnx.ml":
            continue
        for attr in node.attribute:
            if attr.name in ("classlabels_ints", "classlabels_int64s") and attr.ints:
                return tuple(int(c) for c in attr.ints)
            if attr.name == "classlabels_strings" and attr.strings:
                return tuple(s.decode() for s in attr.strings)
    return None


def _load_onnx(artifact: Path) -> LoadedModel:
    ort = _require("onnxruntime", "ONNX", artifact)
    import numpy as np

    try:
        session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelLoadError(f"{artifact}: onnxruntime cannot load it: {type(e).__name__}: {e}") from e
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    supported = {**_ONNX_NUMERIC, **_ONNX_INTEGER, "tensor(string)": "object"}
    for i in inputs:
        if i.type not in supported:
            raise ModelLoadError(
                f"{artifact}: input {i.name!r} has type {i.type}; supported: {sorted(supported)}"
            )
    if len(inputs) == 1 and inputs[0].type in _ONNX_NUMERIC:
        # One [N, n] tensor: the graph knows how many features, not their names.
        shape = inputs[0].shape
        n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        names, types = None, None
    else:
        # One [N, 1] input per feature (skl2onnx's DataFrame export): names and types are the graph's.
        names = tuple(i.name for i in inputs)
        types = {i.name: CATEGORICAL if i.type == "tensor(string)" else NUMERIC for i in inputs}
        n_features = len(names)
    if len(outputs) >= 2:
        classes = _onnx_classes(artifact)
        if classes is None:
            raise ModelLoadError(f"{artifact}: two outputs but no classifier node naming the class labels")
        task = "binary" if len(classes) == 2 else "multiclass"
        label_out, proba_out = outputs[0].name, outputs[1].name
    elif len(outputs) == 1:
        classes, task, label_out, proba_out = None, "regression", None, outputs[0].name
    else:
        raise ModelLoadError(f"{artifact}: the graph has no output")
    del label_out  # the label is argmax of the probabilities; only those are read

    def feed(columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
        if names is None:
            return {inputs[0].name: _matrix(columns).astype(_ONNX_NUMERIC[inputs[0].type])}
        out = {}
        for i, values in zip(inputs, columns, strict=True):
            dtype = supported[i.type]
            if dtype == "object":
                col = np.array(["" if _is_missing(v) else str(v) for v in values], dtype=object)
            else:
                col = np.array([np.nan if v is None else v for v in values], dtype=dtype)
            out[i.name] = col.reshape(-1, 1)
        return out

    def predict(_names: Sequence[str], columns: Sequence[Sequence[Any]], _types: Any) -> Outputs:
        (result,) = session.run([proba_out], feed(columns))
        if classes is None:
            return Outputs(np.asarray(result, dtype=np.float64).reshape(-1).tolist())
        if isinstance(result, list):  # ZipMap: one {label: p} per row
            result = [[row[c] for c in classes] for row in result]
        return _classifier_outputs(result, classes, task)

    return LoadedModel(
        kind="onnx",
        artifact=artifact,
        name=artifact.parent.name,
        version=content_version(artifact),
        task=task,
        classes=classes,
        feature_names=names,
        feature_types=types,
        n_features=n_features,
        _predict=predict,
        accepts_missing=None,
        numeric_only=names is None,
        native=session,
    )


def _mlflow_schema(pyfunc: Any) -> tuple[tuple[str, ...] | None, dict[str, str] | None]:
    """Feature names and types from the model's input signature (column-based), if it has one."""
    schema = pyfunc.metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or schema.is_tensor_spec():
        return None, None
    names = tuple(schema.input_names())
    types = {}
    for spec in schema.inputs:
        dtype = str(getattr(spec.type, "name", spec.type)).lower()
        types[spec.name] = CATEGORICAL if dtype in ("string", "binary") else NUMERIC
    return names, types


def _load_mlflow(artifact: Path) -> LoadedModel:
    pyfunc_module = _require("mlflow.pyfunc", "MLflow", artifact)
    model_dir = artifact.parent
    try:
        pyfunc = pyfunc_module.load_model(str(model_dir))
    except Exception as e:
        raise ModelLoadError(f"{model_dir}: mlflow.pyfunc cannot load it: {type(e).__name__}: {e}") from e
    names, types = _mlflow_schema(pyfunc)
    version = content_version(artifact)
    try:
        raw = pyfunc.get_raw_model()
    except Exception:  # not every flavour exposes its raw model
        raw = None
    if raw is not None and hasattr(raw, "predict") and _is_sklearn(raw):
        # The sklearn flavour: MLflow loaded the estimator; its predict_proba gives the probabilities
        # that a label-only pyfunc.predict would drop.
        model = _sklearn_model(
            "mlflow", artifact, raw, model_dir.name, version, feature_types=types, native=pyfunc
        )
        if names and not model.feature_names:
            model.feature_names = names
        return model

    # Any other pyfunc: its output signature decides. Two or more named columns: class probabilities
    # (the columns are the classes); else one number per row.
    classes = _mlflow_output_classes(pyfunc)
    task = "regression" if classes is None else ("binary" if len(classes) == 2 else "multiclass")

    def predict(feature_names: Sequence[str], columns: Sequence[Sequence[Any]], types: Any) -> Outputs:
        import numpy as np
        import pandas as pd

        result = pyfunc.predict(_frame(feature_names, columns, types))
        if classes is None:
            array = np.asarray(result, dtype=np.float64)
            if array.ndim == 2 and array.shape[1] != 1:
                raise ValueError(
                    f"the model returned {array.shape[1]} columns; its signature declares one output"
                )
            return Outputs(array.reshape(-1).tolist())
        if isinstance(result, pd.DataFrame):
            result = result[[str(c) for c in classes]]
        proba = np.asarray(result, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != len(classes):
            raise ValueError(
                f"the model returned shape {proba.shape}; its signature declares {len(classes)} classes"
            )
        return _classifier_outputs(proba, classes, task)

    return LoadedModel(
        kind="mlflow",
        artifact=artifact,
        name=model_dir.name,
        version=version,
        task=task,
        classes=classes,
        feature_names=names,
        feature_types=types,
        n_features=len(names) if names else None,
        _predict=predict,
        accepts_missing=None,
        native=pyfunc,
    )


def _is_sklearn(raw: Any) -> bool:
    """A scikit-learn estimator (imported only when the object comes from scikit-learn or may)."""
    try:
        from sklearn.base import is_classifier, is_regressor
    except ImportError:
        return False
    return is_classifier(raw) or is_regressor(raw)


def _mlflow_output_classes(pyfunc: Any) -> tuple[str, ...] | None:
    """The class labels of a pyfunc classifier: its output signature's column names, when there are two
    or more (one probability column per class); None for one output (a number)."""
    schema = pyfunc.metadata.get_output_schema()
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    names = tuple(schema.input_names())
    return names if len(names) >= 2 else None


# What a model directory needs installed besides the server, per kind (the MLflow model's own
# requirements.txt adds to it). pandas: named and categorical inputs reach scikit-learn as a DataFrame.
KIND_REQUIREMENTS = {
    "builtin": (),
    "sklearn": ("scikit-learn", "joblib", "pandas"),
    "onnx": ("onnxruntime", "onnx", "numpy"),
    "mlflow": ("mlflow-skinny", "pandas"),
}
_SKLEARN_VERSION = re.compile(rb"_sklearn_version\x94?\x8c(.)")


def _pickled_sklearn_version(artifact: Path) -> str | None:
    """The scikit-learn version a joblib pickle was written with (estimators pickle ``_sklearn_version``),
    read from the bytes without unpickling; None when it is not found (an unknown compressor)."""
    import bz2
    import gzip
    import lzma
    import zlib

    data = artifact.read_bytes()
    openers = {
        b"\x1f\x8b": gzip.decompress,
        b"BZh": bz2.decompress,
        b"\xfd7zXZ": lzma.decompress,  # xz
        b"\x5d\x00\x00": lzma.decompress,  # the legacy .lzma format (joblib's "lzma")
    }
    try:
        for magic, decompress in openers.items():
            if data.startswith(magic):
                data = decompress(data)
                break
        else:
            if data[:1] == b"x":  # zlib, joblib's default compressor
                data = zlib.decompress(data)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return None
    match = _SKLEARN_VERSION.search(data)
    if not match:
        return None
    end = match.end() + match.group(1)[0]
    version = data[match.end() : end].decode("ascii", "replace")
    return version if re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version) else None


def _mlflow_requirements(model_dir: Path) -> list[str]:
    """The MLflow model's requirements.txt, ``mlflow`` swapped for ``mlflow-skinny`` (enough to load a
    pyfunc model, a fraction of the size)."""
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0]
        if name.lower().replace("_", "-") == "mlflow":
            line = "mlflow-skinny" + line[len(name) :]
        out.append(line)
    return out


def _requirement_name(line: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0].lower().replace("_", "-")


def _reference_for(path: Path, artifact: Path, version: str) -> tuple[str, tuple[str, ...]]:
    """The task and feature names of a reference.json, refused unless it was built for this artifact."""
    rebuild = "(rebuild it with python -m server.reference)"
    try:
        reference = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path}: no reference; build it with "
            f"python -m server.reference --model {path.parent} --data TRAIN.csv"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: cannot be read: {e}") from e
    built_for = reference.get("model") if isinstance(reference, dict) else None
    built_for = built_for if isinstance(built_for, dict) else {}
    if (built_for.get("artifact"), built_for.get("version")) != (artifact.name, version):
        raise ModelLoadError(
            f"{path}: built for {built_for.get('artifact')} version {built_for.get('version')}, "
            f"but the model is {artifact.name} version {version} {rebuild}"
        )
    task, features = reference.get("task"), reference.get("features")
    if task not in TASKS or not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise ModelLoadError(f"{path}: no task or features {rebuild}")
    return task, tuple(str(f.get("name")) for f in features)


@dataclass(frozen=True)
class ModelDirInfo:
    """What a model directory is, read from its files alone (no model library imported)."""

    kind: str
    artifact: Path
    version: str
    task: str
    feature_names: tuple[str, ...]
    requirements: tuple[str, ...]  # pip requirement lines the kind needs (pinned where the model says)


def inspect_model_dir(model_dir: str | Path) -> ModelDirInfo:
    """Check ``model_dir`` without loading its model: exactly one artifact, and a ``reference.json`` built
    for that artifact's current content. For the stack's preview and the image build, which must not need
    the ML libraries; the server checks the reference against the loaded model in full."""
    model_dir = Path(model_dir)
    kind, artifact = find_artifact(model_dir)
    if kind == "builtin":
        from server.model import load_model

        builtin = load_model(artifact)
        task, names, version = "binary", builtin.feature_names, builtin.version
    else:
        version = content_version(artifact)
        task, names = _reference_for(model_dir / REFERENCE_FILE, artifact, version)
    requirements = list(KIND_REQUIREMENTS[kind])
    if kind == "sklearn":
        pinned = _pickled_sklearn_version(artifact)
        if pinned:
            requirements[0] = f"scikit-learn=={pinned}"
    if kind == "mlflow":
        own = _mlflow_requirements(model_dir)
        names_own = {_requirement_name(r) for r in own}
        requirements = own + [r for r in requirements if _requirement_name(r) not in names_own]
    return ModelDirInfo(kind, artifact, version, task, names, tuple(requirements))
