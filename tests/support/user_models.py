"""Real user models, trained on datasets that ship inside scikit-learn (no downloads), saved as a user would.

Each builder writes one ``MODEL_DIR`` (the artifact only; no reference) and its training CSV and returns a
``UserModel``: the directory, the fitted estimator (the library's own predictions are the oracle), and
the train / held-out frames; ``with_reference`` adds the reference.json ``python -m server.reference``
would write. Models are small so a test module trains them in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from server.loaders import load_model_dir
from server.reference import build_reference, read_data, render

SEED = 20240601
TARGET = "target"


@dataclass
class UserModel:
    model_dir: Path
    estimator: Any  # the fitted scikit-learn object the artifact was made from
    train: pd.DataFrame  # features and the TARGET column
    test: pd.DataFrame  # held-out rows, features only
    data_csv: Path  # `train` written as CSV (header row, TARGET included)
    categorical: tuple[str, ...] = ()

    @property
    def features(self) -> list[str]:
        return [c for c in self.train.columns if c != TARGET]


def with_reference(user: UserModel) -> UserModel:
    """`user` with MODEL_DIR/reference.json built from its training CSV."""
    frame = read_data(user.data_csv, user.categorical)
    reference = build_reference(load_model_dir(user.model_dir), frame, TARGET, user.categorical)
    (user.model_dir / "reference.json").write_text(render(reference))
    return user


def _split(frame: pd.DataFrame, y: Any) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
    return train_test_split(frame, y, test_size=0.25, random_state=SEED)


def _finish(model_dir: Path, estimator: Any, x_train, x_test, y_train, categorical=()) -> UserModel:
    train = x_train.assign(**{TARGET: np.asarray(y_train)})
    data_csv = model_dir.parent / f"{model_dir.name}-train.csv"
    train.to_csv(data_csv, index=False)
    return UserModel(model_dir, estimator, train, x_test.reset_index(drop=True), data_csv, tuple(categorical))


def _save_joblib(model_dir: Path, estimator: Any) -> None:
    model_dir.mkdir(parents=True)
    joblib.dump(estimator, model_dir / "model.joblib")


def binary_pipeline(root: Path) -> UserModel:
    """30 features, a scaler and a logistic regression fitted on a DataFrame (names known)."""
    data = load_breast_cancer(as_frame=True)
    x_train, x_test, y_train, _ = _split(data.data, data.target)
    estimator = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    estimator.fit(x_train, y_train)
    _save_joblib(root / "breast-cancer", estimator)
    return _finish(root / "breast-cancer", estimator, x_train, x_test, y_train)


def multiclass_array(root: Path) -> UserModel:
    """Iris, fitted on a bare array: the model knows 4 inputs but not their names (the CSV header does)."""
    data = load_iris(as_frame=True)
    frame = data.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    x_train, x_test, y_train, _ = _split(frame, data.target)
    estimator = LogisticRegression(max_iter=500).fit(x_train.to_numpy(), y_train)
    _save_joblib(root / "iris", estimator)
    return _finish(root / "iris", estimator, x_train, x_test, y_train)


def regressor(root: Path) -> UserModel:
    data = load_diabetes(as_frame=True)
    x_train, x_test, y_train, _ = _split(data.data, data.target)
    estimator = Ridge(alpha=0.5).fit(x_train, y_train)
    _save_joblib(root / "diabetes", estimator)
    return _finish(root / "diabetes", estimator, x_train, x_test, y_train)


def _diabetes_with_category() -> tuple[pd.DataFrame, Any]:
    """Diabetes with its BMI column turned into a 5-level category (uneven shares) and sex as labels."""
    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.data.copy()
    frame["bmi_band"] = pd.cut(
        frame.pop("bmi"), [0, 22, 25, 30, 35, 100], labels=["lean", "normal", "over", "obese", "severe"]
    ).astype(str)
    frame["sex"] = frame["sex"].map({1.0: "f", 2.0: "m"})
    return frame, data.target


def categorical_pipeline(root: Path) -> UserModel:
    """A binary classifier (target above its median) with OneHotEncoder on two string columns."""
    frame, target = _diabetes_with_category()
    y = (target > np.median(target)).astype(int)
    x_train, x_test, y_train, _ = _split(frame, y)
    categorical = ["bmi_band", "sex"]
    numeric = [c for c in frame.columns if c not in categorical]
    estimator = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                        ("num", StandardScaler(), numeric),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    estimator.fit(x_train, y_train)
    _save_joblib(root / "diabetes-bands", estimator)
    return _finish(root / "diabetes-bands", estimator, x_train, x_test, y_train, categorical)


def onnx_multiclass(root: Path) -> UserModel:
    """Iris exported with skl2onnx: one float32 tensor input, label + ZipMap probability outputs."""
    from skl2onnx import to_onnx

    data = load_iris(as_frame=True)
    frame = data.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    x_train, x_test, y_train, _ = _split(frame, data.target)
    estimator = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    estimator.fit(x_train.to_numpy(), y_train)
    onx = to_onnx(estimator, x_train.to_numpy()[:1].astype(np.float32), target_opset=17)
    model_dir = root / "iris-onnx"
    model_dir.mkdir(parents=True)
    (model_dir / "model.onnx").write_bytes(onx.SerializeToString())
    return _finish(model_dir, estimator, x_train, x_test, y_train)


def mlflow_binary(root: Path) -> UserModel:
    """The breast-cancer pipeline saved as an MLflow model (sklearn flavour) with its signature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    data = load_breast_cancer(as_frame=True)
    x_train, x_test, y_train, _ = _split(data.data, data.target)
    estimator = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=200))])
    estimator.fit(x_train, y_train)
    model_dir = root / "breast-cancer-mlflow"
    mlflow.sklearn.save_model(
        estimator,
        str(model_dir),
        serialization_format="cloudpickle",
        signature=infer_signature(x_train, estimator.predict(x_train)),
    )
    return _finish(model_dir, estimator, x_train, x_test, y_train)


