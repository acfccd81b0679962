"""``parta gateway ...`` in process (node.cli.main.main): init writes a node config with a
gateway section, a separate 0600 roster key, roster version 1 with the gateway and an
office account; enrol/school/roster subcommands work on the database; failures are one
line and exit status 1."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml

from federation.enrolment import build_enrolment_request, parse_token
from federation.keys import SigningKey, VerifyKey, load_signing_key_file
from federation.roster import RosterState, roster_key_fingerprint, verify_roster
from gateway.blocking import BlockingDatabase, WallClock, wait
from gateway.cli import parse_duration_ms
from gateway.config import gateway_config
from gateway.roster import RosterService
from node.cli.main import CliError, main
from node.config import ConfigError, load_config

CITY = "city.test"


@pytest.fixture(scope="module")
def gw_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("gw") / "city"
    pw = data.parent / "pw"
    pw.write_text("office password 1\n")
    code = main(
        [
            "gateway",
            "init",
            "--server-name",
            CITY,
            "--data-dir",
            str(data),
            "--port",
            "8123",
            "--admin-password-file",
            str(pw),
        ]
    )
    assert code == 0
    return data


@pytest.fixture
def cfg(gw_dir):
    return str(gw_dir / "config.yaml")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def roster_key(gw_dir):
    return load_signing_key_file(str(gw_dir / "roster.key"))[0]


def test_init_writes_keys_config_roster_and_admin(gw_dir, cfg):
    key_path = gw_dir / "roster.key"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    rk = roster_key(gw_dir)
    assert rk.key_id == "ed25519:roster_1"
    server_key = load_signing_key_file(str(gw_dir / "signing.key"))[0]
    assert rk.verify_key.public_bytes != server_key.verify_key.public_bytes
    pub = json.loads((gw_dir / "roster.pub").read_text())
    assert VerifyKey.decode(pub["key_id"], pub["key"]).public_bytes == rk.verify_key.public_bytes

    config = load_config(cfg)
    assert config.server_name == CITY and config.client_listener.port == 8123
    gw = gateway_config(config)
    assert gw.roster_key_path == str(key_path) and gw.admin_localpart == "office"
    with open(cfg) as fh:
        assert "gateway" in yaml.safe_load(fh)

    from node.cli.node_cmd import _engine

    engine = _engine(config)
    try:
        svc = RosterService(
            BlockingDatabase(engine), WallClock(), CITY, None, roster_verify_key=rk.verify_key
        )
        doc = wait(svc.current())
        from node.accounts import store

        with engine.begin() as conn:
            users = {u["user_id"]: u["role"] for u in store.list_users(conn)}
    finally:
        engine.dispose()
    roster = verify_roster(doc, rk.verify_key, CITY)
    assert roster.version == 1 and list(roster.servers) == [CITY]
    entry = roster.servers[CITY]
    assert entry.server_class == "city"
    assert entry.verify_keys[server_key.key_id].public_bytes == server_key.verify_key.public_bytes
    assert users == {f"@office:{CITY}": "office"}


def test_init_refuses_an_existing_gateway(gw_dir, capsys):
    code, out, err = run(
        capsys, "gateway", "init", "--server-name", CITY, "--data-dir", str(gw_dir)
    )
    assert code == 1 and "already exists" in err and err.count("\n") == 1


def test_init_prints_a_generated_password(tmp_path, capsys):
    code, out, err = run(
        capsys,
        "gateway",
        "init",
        "--server-name",
        "c2.test",
        "--data-dir",
        str(tmp_path / "c2"),
        "--admin",
        "mayor",
    )
    assert code == 0
    assert "office admin: @mayor:c2.test" in out and "password:" in out
    assert "fingerprint" in out


def test_enrol_create_prints_a_token_bound_to_the_roster_key(gw_dir, cfg, capsys):
    code, out, err = run(
        capsys,
        "gateway",
        "enrol",
        "create",
        "--school-id",
        "42",
        "--name",
        "Lyceum No. 42",
        "--district",
        "North",
        "--ttl",
        "2d",
        "-c",
        cfg,
    )
    assert code == 0
    token = out.strip()
    assert "\n" not in token
    tok = parse_token(token)
    assert tok.school_id == "42" and tok.signer_name == CITY
    assert tok.roster_key_fingerprint == roster_key_fingerprint(roster_key(gw_dir).verify_key)
    assert "parta node enrol http://127.0.0.1:8123 --token" in err

    code, out, err = run(capsys, "gateway", "school", "list", "-c", cfg)
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("42 "))
    assert "Lyceum No. 42" in line and "North" in line and "pending" in line


def _enrol_directly(cfg, token, server, key):
    """What the gateway does when a node POSTs: through the same service."""
    config = load_config(cfg)
    from gateway.roster_key import load_roster_key
    from node.cli.node_cmd import _engine

    rk, vk = load_roster_key(gateway_config(config).roster_key_path)
    engine = _engine(config)
    try:
        svc = RosterService(BlockingDatabase(engine), WallClock(), CITY, rk)
        tok = parse_token(token)
        return wait(svc.enrol(build_enrolment_request(tok, server, [key], WallClock().time_ms())))
    finally:
        engine.dispose()


def test_revoke_show_and_export(gw_dir, cfg, capsys):
    code, out, _ = run(
        capsys,
        "gateway",
        "enrol",
        "create",
        "--school-id",
        "43",
        "--name",
        "Gymnasium 43",
        "-c",
        cfg,
    )
    key = SigningKey("s43", b"\x43" * 32)
    doc = _enrol_directly(cfg, out.strip(), "school43.test", key)
    v = doc["version"]

    code, out, _ = run(capsys, "gateway", "roster", "export", "--format", "synapse", "-c", cfg)
    assert code == 0
    frag = yaml.safe_load(out)
    assert "school43.test" in frag["federation_domain_whitelist"]
    assert frag["trusted_key_servers"][0]["server_name"] == CITY

    code, out, _ = run(capsys, "gateway", "school", "revoke", "43", "-c", cfg)
    assert code == 0
    assert f"published roster version {v + 1} without school43.test" in out

    code, out, _ = run(capsys, "gateway", "roster", "show", "-c", cfg)
    assert code == 0 and f"Roster version {v + 1}" in out and "signature verified" in out
    assert "school43.test" not in out
    code, out, _ = run(
        capsys, "gateway", "roster", "show", "--version", str(v), "--json", "-c", cfg
    )
    shown = json.loads(out)
    assert shown["version"] == v and "school43.test" in shown["servers"]
    # The versions chain: a node holding v can move to v + 1.
    state = RosterState(roster_key(gw_dir).verify_key, CITY)
    state.restore(shown)
    code, out, _ = run(capsys, "gateway", "roster", "show", "--json", "-c", cfg)
    state.accept(json.loads(out), WallClock().time_ms())
    assert not state.is_member("school43.test")

    code, out, _ = run(capsys, "gateway", "roster", "export", "--format", "synapse", "-c", cfg)
    assert "school43.test" not in yaml.safe_load(out)["federation_domain_whitelist"]

    code, out, _ = run(capsys, "gateway", "school", "list", "-c", cfg)
    assert "revoked" in next(ln for ln in out.splitlines() if ln.startswith("43 "))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["school", "revoke", "999"], "not known to the gateway"),
        (["roster", "show", "--version", "999"], "no roster version 999"),
        (
            ["enrol", "create", "--school-id", "44", "--name", "x", "--ttl", "soon"],
            "invalid duration",
        ),
        (["enrol", "create", "--school-id", "", "--name", "x"], "School ID"),
    ],
)
def test_errors_are_one_line_with_status_1(cfg, capsys, argv, message):
    code, out, err = run(capsys, "gateway", *argv, "-c", cfg)
    assert code == 1
    assert err.startswith("parta: error: ") and message in err and err.count("\n") == 1


def test_school_node_config_is_not_a_gateway(tmp_path, capsys):
    assert main(["node", "init", "--server-name", "s.test", "--data-dir", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    code, out, err = run(
        capsys, "gateway", "school", "list", "-c", str(tmp_path / "s" / "config.yaml")
    )
    assert code == 1 and "no 'gateway:' section" in err


def test_gateway_section_is_checked(tmp_path, cfg):
    with open(cfg) as fh:
        data = yaml.safe_load(fh)
    data["gateway"]["roster_validity_hours"] = "long"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="gateway.roster_validity_hours"):
        gateway_config(load_config(str(bad)))
    data["gateway"] = {"rooster": 1}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="gateway.rooster: unknown setting"):
        gateway_config(load_config(str(bad)))
    data.pop("gateway")
    data["gatway"] = {}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="gatway: unknown setting"):
        load_config(str(bad))


def test_offline_roster_key_serves_but_does_not_publish(tmp_path, gw_dir, cfg, capsys):
    import shutil

    offline = tmp_path / "offline"
    shutil.copytree(gw_dir, offline)
    os.unlink(offline / "roster.key")
    ocfg = str(offline / "config.yaml")
    code, out, _ = run(capsys, "gateway", "roster", "show", "-c", ocfg)
    assert code == 0 and "signature verified" in out
    code, out, err = run(
        capsys, "gateway", "enrol", "create", "--school-id", "50", "--name", "x", "-c", ocfg
    )
    assert code == 0  # tokens need only the public key ...
    code, out, err = run(capsys, "gateway", "school", "revoke", "50", "-c", ocfg)
    assert code == 0  # ... and revoking a pending school publishes nothing
    code, out, _ = run(
        capsys, "gateway", "enrol", "create", "--school-id", "51", "--name", "y", "-c", ocfg
    )
    with pytest.raises(Exception, match="signing key is not loaded"):
        _enrol_offline(ocfg, out.strip())


def _enrol_offline(cfg, token):
    config = load_config(cfg)
    from gateway.roster_key import load_roster_key
    from node.cli.node_cmd import _engine

    rk, vk = load_roster_key(gateway_config(config).roster_key_path)
    assert rk is None
    engine = _engine(config)
    try:
        svc = RosterService(BlockingDatabase(engine), WallClock(), CITY, None, roster_verify_key=vk)
        key = SigningKey("s51", b"\x51" * 32)
        return wait(
            svc.enrol(
                build_enrolment_request(
                    parse_token(token), "s51.test", [key], WallClock().time_ms()
                )
            )
        )
    finally:
        engine.dispose()


def test_parse_duration():
    assert parse_duration_ms("30m") == 30 * 60_000
    assert parse_duration_ms("7d") == 7 * 86_400_000
    assert parse_duration_ms("2w") == 14 * 86_400_000
    for bad in ("0d", "7", "d", "-1h", "1y"):
        with pytest.raises(CliError):
            parse_duration_ms(bad)
