"""``parta node`` subcommands: init, user add/list, token create/list, db upgrade, errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import fields, is_dataclass

import pytest
from sqlalchemy import create_engine, inspect, select

from federation.keys import read_signing_keys
from node.accounts.passwords import verify_password
from node.cli.main import main
from node.config import Config, load_config
from schema.accounts import registration_tokens, users


@pytest.fixture
def inited(tmp_path, capsys):
    data = tmp_path / "node"
    assert (
        main(
            [
                "node",
                "init",
                "--server-name",
                "school42.test",
                "--data-dir",
                str(data),
                "--port",
                "8111",
            ]
        )
        == 0
    )
    capsys.readouterr()
    return str(data / "config.yaml")


def _db_rows(config_path, table):
    cfg = load_config(config_path)
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(table)).mappings()]
    engine.dispose()
    return rows


def _field_names(obj, prefix=""):
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from _field_names(value, prefix + f.name + ".")
        else:
            yield prefix + f.name


def test_init_writes_config_key_and_database(inited):
    data_dir = os.path.dirname(inited)
    cfg = load_config(inited)
    assert cfg.server_name == "school42.test" and cfg.client_listener.port == 8111
    assert cfg.data_dir == data_dir
    key_path = os.path.join(data_dir, "signing.key")
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    with open(key_path) as fh:
        key = read_signing_keys(fh.read())[0]
    assert key.key_id.startswith("ed25519:")
    engine = create_engine(cfg.database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"users", "devices", "access_tokens", "registration_tokens", "events"} <= tables


def test_init_config_lists_every_setting_with_a_comment(inited):
    lines = open(inited).read().splitlines()
    for name in _field_names(Config()):
        key = name.rsplit(".", 1)[-1]
        idx = [i for i, line in enumerate(lines) if line.strip().startswith(key + ":")]
        assert idx, f"{name} missing from the generated config"
        assert all(lines[i - 1].strip().startswith("#") for i in idx), name


def test_init_refuses_to_overwrite(inited, capsys):
    before = open(inited).read()
    assert (
        main(["node", "init", "--server-name", "other.test", "--data-dir", os.path.dirname(inited)])
        == 1
    )
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert open(inited).read() == before


def test_init_rejects_bad_server_name(tmp_path, capsys):
    assert (
        main(["node", "init", "--server-name", "bad name", "--data-dir", str(tmp_path / "x")]) == 1
    )
    assert "invalid server name" in capsys.readouterr().err
    assert not (tmp_path / "x" / "config.yaml").exists()


def test_user_add_generated_password(inited, capsys):
    assert (
        main(
            [
                "node",
                "user",
                "add",
                "anna",
                "--role",
                "teacher",
                "--display-name",
                "Anna A",
                "-c",
                inited,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Created @anna:school42.test (role teacher)" in out
    password = [
        line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Password: ")
    ][0]
    row = _db_rows(inited, users)[0]
    assert (row["user_id"], row["role"], row["displayname"]) == (
        "@anna:school42.test",
        "teacher",
        "Anna A",
    )
    assert verify_password(password, row["password_hash"])
    assert password not in row["password_hash"]


def test_user_add_password_file_and_list(inited, tmp_path, capsys):
    pw = tmp_path / "pw"
    pw.write_text("a long enough password\n")
    assert (
        main(
            [
                "node",
                "user",
                "add",
                "ben",
                "--role",
                "pupil",
                "--password-file",
                str(pw),
                "-c",
                inited,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Password:" not in out
    row = _db_rows(inited, users)[0]
    assert verify_password("a long enough password", row["password_hash"])
    assert main(["node", "user", "list", "-c", inited]) == 0
    out = capsys.readouterr().out
    assert "@ben:school42.test" in out and "pupil" in out and "1 user(s)" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["carl", "--role", "king"], "unknown role"),
        (["Carl Upper", "--role", "pupil"], "invalid localpart"),
    ],
)
def test_user_add_refusals(inited, capsys, args, message):
    assert main(["node", "user", "add", *args, "-c", inited]) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("parta: error:")
    assert _db_rows(inited, users) == []


def test_user_add_duplicate_and_short_password(inited, tmp_path, capsys):
    assert main(["node", "user", "add", "dana", "--role", "office", "-c", inited]) == 0
    assert main(["node", "user", "add", "dana", "--role", "office", "-c", inited]) == 1
    assert "already exists" in capsys.readouterr().err
    pw = tmp_path / "short"
    pw.write_text("abc\n")
    assert (
        main(
            [
                "node",
                "user",
                "add",
                "emil",
                "--role",
                "parent",
                "--password-file",
                str(pw),
                "-c",
                inited,
            ]
        )
        == 1
    )
    assert "at least 8 characters" in capsys.readouterr().err


def test_token_create_and_list(inited, capsys):
    assert (
        main(
            [
                "node",
                "token",
                "create",
                "--uses",
                "3",
                "--expires",
                "7d",
                "--role",
                "parent",
                "-c",
                inited,
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    row = _db_rows(inited, registration_tokens)[0]
    assert (row["token"], row["uses_allowed"], row["role"], row["pending"], row["completed"]) == (
        token,
        3,
        "parent",
        0,
        0,
    )
    assert row["expiry_time"] - row["created_ts"] == 7 * 86_400_000
    assert main(["node", "token", "create", "--token", "class-5b", "-c", inited]) == 0
    assert capsys.readouterr().out.strip() == "class-5b"
    assert main(["node", "token", "list", "-c", inited]) == 0
    out = capsys.readouterr().out
    assert token in out and "class-5b" in out and "0/3" in out and "2 token(s)" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--expires", "soon"], "invalid expiry"),
        (["--uses", "0"], "--uses must be at least 1"),
        (["--expires", "2001-01-01"], "in the past"),
        (["--token", "has space"], "registration token is"),
    ],
)
def test_token_create_refusals(inited, capsys, args, message):
    assert main(["node", "token", "create", *args, "-c", inited]) == 1
    assert message in capsys.readouterr().err


def test_db_upgrade_is_idempotent(inited, capsys):
    assert main(["node", "db", "upgrade", "-c", inited]) == 0
    assert main(["node", "db", "upgrade", "-c", inited]) == 0
    assert "Database at revision" in capsys.readouterr().out


def test_commands_need_config(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["node", "user", "list"])
    assert exc.value.code == 2
    assert "-c/--config" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback(tmp_path):
    cmd = [sys.executable, "-c", "import sys; from node.cli.main import main; sys.exit(main())"]
    for args in (
        ["node", "run", "-c", str(tmp_path / "missing.yaml")],
        ["node", "user", "list", "-c", str(tmp_path / "missing.yaml")],
    ):
        res = subprocess.run(cmd + args, capture_output=True, text=True, timeout=60)
        assert res.returncode == 1
        assert res.stderr.strip().splitlines() == [
            f"parta: error: config file not found: {tmp_path / 'missing.yaml'}"
        ]


def test_run_with_broken_signing_key_fails_cleanly(inited):
    key_path = os.path.join(os.path.dirname(inited), "signing.key")
    with open(key_path, "w") as fh:
        fh.write("ed25519 a_x not-base64!\n")
    cmd = [sys.executable, "-c", "import sys; from node.cli.main import main; sys.exit(main())"]
    res = subprocess.run(
        cmd + ["node", "run", "-c", inited], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("parta: error: signing key")
