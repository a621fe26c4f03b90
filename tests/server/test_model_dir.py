"""``inspect_model_dir``: a model directory checked from its files alone (for the stack's preview and the
image build): the artifact, its version, a reference.json built for it, and what the kind needs installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import joblib
import mlflow
import pytest
import sklearn

from server.loaders import inspect_model_dir, load_model_dir
from server.model import ModelLoadError
from server.settings import DEFAULT_MODEL_PATH
from tests.support import PROJECT_ROOT
from tests.support import user_models as um


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("model-dirs")
    return {
        "sklearn": um.with_reference(um.binary_pipeline(root)),
        "onnx": um.with_reference(um.onnx_multiclass(root)),
        "mlflow": um.with_reference(um.mlflow_binary(root)),
    }


@pytest.mark.parametrize("kind", ["sklearn", "onnx", "mlflow"])
def test_a_model_dir_is_described_as_the_loaded_model_is(dirs, kind):
    user = dirs[kind]
    info = inspect_model_dir(user.model_dir)
    model = load_model_dir(user.model_dir)
    reference = json.loads((user.model_dir / "reference.json").read_text())
    assert (info.kind, info.artifact, info.version, info.task) == (
        kind,
        model.artifact,
        model.version,
        model.task,
    )
    assert info.feature_names == tuple(f["name"] for f in reference["features"]) == tuple(user.features)


def test_what_each_kind_needs_installed(dirs, tmp_path):
    assert inspect_model_dir(dirs["sklearn"].model_dir).requirements == (
        f"scikit-learn=={sklearn.__version__}",  # the version the pickle was written with
        "joblib",
        "pandas",
    )
    assert inspect_model_dir(dirs["onnx"].model_dir).requirements == ("onnxruntime", "onnx", "numpy")
    mlflow_requirements = inspect_model_dir(dirs["mlflow"].model_dir).requirements
    assert f"mlflow-skinny=={mlflow.__version__}" in mlflow_requirements  # not the full mlflow it names
    assert not any(r.startswith("mlflow==") for r in mlflow_requirements)
    assert f"scikit-learn=={sklearn.__version__}" in mlflow_requirements
    assert any(r.startswith("cloudpickle==") for r in mlflow_requirements)
    assert sum(r.startswith("pandas") for r in mlflow_requirements) == 1
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    shutil.copy(DEFAULT_MODEL_PATH, builtin / "model.json")
    info = inspect_model_dir(builtin)
    assert (info.kind, info.version, info.feature_names, info.requirements) == (
        "builtin",
        "1.0.0",
        ("f0", "f1", "f2"),
        (),
    )


@pytest.mark.parametrize("compress", [("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_the_pinned_scikit_learn_version_is_read_from_compressed_pickles_too(dirs, tmp_path, compress):
    copy = tmp_path / "compressed"
    shutil.copytree(dirs["sklearn"].model_dir, copy)
    joblib.dump(dirs["sklearn"].estimator, copy / "model.joblib", compress=compress)
    um.with_reference(um.UserModel(copy, None, None, None, dirs["sklearn"].data_csv))
    assert inspect_model_dir(copy).requirements[0] == f"scikit-learn=={sklearn.__version__}"


def test_a_missing_or_stale_reference_is_refused(dirs, tmp_path):
    user = dirs["sklearn"]
    copy = tmp_path / "stale"
    shutil.copytree(user.model_dir, copy)
    old = inspect_model_dir(copy).version
    estimator = user.estimator.set_params(clf__C=0.5).fit(user.train[user.features], user.train[um.TARGET])
    joblib.dump(estimator, copy / "model.joblib")
    new = load_model_dir(copy).version
    with pytest.raises(
        ModelLoadError,
        match=f"built for model.joblib version {old}, but the model is model.joblib "
        f"version {new} \\(rebuild it with python -m server.reference\\)",
    ):
        inspect_model_dir(copy)
    (copy / "reference.json").unlink()
    with pytest.raises(
        ModelLoadError, match=r"no reference; build it with python -m server\.reference --model"
    ):
        inspect_model_dir(copy)


# The Pulumi program runs on the host without the ML libraries: inspecting a directory imports none.
WITHOUT_ML = textwrap.dedent(
    """
    import sys
    BLOCKED = {"numpy", "pandas", "sklearn", "joblib", "onnx", "onnxruntime", "mlflow", "scipy", "pyarrow"}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Refuse())
    from server.loaders import inspect_model_dir

    for path in sys.argv[1:]:
        info = inspect_model_dir(path)
        print(info.kind, info.version, ",".join(info.requirements))
    """
)


def test_inspecting_needs_no_model_library(dirs):
    paths = [str(dirs[k].model_dir) for k in ("sklearn", "onnx", "mlflow")]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_ML, *paths],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    kinds = [line.split()[0] for line in result.stdout.splitlines()]
    assert kinds == ["sklearn", "onnx", "mlflow"]
