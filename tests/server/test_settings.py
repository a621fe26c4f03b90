from pathlib import Path

import pytest

from server.__main__ import load_settings, main, parse_args, uvicorn_options
from server.settings import DEFAULT_MODEL_PATH, ServerSettings

TOKEN = "a-chaos-token-of-24-chars"


def test_defaults_are_safe():
    s = ServerSettings.from_env({})
    assert s.model_path == DEFAULT_MODEL_PATH
    assert s.chaos_enabled is False


def test_environment_overrides():
    s = ServerSettings.from_env(
        {
            "MODEL_PATH": "/m.json",
            "MODEL_CHAOS_ENABLED": "true",
            "MODEL_CHAOS_TOKEN": f" {TOKEN}\n",
            "MODEL_MAX_BATCH_SIZE": "5",
        }
    )
    assert (s.model_path, s.chaos_enabled, s.chaos_token, s.max_batch_size) == (
        Path("/m.json"),
        True,
        TOKEN,
        5,
    )
    assert TOKEN not in repr(s)  # a secret: not in logs or tracebacks


def test_connection_limits_have_defaults_and_reach_uvicorn():
    defaults = ServerSettings.from_env({})
    assert (defaults.max_header_bytes, defaults.read_timeout, defaults.keep_alive) == (16 * 1024, 10, 5)
    assert (defaults.limit_concurrency, defaults.graceful_shutdown) == (512, 8)
    s = ServerSettings.from_env(
        {
            "MODEL_MAX_HEADER_BYTES": "4096",
            "MODEL_READ_TIMEOUT_SECONDS": "3",
            "MODEL_KEEP_ALIVE_SECONDS": "2",
            "MODEL_LIMIT_CONCURRENCY": "50",
            "MODEL_GRACEFUL_SHUTDOWN_SECONDS": "4",
        }
    )
    assert (s.max_header_bytes, s.read_timeout) == (4096, 3)
    assert uvicorn_options(s) == {
        "http": "server.protocol:BoundedHttpToolsProtocol",
        "ws": "none",
        "timeout_keep_alive": 2,
        "limit_concurrency": 50,
        "timeout_graceful_shutdown": 4,
    }


@pytest.mark.parametrize(
    "env",
    [{"MODEL_CHAOS_ENABLED": "1"}, {"MODEL_CHAOS_ENABLED": "1", "MODEL_CHAOS_TOKEN": "short"}],
)
def test_chaos_without_a_token_is_refused(env):
    with pytest.raises(ValueError, match="MODEL_CHAOS_ENABLED is on but MODEL_CHAOS_TOKEN is"):
        ServerSettings.from_env(env)
    assert ServerSettings.from_env({**env, "MODEL_CHAOS_TOKEN": TOKEN}).chaos_enabled


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"MODEL_CHAOS_ENABLED": "1"}, "MODEL_CHAOS_ENABLED is on but MODEL_CHAOS_TOKEN is unset"),
        ({"MODEL_MAX_HEADER_BYTES": "10"}, "MODEL_MAX_HEADER_BYTES=10 is out of range; allowed: 1024..1048"),
        ({"MODEL_READ_TIMEOUT_SECONDS": "soon"}, "MODEL_READ_TIMEOUT_SECONDS='soon' is not an integer"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line(monkeypatch, capsys, env, line):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        main([])  # refused before uvicorn starts (it would bind the port)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"python -m server: error: {line}")
    monkeypatch.setenv("MODEL_CHAOS_TOKEN", TOKEN)
    if "MODEL_CHAOS_ENABLED" in env:
        assert load_settings().chaos_enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODEL_CHAOS_ENABLED": "maybe"}, "MODEL_CHAOS_ENABLED='maybe' is not a boolean; allowed: 1, true"),
        ({"MODEL_MAX_BATCH_SIZE": "0"}, r"MODEL_MAX_BATCH_SIZE=0 is out of range; allowed: 1\.\.10000"),
        ({"MODEL_MAX_BODY_BYTES": "lots"}, "MODEL_MAX_BODY_BYTES='lots' is not an integer"),
        ({"MODEL_LIMIT_CONCURRENCY": "0"}, r"MODEL_LIMIT_CONCURRENCY=0 is out of range; allowed: 1\.\.100"),
        ({"MODEL_GRACEFUL_SHUTDOWN_SECONDS": "301"}, r"MODEL_GRACEFUL_SHUTDOWN_SECONDS=301 is out"),
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
