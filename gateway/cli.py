"""``parta gateway ...``: init, run, enrol create, school list/revoke, roster show/export.

Registered through the ``parta.commands`` entry point ``gateway``.  Every subcommand after
``init`` takes ``-c CONFIG`` (the gateway's config: a node config with a ``gateway:``
section).  Admin subcommands work on the database directly through the same
``RosterService`` the running gateway uses (no running gateway needed), like ``parta node
user add``.  Failures print one line (``parta: error: ...``) and exit with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
from typing import Any

from node.cli.main import CliError

_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def register(subparsers: argparse._SubParsersAction) -> None:
    gw = subparsers.add_parser("gateway", help="run and administer the city gateway")
    sub = gw.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND")
    gw.set_defaults(func=lambda args: _help(gw))

    p = sub.add_parser(
        "init", help="create a gateway: node config, roster key, roster v1, office account"
    )
    p.add_argument("--server-name", required=True, help="e.g. city.example")
    p.add_argument("--data-dir", required=True, help="directory for config, keys, DB, media")
    p.add_argument("--port", type=int, default=8008, help="client API port (default 8008)")
    p.add_argument("--bind", default="127.0.0.1", help="client API address (default 127.0.0.1)")
    p.add_argument("--metrics-port", type=int, default=9108, help="metrics port (default 9108)")
    p.add_argument(
        "--federation-port",
        type=int,
        default=None,
        help="federation (HTTPS) port (default 8448; 0 when --port is 0)",
    )
    p.add_argument(
        "--city-name",
        default="City office",
        help="the gateway's name in the roster (default 'City office')",
    )
    p.add_argument(
        "--admin",
        default="office",
        help="localpart of the city office admin account (default 'office')",
    )
    p.add_argument(
        "--admin-password-file",
        help="file holding the admin password (default: generate and print one)",
    )
    p.add_argument(
        "--database-url",
        help='e.g. "postgresql://user:pass@host/db" (default: SQLite in the data dir)',
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="serve the gateway (node + roster API + dashboard)")
    _config_arg(p)
    p.set_defaults(func=cmd_run)

    enrol = sub.add_parser("enrol", help="enrolment tokens")
    esub = enrol.add_subparsers(dest="enrol_command", metavar="ACTION")
    enrol.set_defaults(func=lambda args: _help(enrol))
    p = esub.add_parser("create", help="create a one-time enrolment token and print it")
    _config_arg(p)
    p.add_argument("--school-id", required=True, help="the city's ID of the school, e.g. 42")
    p.add_argument("--name", required=True, help='e.g. "Lyceum No. 42"')
    p.add_argument("--district", default="", help="e.g. North")
    p.add_argument(
        "--class",
        dest="server_class",
        default="school",
        choices=("school", "external"),
        help="school (default) or external",
    )
    p.add_argument("--ttl", help="lifetime: 30m, 12h, 7d, 2w (default: gateway config)")
    p.set_defaults(func=cmd_enrol_create)

    school = sub.add_parser("school", help="schools known to the gateway")
    ssub = school.add_subparsers(dest="school_command", metavar="ACTION")
    school.set_defaults(func=lambda args: _help(school))
    p = ssub.add_parser("list", help="list schools and their enrolment status")
    _config_arg(p)
    p.set_defaults(func=cmd_school_list)
    p = ssub.add_parser("revoke", help="remove a school from the roster (new version)")
    _config_arg(p)
    p.add_argument("school_id", help="the school's ID")
    p.set_defaults(func=cmd_school_revoke)

    roster = sub.add_parser("roster", help="the signed roster")
    rsub = roster.add_subparsers(dest="roster_command", metavar="ACTION")
    roster.set_defaults(func=lambda args: _help(roster))
    p = rsub.add_parser("show", help="show the current (or one) roster version")
    _config_arg(p)
    p.add_argument("--version", type=int, help="show this version instead of the current")
    p.add_argument("--json", action="store_true", help="print the signed JSON document")
    p.set_defaults(func=cmd_roster_show)
    p = rsub.add_parser("export", help="print the roster as another server's config")
    _config_arg(p)
    p.add_argument(
        "--format",
        required=True,
        choices=("synapse",),
        help="synapse: federation_domain_whitelist + trusted_key_servers",
    )
    p.set_defaults(func=cmd_roster_export)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        required=True,
        metavar="CONFIG",
        help="path to the gateway's config.yaml (written by 'parta gateway init')",
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def parse_duration_ms(text: str) -> int:
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise CliError(f"invalid duration {text!r} (use e.g. 30m, 12h, 7d, 2w)")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


# --- a RosterService on the database, without a reactor ----------------------------------
class _Admin:
    """Config, gateway config, engine and a blocking ``RosterService``."""

    def __init__(self, config_path: str) -> None:
        from node.cli.node_cmd import _engine
        from node.config import load_config

        from .blocking import BlockingDatabase, WallClock
        from .config import gateway_config
        from .roster import RosterService
        from .roster_key import RosterKeyError, load_roster_key

        self.config = load_config(config_path)
        self.gw_config = gateway_config(self.config)
        try:
            key, verify_key = load_roster_key(self.gw_config.roster_key_path)
        except RosterKeyError as exc:
            raise CliError(str(exc)) from None
        self.engine = _engine(self.config)
        self.roster = RosterService(
            BlockingDatabase(self.engine),
            WallClock(),
            self.config.server_name,
            key,
            self.gw_config.roster_validity_ms,
            roster_verify_key=verify_key,
            token_ttl_ms=self.gw_config.token_ttl_ms,
        )

    def __enter__(self) -> "_Admin":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.engine.dispose()

    def wait(self, coro: Any) -> Any:
        from sqlalchemy.exc import IntegrityError

        from .blocking import wait

        try:
            return wait(coro)
        except IntegrityError:
            raise CliError(
                "another roster version was published at the same moment "
                "(by the running gateway?); run the command again"
            ) from None


# --- init / run ----------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from node.accounts import admin
    from node.accounts.passwords import generate_password
    from node.app import load_signing_key
    from node.cli.node_cmd import _engine, _now_ms, _read_password_file
    from node.cli.node_cmd import cmd_init as node_init
    from node.config import load_config

    from .blocking import BlockingDatabase, WallClock, wait
    from .config import GatewayConfig, gateway_config, render_section
    from .roster import RosterService
    from .roster_key import RosterKeyError, create_roster_key, load_roster_key

    password = _read_password_file(args.admin_password_file) if args.admin_password_file else None
    node_out = io.StringIO()
    with contextlib.redirect_stdout(node_out):
        node_init(args)  # validates, writes config + signing key, creates the DB
    data_dir = os.path.abspath(args.data_dir)
    config_path = os.path.join(data_dir, "config.yaml")
    with open(config_path, encoding="utf-8") as fh:
        text = fh.read()
    if args.database_url:
        # The node's init made an empty SQLite database; the gateway lives elsewhere.
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(data_dir, "node.db" + suffix))
        text = re.sub(
            r"(?m)^database_url: .*$",
            lambda m: "database_url: " + json.dumps(args.database_url),
            text,
        )
    text += render_section(GatewayConfig(admin_localpart=args.admin))
    with open(config_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    config = load_config(config_path)
    gw_config = gateway_config(config)

    key_path = gw_config.roster_key_path
    try:
        if os.path.exists(key_path):
            roster_key, _ = load_roster_key(key_path)
            print(f"Keeping existing roster key {key_path}")
        else:
            roster_key = create_roster_key(key_path)
    except RosterKeyError as exc:
        raise CliError(str(exc)) from None
    if roster_key is None:
        raise CliError(f"roster key {key_path} is missing (only its public half exists)")

    server_key = load_signing_key(config.signing_key_path)
    engine = _engine(config)
    try:
        roster = RosterService(
            BlockingDatabase(engine),
            WallClock(),
            config.server_name,
            roster_key,
            gw_config.roster_validity_ms,
        )
        doc = wait(
            roster.add_server(
                config.server_name,
                school_id="city",
                name=args.city_name,
                server_class="city",
                verify_keys=[server_key.verify_key],
            )
        )
        generated = password is None
        if password is None:
            password = generate_password()
        with engine.begin() as conn:
            admin_id = admin.create_user(
                conn,
                server_name=config.server_name,
                localpart=args.admin,
                password=password,
                role="office",
                display_name="City office",
                now_ms=_now_ms(),
                password_min_length=config.registration.password_min_length,
            )
    finally:
        engine.dispose()
    from federation.roster import roster_key_fingerprint

    print(f"Initialised gateway {config.server_name} in {data_dir}")
    print(f"  config:       {config_path}")
    print(f"  server key:   {config.signing_key_path}")
    print(
        f"  roster key:   {key_path} ({roster_key.key_id}, fingerprint "
        f"{roster_key_fingerprint(roster_key.verify_key)}); keep it safe, nodes pin it"
    )
    print(f"  roster:       version {doc['version']} ({len(doc['servers'])} server)")
    print(f"  office admin: {admin_id}")
    if generated:
        print(f"  password:     {password}")
        print("  (shown once; the dashboard login is at /dashboard/)")
    print(f"Next: parta gateway run -c {config_path}")
    print(
        f"      parta gateway enrol create --school-id 42 --name 'Lyceum No. 42' "
        f"--district North -c {config_path}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from node.config import load_config

    from .app import run

    return run(load_config(args.config))


# --- enrolment / schools -------------------------------------------------------------------
def cmd_enrol_create(args: argparse.Namespace) -> int:
    from federation.enrolment import parse_token
    from node.cli.node_cmd import _when

    ttl = parse_duration_ms(args.ttl) if args.ttl else None
    with _Admin(args.config) as a:
        token = a.wait(
            a.roster.create_enrolment_token(
                args.school_id, args.name, args.district, ttl, server_class=args.server_class
            )
        )
        url = a.config.public_baseurl.rstrip("/")
    tok = parse_token(token)
    print(token)
    print(
        f"One-time enrolment token for school {args.school_id} ({args.name}), valid until "
        f"{_when(tok.expires_ts)}. On the school node run:\n"
        f"  parta node enrol {url} --token {token} -c CONFIG",
        file=sys.stderr,
    )
    return 0


def cmd_school_list(args: argparse.Namespace) -> int:
    from node.cli.node_cmd import _table, _when

    from .directory import directory_entries

    with _Admin(args.config) as a:
        entries = directory_entries(a.wait(a.roster.list_schools()), a.wait(a.roster.current()))
    rows = [
        [
            e["school_id"],
            e["name"],
            e["district"] or "-",
            e["server"] or "-",
            e["class"],
            e["status"],
            _when(e["enrolled_ts"]) if e["enrolled_ts"] else "-",
        ]
        for e in entries
    ]
    print(_table(rows, ["ID", "NAME", "DISTRICT", "SERVER", "CLASS", "STATUS", "ENROLLED"]))
    print(f"{len(entries)} school(s)")
    return 0


def cmd_school_revoke(args: argparse.Namespace) -> int:
    with _Admin(args.config) as a:
        before = a.wait(a.roster.current())
        doc = a.wait(a.roster.revoke(args.school_id))
    if doc is not None and (before is None or doc["version"] != before["version"]):
        gone = sorted(set((before or {}).get("servers", {})) - set(doc["servers"]))
        print(
            f"Revoked school {args.school_id}: published roster version {doc['version']} "
            f"without {', '.join(gone)}"
        )
    else:
        print(
            f"Revoked school {args.school_id}: it was not in the roster (its unused "
            f"enrolment tokens no longer work)"
        )
    return 0


# --- roster --------------------------------------------------------------------------------
def cmd_roster_show(args: argparse.Namespace) -> int:
    from node.cli.node_cmd import _table, _when

    with _Admin(args.config) as a:
        if args.version is not None:
            doc = a.wait(a.roster.get(args.version))
            if doc is None:
                raise CliError(f"there is no roster version {args.version}")
        else:
            doc = a.wait(a.roster.current())
            if doc is None:
                raise CliError("no roster has been published yet")
        from federation.roster import roster_hash, verify_roster

        verify_roster(doc, a.roster.roster_verify_key, a.config.server_name)  # raises if bad
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print(
        f"Roster version {doc['version']} signed by {a.config.server_name} "
        f"({a.roster.roster_verify_key.key_id}): signature verified"
    )
    print(f"  issued:      {_when(doc['issued_ts'])}")
    print(f"  valid until: {_when(doc['valid_until_ts'])}")
    print(f"  sha256:      {roster_hash(doc)}")
    print(f"  previous:    {doc['prev_sha256'] or '(none: first version)'}")
    rows = [
        [
            name,
            e["class"],
            e["school_id"],
            e["name"],
            e.get("district") or "-",
            ", ".join(sorted(e["verify_keys"])),
        ]
        for name, e in sorted(doc["servers"].items())
    ]
    print(_table(rows, ["SERVER", "CLASS", "ID", "NAME", "DISTRICT", "KEYS"]))
    print(f"{len(rows)} server(s)")
    return 0


def cmd_roster_export(args: argparse.Namespace) -> int:
    from federation.keys import load_signing_key_file
    from node.app import StartupError

    with _Admin(args.config) as a:
        doc = a.wait(a.roster.current())
    if doc is None:
        raise CliError("no roster has been published yet")
    try:
        keys = load_signing_key_file(a.config.signing_key_path)
    except OSError:
        raise StartupError(
            f"cannot read the gateway's signing key {a.config.signing_key_path}"
        ) from None
    sys.stdout.write(
        a.roster.export_synapse(doc, a.config.server_name, [k.verify_key for k in keys])
    )
    return 0