def onnx_regressor(root: Path) -> UserModel:
    """Diabetes ridge regression exported with skl2onnx: one float32 tensor in, one [N, 1] value out."""
    from skl2onnx import to_onnx

    data = load_diabetes(as_frame=True)
    x_train, x_test, y_train, _ = _split(data.data, data.target)
    estimator = Ridge(alpha=0.5).fit(x_train.to_numpy(), y_train)
    onx = to_onnx(estimator, x_train.to_numpy()[:1].astype(np.float32), target_opset=17)
    model_dir = root / "diabetes-onnx"
    model_dir.mkdir(parents=True)
    (model_dir / "model.onnx").write_bytes(onx.SerializeToString())
    return _finish(model_dir, estimator, x_train, x_test, y_train)


def onnx_categorical(root: Path) -> UserModel:
    """The categorical pipeline exported with one ONNX input per column (string tensors for the
    categories) and plain probability tensors (no ZipMap): the graph names and types every feature."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    user = categorical_pipeline(root / "source")
    x_train = user.train[user.features]
    # skl2onnx runs the numeric columns as float32: cast them so the two libraries see the same numbers.
    numeric = [c for c in user.features if c not in user.categorical]
    x_train = x_train.astype(dict.fromkeys(numeric, np.float32))
    estimator = user.estimator.fit(x_train, user.train[TARGET])
    inputs = [
        (c, StringTensorType([None, 1]) if c in user.categorical else FloatTensorType([None, 1]))
        for c in user.features
    ]
    onx = to_onnx(estimator, initial_types=inputs, options={"zipmap": False}, target_opset=17)
    model_dir = root / "diabetes-bands-onnx"
    model_dir.mkdir(parents=True)
    (model_dir / "model.onnx").write_bytes(onx.SerializeToString())
    test = user.test.astype(dict.fromkeys(numeric, np.float32))
    return _finish(model_dir, estimator, x_train, test, user.train[TARGET], user.categorical)


class _Doubling:
    """A generic MLflow pyfunc model (no scikit-learn inside): twice the sum of its inputs."""

    def __new__(cls):
        import mlflow.pyfunc

        class Doubling(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return 2.0 * model_input.sum(axis=1).to_numpy()

        return Doubling()


def mlflow_pyfunc_regressor(root: Path) -> UserModel:
    """A custom pyfunc regression model with a column signature (names and types come from MLflow)."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    data = load_diabetes(as_frame=True)
    frame = data.data[["age", "bmi", "bp"]]
    x_train, x_test, y_train, _ = _split(frame, data.target)
    model = _Doubling()
    model_dir = root / "doubling-mlflow"
    mlflow.pyfunc.save_model(
        str(model_dir), python_model=model, signature=infer_signature(x_train, 2.0 * x_train.sum(axis=1))
    )
    return _finish(model_dir, model, x_train, x_test, y_train)


def _softmax_model(coef: np.ndarray, intercept: np.ndarray, classes: list[str]):
    """A generic pyfunc classifier: a softmax over linear scores, one probability column per class."""
    import mlflow.pyfunc

    class Softmax(mlflow.pyfunc.PythonModel):
        def __init__(self):
            self.coef, self.intercept, self.classes = coef, intercept, classes

        def predict(self, context, model_input, params=None):
            z = model_input.to_numpy(dtype=float) @ self.coef.T + self.intercept
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return pd.DataFrame(e / e.sum(axis=1, keepdims=True), columns=self.classes)

    return Softmax()


def mlflow_pyfunc_classifier(root: Path) -> UserModel:
    """Iris as a custom pyfunc model whose output signature names the three classes (its columns)."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    data = load_iris(as_frame=True)
    frame = data.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    x_train, x_test, y_train, _ = _split(frame, data.target)
    fitted = LogisticRegression(max_iter=500).fit(x_train, y_train)
    model = _softmax_model(fitted.coef_, fitted.intercept_, ["setosa", "versicolor", "virginica"])
    model_dir = root / "iris-pyfunc"
    signature = infer_signature(x_train, model.predict(None, x_train))
    mlflow.pyfunc.save_model(str(model_dir), python_model=model, signature=signature)
    return _finish(model_dir, fitted, x_train, x_test, y_train)
