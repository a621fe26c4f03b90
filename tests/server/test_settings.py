from pathlib import Path

import pytest

from server.__main__ import parse_args
from server.settings import DEFAULT_MODEL_PATH, ServerSettings


def test_defaults_are_safe():
    s = ServerSettings.from_env({})
    assert s.model_path == DEFAULT_MODEL_PATH
    assert s.chaos_enabled is False


def test_environment_overrides():
    s = ServerSettings.from_env(
        {"MODEL_PATH": "/m.json", "MODEL_CHAOS_ENABLED": "true", "MODEL_MAX_BATCH_SIZE": "5"}
    )
    assert (s.model_path, s.chaos_enabled, s.max_batch_size) == (Path("/m.json"), True, 5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODEL_CHAOS_ENABLED": "maybe"}, "MODEL_CHAOS_ENABLED='maybe' is not a boolean; allowed: 1, true"),
        ({"MODEL_MAX_BATCH_SIZE": "0"}, r"MODEL_MAX_BATCH_SIZE=0 is out of range; allowed: 1\.\.10000"),
        ({"MODEL_MAX_BODY_BYTES": "lots"}, "MODEL_MAX_BODY_BYTES='lots' is not an integer"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_values(env, message):
    with pytest.raises(ValueError, match=message):
        ServerSettings.from_env(env)


def test_workers_default_from_web_concurrency(monkeypatch, capsys):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert parse_args([]).workers == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert parse_args([]).workers == 3
    assert parse_args(["--workers", "2"]).workers == 2  # the flag wins
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(SystemExit) as exit_info:
        parse_args([])
    assert exit_info.value.code == 2  # argparse usage error, not a traceback
    assert "--workers: invalid int value: 'many'" in capsys.readouterr().err
