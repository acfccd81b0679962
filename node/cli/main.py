"""``parta`` entry point: collects subcommands from the ``parta.commands`` entry-point group.

Each entry point is ``register(subparsers)``; it adds a parser whose ``func(args) -> int`` runs
the command.  Expected failures (bad config, refused actions) print one line on stderr and exit
with status 1; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points


class CliError(Exception):
    """A user-facing failure: printed as ``parta: error: <message>``."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    from federation.errors import MatrixError
    from node.accounts.admin import AdminError
    from node.app import StartupError
    from node.config import ConfigError

    return (CliError, ConfigError, StartupError, AdminError, MatrixError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parta", description="Parta: school Matrix nodes")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group="parta.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the others
            print(f"parta: warning: command {ep.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except _expected_errors() as exc:
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        print(f"parta: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
