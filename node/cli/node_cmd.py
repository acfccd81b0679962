"""``parta node ...``: init, run, user add/list/deactivate, token create/list, db upgrade,
people import/claim-codes (``people_cmd.py``).

Every subcommand after ``init`` takes ``-c CONFIG``.  Admin subcommands work on the database
directly (no running node needed; SQLite WAL lets them run next to a running node).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any

from .main import CliError

_SERVER_NAME = re.compile(r"^(?:[A-Za-z0-9\-.]{1,255}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")


def register(subparsers: argparse._SubParsersAction) -> None:
    node = subparsers.add_parser("node", help="run and administer a school node")
    sub = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND")
    node.set_defaults(func=lambda args: _help(node))

    p = sub.add_parser("init", help="write a config, signing key and empty database")
    p.add_argument("--server-name", required=True, help="e.g. school42.city.example")
    p.add_argument("--data-dir", required=True, help="directory for config, key, DB, media")
    p.add_argument("--port", type=int, default=8008, help="client API port (default 8008)")
    p.add_argument("--bind", default="127.0.0.1", help="client API address (default 127.0.0.1)")
    p.add_argument("--metrics-port", type=int, default=9108, help="metrics port (default 9108)")
    p.add_argument(
        "--federation-port",
        type=int,
        default=None,
        help="federation (HTTPS) port (default 8448; 0 when --port is 0)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="serve the client API")
    _config_arg(p)
    p.set_defaults(func=cmd_run)

    user = sub.add_parser("user", help="manage accounts")
    usub = user.add_subparsers(dest="user_command", metavar="ACTION")
    user.set_defaults(func=lambda args: _help(user))
    p = usub.add_parser("add", help="create an account")
    _config_arg(p)
    p.add_argument("localpart", help="the part before ':' in @localpart:server")
    p.add_argument(
        "--role", required=True, help="director, deputy, teacher, pupil, parent or office"
    )
    p.add_argument("--display-name", help="display name (default: the localpart)")
    p.add_argument(
        "--password-file", help="file holding the password (default: generate one and print it)"
    )
    p.set_defaults(func=cmd_user_add)
    p = usub.add_parser("list", help="list accounts")
    _config_arg(p)
    p.set_defaults(func=cmd_user_list)
    p = usub.add_parser(
        "deactivate",
        help="deactivate an account: it can no longer log in, "
        "its sessions end and it leaves its rooms",
    )
    _config_arg(p)
    p.add_argument("user", help="localpart or full user ID")
    p.add_argument(
        "--erase",
        action="store_true",
        help="also erase: clear the profile and account data; users who join a room "
        "later see the account's messages redacted",
    )
    p.set_defaults(func=cmd_user_deactivate)

    token = sub.add_parser("token", help="manage registration tokens")
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION")
    token.set_defaults(func=lambda args: _help(token))
    p = tsub.add_parser("create", help="create a registration token and print it")
    _config_arg(p)
    p.add_argument("--uses", type=int, help="how many accounts it may register (default: any)")
    p.add_argument("--expires", help="7d, 12h, 30m, 2w or an ISO date/time (default: never)")
    p.add_argument("--role", default="pupil", help="role of accounts it registers (default pupil)")
    p.add_argument("--token", help="use this token string instead of a random one")
    p.set_defaults(func=cmd_token_create)
    p = tsub.add_parser("list", help="list registration tokens")
    _config_arg(p)
    p.set_defaults(func=cmd_token_list)

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db.set_defaults(func=lambda args: _help(db))
    p = dsub.add_parser("upgrade", help="upgrade the database to the latest schema")
    _config_arg(p)
    p.set_defaults(func=cmd_db_upgrade)

    keys = sub.add_parser("keys", help="manage the server's signing keys")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys.set_defaults(func=lambda args: _help(keys))
    p = ksub.add_parser(
        "rotate",
        help="make a new signing key; the old one is kept as an "
        "old verify key (takes effect at the next start); an "
        "enrolled node has the city gateway pin it first",
    )
    _config_arg(p)
    p.add_argument(
        "--offline",
        action="store_true",
        help="enrolled node: rotate without telling the city gateway (roster "
        "members refuse the new key until the roster is updated)",
    )
    p.add_argument(
        "--ca-file",
        help="PEM CA certificate(s) to trust for the gateway's HTTPS "
        "(default: federation.tls_ca_file, else the system store)",
    )
    p.set_defaults(func=cmd_keys_rotate)

    from .enrol_cmd import add_enrol_parser  # parta node enrol (city gateway)

    add_enrol_parser(sub)

    from .people_cmd import add_people_parser  # parta node people import / claim-codes

    add_people_parser(sub)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        required=True,
        metavar="CONFIG",
        help="path to config.yaml (written by 'parta node init')",
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> Any:
    from node.config import load_config

    return load_config(args.config)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _engine(config: Any) -> Any:
    """An engine on a database at the head migration."""
    from node.app import upgrade_database
    from node.storage.database import make_engine

    upgrade_database(config)
    return make_engine(config.database_url)


# --- init / run / db ---------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from federation.keys import SigningKey, write_signing_keys
    from node.app import upgrade_database
    from node.config import Config, FederationConfig, ListenerConfig

    from .config_template import render_config

    if not _SERVER_NAME.match(args.server_name):
        raise CliError(
            f"invalid server name {args.server_name!r} (a host name, e.g. school42.city.example)"
        )
    fed_port = args.federation_port
    if fed_port is None:
        fed_port = 0 if args.port == 0 else 8448
    for port in (args.port, args.metrics_port, fed_port):
        if not 0 <= port <= 65535:
            raise CliError(f"invalid port {port}")
    data_dir = os.path.abspath(args.data_dir)
    config_path = os.path.join(data_dir, "config.yaml")
    if os.path.exists(config_path):
        raise CliError(
            f"{config_path} already exists; not overwriting it "
            "(remove it or choose another --data-dir)"
        )
    os.makedirs(data_dir, exist_ok=True)
    config = Config(
        server_name=args.server_name,
        data_dir=".",
        client_listener=ListenerConfig(bind_address=args.bind, port=args.port),
        metrics_listener=ListenerConfig(bind_address=args.bind, port=args.metrics_port),
        federation=FederationConfig(
            listener=ListenerConfig(
                bind_address=args.bind,
                port=fed_port,
                tls_certificate_path="tls.crt",
                tls_private_key_path="tls.key",
            )
        ),
    )
    text = render_config(config)
    cert_path = os.path.join(data_dir, "tls.crt")
    if not os.path.exists(cert_path):
        # A self-signed development certificate; production nodes configure a real one.
        from federation.transport.tls import generate_self_signed

        generate_self_signed(args.server_name, cert_path, os.path.join(data_dir, "tls.key"))

    key_path = os.path.join(data_dir, "signing.key")
    if os.path.exists(key_path):
        print(f"Keeping existing signing key {key_path}")
    else:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(write_signing_keys([SigningKey.generate()]))
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    from node.config import load_config

    upgrade_database(load_config(config_path))
    print(f"Initialised node {args.server_name} in {data_dir}")
    print(f"  config:      {config_path}")
    print(f"  signing key: {key_path}")
    print(f"  TLS (federation, self-signed for development): {cert_path}")
    print(f"  database:    {os.path.join(data_dir, 'node.db')}")
    print(f"Next: parta node user add LOCALPART --role teacher -c {config_path}")
    print(f"      parta node run -c {config_path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    from node.app import run

    return run(config)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from node.federation.key_rotation import (
        KeyRotationError,
        needs_gateway,
        rotate_keys,
        run_without_reactor,
    )

    from .enrol_cmd import _run_reactor

    config = _load(args)

    def warn(message: str) -> None:
        print(message, file=sys.stderr)

    def make(reactor: Any) -> Any:
        return rotate_keys(
            reactor, config, _now_ms(), offline=args.offline, ca_file=args.ca_file, warn=warn
        )

    try:
        if needs_gateway(config, args.offline):
            result = _run_reactor(make)
        else:  # local only: no reactor (it cannot be restarted in one process)
            result = run_without_reactor(make(None))
    except KeyRotationError as exc:
        raise CliError(str(exc)) from None
    if result.gateway_updated:
        where = (
            f" (roster version {result.roster_version})"
            if result.roster_version is not None
            else ""
        )
        print(f"The city gateway now pins {result.new_key.key_id} for {config.server_name}{where}")
    elif result.enrolled:
        warn(
            f"warning: rotated offline: the city gateway was not told, so roster members "
            f"will refuse the new key {result.new_key.key_id} until the roster is updated"
        )
    for note in result.notes:
        warn(note)
    print(f"New signing key {result.new_key.key_id} written to {config.signing_key_path}")
    print(
        f"Old verify keys ({config.federation.old_signing_keys_path}): "
        + ", ".join(o.verify_key.key_id for o in result.old)
    )
    print("Restart the node to sign with the new key.")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from node.app import upgrade_database

    config = _load(args)
    revision = upgrade_database(config)
    print(f"Database at revision {revision or '(tables created)'}")
    return 0


# --- users -------------------------------------------------------------------------------------
def _read_password_file(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        password = fh.read().rstrip("\r\n")
    if not password:
        raise CliError(f"password file {path} is empty")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    from node.accounts import admin
    from node.accounts.passwords import generate_password

    config = _load(args)
    generated = args.password_file is None
    password = generate_password() if generated else _read_password_file(args.password_file)
    engine = _engine(config)
    try:
        with engine.begin() as conn:
            user_id = admin.create_user(
                conn,
                server_name=config.server_name,
                localpart=args.localpart,
                password=password,
                role=args.role,
                display_name=args.display_name,
                now_ms=_now_ms(),
                password_min_length=config.registration.password_min_length,
            )
    finally:
        engine.dispose()
    print(f"Created {user_id} (role {args.role})")
    if generated:
        print(f"Password: {password}")
        print("(shown once; give it to the user)")
    return 0


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*["-" * w for w in widths]).rstrip()]
    out += [fmt.format(*[str(c) for c in r]).rstrip() for r in rows]
    return "\n".join(out)


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + "Z"


def cmd_user_list(args: argparse.Namespace) -> int:
    from node.accounts import store

    config = _load(args)
    engine = _engine(config)
    try:
        with engine.begin() as conn:
            users = store.list_users(conn)
    finally:
        engine.dispose()
    rows = [
        [
            u["user_id"],
            u["role"],
            u["displayname"] or "",
            _when(u["created_ts"]),
            "deactivated" if u["deactivated"] else "active",
        ]
        for u in users
    ]
    print(_table(rows, ["USER", "ROLE", "DISPLAY NAME", "CREATED", "STATUS"]))
    print(f"{len(users)} user(s)")
    return 0


def cmd_user_deactivate(args: argparse.Namespace) -> int:
    from node.accounts import admin
    from node.accounts.deactivation import SWEEP_SECONDS

    config = _load(args)
    engine = _engine(config)
    try:
        with engine.begin() as conn:
            user_id = admin.deactivate_user(
                conn, server_name=config.server_name, user=args.user, erase=args.erase
            )
    finally:
        engine.dispose()
    print(f"Deactivated {user_id}" + (" and cleared its profile" if args.erase else ""))
    print(
        f"A running node ends its sessions and makes it leave its rooms within "
        f"{SWEEP_SECONDS:.0f} seconds; a stopped node does so when it starts."
    )
    return 0


# --- registration tokens -----------------------------------------------------------------------
def cmd_token_create(args: argparse.Namespace) -> int:
    from node.accounts import admin
    from node.accounts.tokens import parse_expiry

    config = _load(args)
    now = _now_ms()
    try:
        expiry = parse_expiry(args.expires, now) if args.expires else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    engine = _engine(config)
    try:
        with engine.begin() as conn:
            token = admin.create_registration_token(
                conn,
                uses_allowed=args.uses,
                expiry_time=expiry,
                role=args.role,
                now_ms=now,
                token=args.token,
            )
    finally:
        engine.dispose()
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from node.accounts import store
    from node.accounts.tokens import registration_token_valid

    config = _load(args)
    engine = _engine(config)
    try:
        with engine.begin() as conn:
            tokens = store.list_registration_tokens(conn)
    finally:
        engine.dispose()
    now = _now_ms()
    rows = [
        [
            t["token"],
            t["role"],
            f"{t['completed']}/{t['uses_allowed'] if t['uses_allowed'] is not None else '-'}",
            t["pending"],
            _when(t["expiry_time"]),
            "yes" if registration_token_valid(t, now) else "no",
        ]
        for t in tokens
    ]
    print(_table(rows, ["TOKEN", "ROLE", "USED", "PENDING", "EXPIRES", "VALID"]))
    print(f"{len(tokens)} token(s)")
    return 0
