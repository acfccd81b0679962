"""Config loading: defaults, derived paths, and one clear error per mistake."""

from __future__ import annotations

import os

import pytest

from node.config import ConfigError, load_config


def _write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_minimal_config_gets_defaults_and_derived_paths(tmp_path):
    cfg = load_config(_write(tmp_path, "server_name: s.test\ndata_dir: data\n"))
    assert cfg.server_name == "s.test"
    assert cfg.data_dir == os.path.join(str(tmp_path), "data")      # relative to the file
    assert cfg.database_url == "sqlite:///" + os.path.join(cfg.data_dir, "node.db")
    assert cfg.signing_key_path == os.path.join(cfg.data_dir, "signing.key")
    assert cfg.public_baseurl == "http://127.0.0.1:8008/"
    assert cfg.registration.open_registration is False
    assert cfg.rate_limits.enabled is True


def test_empty_file_is_all_defaults(tmp_path):
    assert load_config(_write(tmp_path, "")).server_name == "localhost"


def test_nested_values_and_int_for_float(tmp_path):
    cfg = load_config(_write(tmp_path, "rate_limits:\n  per_second: 3\nclient_listener:\n"
                                       "  port: 9000\n  tls_certificate_path: null\n"))
    assert cfg.rate_limits.per_second == 3.0 and isinstance(cfg.rate_limits.per_second, float)
    assert cfg.client_listener.port == 9000
    assert cfg.public_baseurl == "http://127.0.0.1:9000/"


@pytest.mark.parametrize("text,message", [
    ("server_nam: x\n", "server_nam: unknown setting"),
    ("rate_limits:\n  per_sec: 1\n", "rate_limits.per_sec: unknown setting"),
    ("client_listener:\n  port: eighty\n", "client_listener.port: must be an integer"),
    ("client_listener:\n  port: true\n", "client_listener.port: must be an integer"),
    ("rate_limits:\n  enabled: 'yes'\n", "rate_limits.enabled: must be true or false"),
    ("rate_limits:\n  per_second: fast\n", "rate_limits.per_second: must be a number"),
    ("server_name: null\n", "server_name: must be a string, not null"),
    ("server_name: 42\n", "server_name: must be a string"),
    ("rate_limits: 5\n", "rate_limits.: expected a mapping"),
    ("- a\n- b\n", "config: expected a mapping"),
    ("media:\n  thumbnail_sizes: 5\n", "media.thumbnail_sizes: must be a list"),
])
def test_mistakes_name_the_setting(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    assert message in str(exc.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "server_name: [unclosed\n"))
