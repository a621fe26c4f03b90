"""Model directories loaded through their own libraries: real scikit-learn, ONNX and MLflow models.

The oracle is always the library itself: ``predict_proba`` / ``predict`` of the fitted estimator, and for
ONNX the onnxruntime session run directly on the same rows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest

from server.loaders import find_artifact, load_model_dir
from server.model import ModelLoadError, load_model
from server.settings import DEFAULT_MODEL_PATH
from tests.support import PROJECT_ROOT
from tests.support import user_models as um

BUILDERS = {
    "binary": um.binary_pipeline,
    "multiclass": um.multiclass_array,
    "regression": um.regressor,
    "categorical": um.categorical_pipeline,
    "onnx": um.onnx_multiclass,
    "mlflow": um.mlflow_binary,
}
EXPECTED = {  # kind, task, classes, feature names known to the model
    "binary": ("sklearn", "binary", (0, 1), True),
    "multiclass": ("sklearn", "multiclass", (0, 1, 2), False),
    "regression": ("sklearn", "regression", None, True),
    "categorical": ("sklearn", "binary", (0, 1), True),
    "onnx": ("onnx", "multiclass", (0, 1, 2), False),
    "mlflow": ("mlflow", "binary", (0, 1), True),
}


@pytest.fixture(scope="module")
def user_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {key: build(root) for key, build in BUILDERS.items()}


def _types(user: um.UserModel) -> dict[str, str]:
    return {c: "categorical" if c in user.categorical else "numeric" for c in user.features}


def _predict(user: um.UserModel, rows):
    model = load_model_dir(user.model_dir)
    return model, model.predict([rows[c].tolist() for c in user.features], user.features, _types(user))


@pytest.mark.parametrize("key", BUILDERS)
def test_task_classes_and_feature_names_come_from_the_model(user_models, key):
    user = user_models[key]
    model = load_model_dir(user.model_dir)
    kind, task, classes, named = EXPECTED[key]
    assert (model.kind, model.task, model.classes) == (kind, task, classes)
    assert model.feature_names == (tuple(user.features) if named else None)
    assert model.n_features == len(user.features)
    assert len(model.version) == 12
    assert model.name == user.model_dir.name


@pytest.mark.parametrize("key", ["binary", "multiclass", "regression", "categorical", "mlflow"])
def test_predictions_equal_scikit_learns_own(user_models, key):
    user = user_models[key]
    model, out = _predict(user, user.test)
    x = user.test if model.feature_names else user.test.to_numpy()
    if model.task == "regression":
        np.testing.assert_allclose(out.values, user.estimator.predict(x), rtol=0, atol=1e-6)
        assert out.probabilities is None
        return
    proba = user.estimator.predict_proba(x)
    np.testing.assert_allclose(out.probabilities, proba, rtol=0, atol=1e-6)
    if model.task == "binary":
        np.testing.assert_allclose(out.values, proba[:, 1], rtol=0, atol=1e-6)
    else:
        assert out.values == user.estimator.predict(x).tolist()
    assert len(out.values) == len(user.test) > 30


def test_onnx_predictions_equal_onnxruntimes_own(user_models):
    user = user_models["onnx"]
    model, out = _predict(user, user.test)
    session = model.native
    labels, zipmap = session.run(
        None, {session.get_inputs()[0].name: user.test.to_numpy().astype(np.float32)}
    )
    expected = [[row[c] for c in model.classes] for row in zipmap]
    np.testing.assert_allclose(out.probabilities, expected, rtol=0, atol=1e-6)
    assert out.values == labels.tolist()
    # And the export is faithful to scikit-learn up to float32 rounding.
    np.testing.assert_allclose(
        out.probabilities, user.estimator.predict_proba(user.test.to_numpy()), atol=1e-5
    )


def test_an_unseen_category_is_predicted_not_refused(user_models):
    user = user_models["categorical"]
    rows = user.test.head(3).assign(bmi_band="never-seen")
    _, out = _predict(user, rows)
    np.testing.assert_allclose(out.values, user.estimator.predict_proba(rows)[:, 1], atol=1e-6)


def test_the_builtin_format_loads_from_a_directory(tmp_path):
    shutil.copy(DEFAULT_MODEL_PATH, tmp_path / "model.json")
    model = load_model_dir(tmp_path)
    builtin = load_model(DEFAULT_MODEL_PATH)
    assert (model.kind, model.task, model.classes) == ("builtin", "binary", (0, 1))
    assert (model.name, model.version, model.feature_names) == (
        builtin.name,
        builtin.version,
        builtin.feature_names,
    )
    rows = [[0.5, 0.3, 0.7], [0.1, 0.9, 0.2]]
    out = model.predict([list(c) for c in zip(*rows, strict=True)])
    assert out.values == builtin.predict(rows)


def test_reading_a_binary_classifier_as_multiclass_gives_labels(user_models):
    user = user_models["binary"]
    model = load_model_dir(user.model_dir).with_task("multiclass")
    out = model.predict([user.test[c].tolist() for c in user.features])
    assert model.task == "multiclass"
    assert out.values == user.estimator.predict(user.test).tolist()
    with pytest.raises(ModelLoadError, match="a binary model cannot be read as regression"):
        load_model_dir(user.model_dir).with_task("regression")
    with pytest.raises(ModelLoadError, match="task must be one of"):
        load_model_dir(user.model_dir).with_task("ranking")


def test_the_version_is_a_hash_of_the_content(user_models, tmp_path):
    user = user_models["regression"]
    copy = tmp_path / "diabetes"
    shutil.copytree(user.model_dir, copy)
    assert load_model_dir(copy).version == load_model_dir(user.model_dir).version
    joblib.dump(
        user.estimator.set_params(alpha=0.6).fit(user.train[user.features], user.train[um.TARGET]),
        copy / "model.joblib",
    )
    assert load_model_dir(copy).version != load_model_dir(user.model_dir).version


def test_a_directory_needs_exactly_one_artifact(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        find_artifact(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelLoadError, match="is not a directory"):
        find_artifact(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "model.pkl").write_text("x")
    with pytest.raises(
        ModelLoadError, match=r"no model artifact; expected exactly one of MLmodel, model\.joblib"
    ):
        find_artifact(empty)
    (empty / "model.onnx").write_text("x")
    (empty / "model.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"several model artifacts \(model\.onnx, model\.json\)"):
        find_artifact(empty)


def test_broken_artifacts_are_a_load_error_naming_the_file(tmp_path):
    cases = {
        "not-an-estimator": (
            "model.joblib",
            lambda p: joblib.dump({"weights": [1, 2]}, p),
            "not a scikit-learn",
        ),
        "garbage-joblib": ("model.joblib", lambda p: p.write_bytes(b"\x00garbage"), "joblib cannot load it"),
        "garbage-onnx": ("model.onnx", lambda p: p.write_bytes(b"\x00garbage"), "onnxruntime cannot load it"),
        "garbage-mlflow": (
            "MLmodel",
            lambda p: p.write_text("flavors: {}\n"),
            "mlflow.pyfunc cannot load it",
        ),
    }
    for name, (artifact, write, message) in cases.items():
        model_dir = tmp_path / name
        model_dir.mkdir()
        write(model_dir / artifact)
        with pytest.raises(ModelLoadError, match=message) as info:
            load_model_dir(model_dir)
        assert str(model_dir) in str(info.value)


# The server's image has no ML libraries: model.json must load without them, and a user model must fail
# with a message naming the missing package (not an ImportError traceback from deep inside).
WITHOUT_ML = textwrap.dedent(
    """
    import json, sys
    BLOCKED = {"numpy", "pandas", "sklearn", "joblib", "onnx", "onnxruntime", "mlflow", "scipy", "pyarrow"}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Refuse())
    from server.loaders import load_model_dir
    from server.model import ModelLoadError

    model = load_model_dir(sys.argv[1])
    print(json.dumps(model.predict([[0.5], [0.3], [0.7]]).values))
    try:
        load_model_dir(sys.argv[2])
    except ModelLoadError as e:
        print(e)
    """
)


def test_model_json_needs_no_ml_library_and_a_user_model_names_what_is_missing(user_models, tmp_path):
    shutil.copy(DEFAULT_MODEL_PATH, tmp_path / "model.json")
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_ML, str(tmp_path), str(user_models["binary"].model_dir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    first, second = result.stdout.strip().splitlines()
    assert json.loads(first) == load_model(DEFAULT_MODEL_PATH).predict([[0.5, 0.3, 0.7]])
    assert "needs the Python package 'joblib' (install the project's `models` extra)" in second


@pytest.fixture(scope="module")
def more_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("more-models")
    return {
        "onnx-regression": um.onnx_regressor(root),
        "onnx-categorical": um.onnx_categorical(root),
        "mlflow-pyfunc": um.mlflow_pyfunc_regressor(root),
    }


def test_an_onnx_regressor_equals_onnxruntimes_own(more_models):
    user = more_models["onnx-regression"]
    model, out = _predict(user, user.test)
    assert (model.task, model.classes, model.feature_names, model.n_features) == (
        "regression",
        None,
        None,
        10,
    )
    session = model.native
    (expected,) = session.run(None, {session.get_inputs()[0].name: user.test.to_numpy().astype(np.float32)})
    np.testing.assert_allclose(out.values, expected.reshape(-1), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.values, user.estimator.predict(user.test.to_numpy()), rtol=1e-6)


def test_an_onnx_graph_with_one_input_per_column_names_and_types_its_features(more_models):
    user = more_models["onnx-categorical"]
    model, out = _predict(user, user.test)
    assert model.feature_names == tuple(user.features)
    assert {n for n, t in model.feature_types.items() if t == "categorical"} == set(user.categorical)
    assert (model.task, model.classes) == ("binary", (0, 1))
    session = model.native
    feed = {
        c: user.test[[c]].to_numpy().astype(object if c in user.categorical else np.float32)
        for c in user.features
    }
    _, proba = session.run(None, feed)  # zipmap off: a plain [N, 2] tensor
    np.testing.assert_allclose(out.probabilities, proba, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.values, proba[:, 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.values, user.estimator.predict_proba(user.test)[:, 1], atol=1e-5)


def test_a_custom_mlflow_pyfunc_model_is_run_by_mlflow(more_models):
    user = more_models["mlflow-pyfunc"]
    model, out = _predict(user, user.test)
    assert (model.kind, model.task, model.feature_names) == ("mlflow", "regression", ("age", "bmi", "bp"))
    assert model.feature_types == dict.fromkeys(("age", "bmi", "bp"), "numeric")
    np.testing.assert_allclose(out.values, model.native.predict(user.test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.values, 2.0 * user.test.sum(axis=1), rtol=0, atol=1e-12)


def test_a_custom_mlflow_pyfunc_classifier_takes_its_classes_from_the_output_signature(tmp_path):
    user = um.mlflow_pyfunc_classifier(tmp_path)
    model, out = _predict(user, user.test)
    assert (model.kind, model.task, model.classes) == (
        "mlflow",
        "multiclass",
        ("setosa", "versicolor", "virginica"),
    )
    expected = model.native.predict(user.test)
    np.testing.assert_allclose(
        out.probabilities, expected[list(model.classes)].to_numpy(), rtol=0, atol=1e-12
    )
    assert out.values == [model.classes[i] for i in np.argmax(expected.to_numpy(), axis=1)]
    # The softmax of the fitted scores is scikit-learn's own multinomial predict_proba.
    np.testing.assert_allclose(out.probabilities, user.estimator.predict_proba(user.test), atol=1e-6)
