"""``parta demo``: the README's main job on the embedded default (SQLite, loopback)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the demo (protocol walk: build, sign, verify and resolve a room)")
    p.add_argument("--protocol", action="store_true",
                   help="only walk through the signed-event protocol core, in memory")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .protocol_walk import run_protocol_walk
    run_protocol_walk()
    return 0
