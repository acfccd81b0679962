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
    assert cfg.data_dir == os.path.join(str(tmp_path), "data")  # relative to the file
    assert cfg.database_url == "sqlite:///" + os.path.join(cfg.data_dir, "node.db")
    assert cfg.signing_key_path == os.path.join(cfg.data_dir, "signing.key")
    assert cfg.public_baseurl == "http://127.0.0.1:8008/"
    assert cfg.registration.open_registration is False
    assert cfg.rate_limits.enabled is True


def test_empty_file_is_all_defaults(tmp_path):
    assert load_config(_write(tmp_path, "")).server_name == "localhost"


def test_nested_values_and_int_for_float(tmp_path):
    cfg = load_config(
        _write(
            tmp_path,
            "rate_limits:\n  per_second: 3\nclient_listener:\n"
            "  port: 9000\n  tls_certificate_path: null\n",
        )
    )
    assert cfg.rate_limits.per_second == 3.0 and isinstance(cfg.rate_limits.per_second, float)
    assert cfg.client_listener.port == 9000
    assert cfg.public_baseurl == "http://127.0.0.1:9000/"


@pytest.mark.parametrize(
    "text,message",
    [
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
    ],
)
def test_mistakes_name_the_setting(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    assert message in str(exc.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "server_name: [unclosed\n"))


# --- federation: outbound address ranges --------------------------------------------------
def test_outbound_federation_refuses_private_ranges_by_default(tmp_path):
    fed = load_config(_write(tmp_path, "")).federation
    for cidr in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fe80::/10",
        "fc00::/7",
        "100.64.0.0/10",
    ):
        assert cidr in fed.ip_range_blacklist
    assert fed.ip_range_whitelist == []


def test_ip_range_whitelist_from_yaml(tmp_path):
    fed = load_config(
        _write(tmp_path, "federation:\n  ip_range_whitelist: [10.20.0.0/16, '127.0.0.1']\n")
    ).federation
    assert fed.ip_range_whitelist == ["10.20.0.0/16", "127.0.0.1"]


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "federation:\n  ip_range_whitelist: [10.20.0.0/33]\n",
            "federation.ip_range_whitelist[0]: '10.20.0.0/33' is not an IP address or range",
        ),
        (
            "federation:\n  ip_range_blacklist: [127.0.0.0/8, school.example]\n",
            "federation.ip_range_blacklist[1]: 'school.example' is not an IP address or range",
        ),
        (
            "federation:\n  ip_range_blacklist: [8]\n",
            "federation.ip_range_blacklist[0]: must be a string",
        ),
        (
            "federation:\n  ip_range_whitelist: 10.0.0.0/8\n",
            "federation.ip_range_whitelist: must be a list",
        ),
    ],
)
def test_bad_ip_ranges_name_the_setting(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    assert message in str(exc.value)


def test_generated_config_explains_federation_enabled_and_round_trips(tmp_path):
    from node.cli.config_template import render_config
    from node.config import Config

    text = render_config(Config())
    fed = text[text.index("\nfederation:") :]
    comment = fed[: fed.index("  enabled:")]
    assert "rate limits" not in comment  # not the rate_limits comment
    assert "no federation listener" in comment
    rate = text[text.index("\nrate_limits:") :]
    assert "rate limits off" in rate[: rate.index("  enabled:")]
    loaded = load_config(_write(tmp_path, text)).federation
    assert loaded.ip_range_blacklist == Config().federation.ip_range_blacklist
    assert loaded.ip_range_whitelist == []
