"""``parta node people import DIR [--dry-run]`` and ``parta node people claim-codes``.

The work is in ``node/people/admin.py``; this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .main import CliError


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, metavar="CONFIG", help="path to config.yaml")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    """The config and an engine on its database at the head migration (without importing
    the whole node: start-up time is most of a re-import's)."""
    from node.config import load_config
    from node.storage.database import make_engine
    from schema.migrations import upgrade

    config = load_config(args.config)
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        engine.dispose()
        raise CliError(f"database upgrade failed: {exc.__class__.__name__}: {exc}") from None
    return config, engine


def _now_ms() -> int:
    return int(time.time() * 1000)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines
    )


def add_people_parser(sub: argparse._SubParsersAction) -> None:
    people = sub.add_parser("people", help="import the school's people (OneRoster 1.2 CSV)")
    psub = people.add_subparsers(dest="people_command", metavar="ACTION")
    people.set_defaults(func=lambda args: _help(people))
    p = psub.add_parser(
        "import",
        help="apply a OneRoster 1.2 CSV bulk export: accounts, classes, rooms, memberships",
    )
    _config_arg(p)
    p.add_argument("directory", metavar="DIR", help="directory holding manifest.csv and the rest")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--show", type=int, default=10, metavar="N", help="items listed per kind (default 10)"
    )
    p.set_defaults(func=cmd_people_import)
    p = psub.add_parser(
        "claim-codes",
        help="print new one-time sign-in codes for a class's pupils and their parents",
    )
    _config_arg(p)
    p.add_argument("--class", dest="class_id", required=True, metavar="CLASS_SOURCED_ID")
    p.set_defaults(func=cmd_people_claim_codes)


def cmd_people_import(args: argparse.Namespace) -> int:
    from node.people import admin
    from node.people.oneroster import RosterError
    from node.people.plan import summary
    from node.people.store import SWEEP_SECONDS

    config, engine = _open(args)
    try:
        with engine.begin() as conn:
            result = admin.run_import(
                conn,
                args.directory,
                server_name=config.server_name,
                now_ms=_now_ms(),
                dry_run=args.dry_run,
            )
    except RosterError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise CliError(
            f"{len(exc.problems)} problem(s) in the export; nothing was changed"
        ) from None
    finally:
        engine.dispose()
    print(summary(result.plan, max(args.show, 0)), end="")
    if args.dry_run:
        print("Dry run: nothing was changed.")
    elif not result.plan.is_empty():
        print(
            f"Applied. A running node updates the rooms within {SWEEP_SECONDS:.0f} seconds; "
            "a stopped node does so when it starts."
        )
    return 0


def cmd_people_claim_codes(args: argparse.Namespace) -> int:
    from node.people import admin

    _config, engine = _open(args)
    try:
        with engine.begin() as conn:
            rows = admin.issue_claim_codes(conn, args.class_id, _now_ms())
    finally:
        engine.dispose()
    if rows is None:
        raise CliError(f"no class with sourcedId {args.class_id!r}")
    table = [
        [
            r["name"],
            r["role"] if r["child"] is None else f"parent of {r['child']}",
            r["user_id"],
            r["code"],
        ]
        for r in rows
    ]
    print(_table(table, ["NAME", "WHO", "USER", "CLAIM CODE"]))
    print(
        f"{len(rows)} code(s), each shown once and usable once; earlier codes of these people "
        "no longer work.  Sign-in: the app's claim page, or POST /_parta/v1/claim."
    )
    return 0
