"""``parta demo``: the README's main job on the embedded default (SQLite, loopback).

With the gateway package installed, ``parta demo`` runs the demo *city* (a gateway and two
school nodes): the ``parta.demo`` entry point ``city`` takes over (``gateway.demo_city``).
``parta demo --school`` (and ``parta demo`` without the gateway package) initialises one
school node under ``var/demo`` (once), seeds demo users and rooms through the node's own
services (the same code paths a client uses), prints the client URL and the demo logins,
and serves until Ctrl-C.  ``--protocol`` instead walks through the signed-event core in
memory and exits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any

DEMO_SERVER = "school42.localhost"
DEMO_PASSWORD = "demo-password-42"
DEMO_USERS = [  # localpart, role, display name
    ("director", "director", "Director Novak"),
    ("teacher.ana", "teacher", "Ana (Maths)"),
    ("teacher.ben", "teacher", "Ben (History)"),
    ("pupil.cara", "pupil", "Cara"),
    ("pupil.dan", "pupil", "Dan"),
    ("parent.eva", "parent", "Eva (Cara's parent)"),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run a demo city (gateway + two schools) or, with --school, one school "
        "node, with seeded users and rooms (SQLite, loopback)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where the demo lives (default ./var/demo-city, or ./var/demo with --school)",
    )
    p.add_argument(
        "--school",
        action="store_true",
        help="only one school node (the demo before the city gateway)",
    )
    p.add_argument("--port", type=int, default=8008, help="client API port (default 8008)")
    p.add_argument("--fresh", action="store_true", help="wipe the demo data dir first")
    p.add_argument(
        "--protocol",
        action="store_true",
        help="only walk through the signed-event protocol core, in memory, and exit",
    )
    p.add_argument(
        "--seed-only",
        action="store_true",
        help="initialise and seed, print the logins, then exit instead of serving",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.protocol:
        from .protocol_walk import run_protocol_walk

        run_protocol_walk()
        return 0
    if not args.school:
        city = _city_demo()
        if city is not None:
            return int(city(args) or 0)
    from node.config import load_config

    data_dir = os.path.abspath(args.data_dir or os.path.join("var", "demo"))
    if args.fresh and os.path.isdir(data_dir):
        shutil.rmtree(data_dir)
    config_path = os.path.join(data_dir, "config.yaml")
    if not os.path.exists(config_path):
        _init(data_dir, args.port)
    config = load_config(config_path)
    config.rate_limits.enabled = True
    print("Parta demo: one school node on the embedded default (SQLite, loopback)")
    print(f"  data dir: {data_dir}")
    from node.app import run

    return run(
        config,
        extra_areas=[
            lambda ctx, services: _schedule_seed(ctx, services, data_dir, stop_after=args.seed_only)
        ],
    )


def _city_demo() -> Any:
    """The ``parta.demo`` entry point ``city`` (the gateway package's), or None."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="parta.demo", name="city"):
        return ep.load()
    return None


def _init(data_dir: str, port: int) -> None:
    from .main import main

    rc = main(
        [
            "node",
            "init",
            "--server-name",
            DEMO_SERVER,
            "--data-dir",
            data_dir,
            "--port",
            str(port),
            "--metrics-port",
            str(port + 1100),
        ]
    )
    if rc != 0:
        raise SystemExit(rc)


def _schedule_seed(ctx: Any, services: Any, data_dir: str, *, stop_after: bool) -> None:
    from twisted.internet import defer

    async def seed_and_report() -> None:
        try:
            rooms = await _seed(ctx, services, os.path.join(data_dir, ".seeded"))
            _print_logins(ctx, rooms)
        except Exception as exc:  # noqa: BLE001 - report and stop: the demo must not hang
            print(f"parta demo: seeding failed: {exc}", file=sys.stderr, flush=True)
            ctx.reactor.stop()
            return
        if stop_after:
            ctx.reactor.stop()

    ctx.reactor.callWhenRunning(lambda: defer.ensureDeferred(seed_and_report()))


async def _seed(ctx: Any, services: Any, marker: str) -> dict[str, str]:
    """Create demo users and rooms once; return room name -> room ID."""
    import json

    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as fh:
            return json.load(fh)
    accounts, rooms = services.accounts, services.rooms
    uid = {}
    for localpart, role, display in DEMO_USERS:
        uid[localpart] = await accounts.create_user(localpart, DEMO_PASSWORD, role, display)
    director, ana, ben = uid["director"], uid["teacher.ana"], uid["teacher.ben"]
    pupils = [uid["pupil.cara"], uid["pupil.dan"]]
    created: dict[str, str] = {}
    created["School 42 (space)"] = space = await rooms.create_room(
        director,
        {
            "name": "School 42",
            "topic": "Everything at School 42",
            "creation_content": {"type": "m.space"},
            "preset": "public_chat",
            "room_alias_name": "school42",
            "visibility": "public",
        },
    )
    created["Class 7B"] = class_room = await rooms.create_room(
        ana,
        {
            "name": "Class 7B",
            "topic": "Maths, homework and news for 7B",
            "preset": "private_chat",
            "invite": pupils + [ben, uid["parent.eva"]],
        },
    )
    created["Staff room"] = staff = await rooms.create_room(
        director, {"name": "Staff room", "preset": "private_chat", "invite": [ana, ben]}
    )
    created["Announcements"] = news = await rooms.create_room(
        director,
        {
            "name": "Announcements",
            "topic": "Read-only news from the school office",
            "preset": "public_chat",
            "visibility": "public",
            "room_alias_name": "announcements",
            "power_level_content_override": {"events_default": 50},
        },
    )
    for user in pupils + [ben, uid["parent.eva"]]:
        await rooms.update_membership(user, class_room, user, "join")
    for user in uid.values():  # everyone is in the school space and reads the news
        if user != director:
            await rooms.update_membership(user, space, user, "join")
            await rooms.update_membership(user, news, user, "join")
    for user in (ana, ben):
        await rooms.update_membership(user, staff, user, "join")
    for child in (class_room, staff, news):
        await rooms.send_event(
            director, space, "m.space.child", {"via": [ctx.server_name]}, state_key=child
        )
    await rooms.send_event(
        ana,
        class_room,
        "m.room.message",
        {"msgtype": "m.text", "body": "Welcome to 7B! Homework: p. 42, ex. 1-5."},
    )
    await rooms.send_event(
        uid["pupil.cara"],
        class_room,
        "m.room.message",
        {"msgtype": "m.text", "body": "Thanks, got it."},
    )
    await rooms.send_event(
        director,
        news,
        "m.room.message",
        {"msgtype": "m.text", "body": "School opens at 8:00 on Monday."},
    )
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump(created, fh)
    return created


def _print_logins(ctx: Any, rooms: dict[str, str]) -> None:
    url = ctx.config.public_baseurl.rstrip("/")
    print("", flush=True)
    print(f"Client URL (homeserver): {url}")
    print(f"Server name:             {ctx.server_name}")
    print(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for localpart, role, display in DEMO_USERS:
        print(f"  {'@' + localpart + ':' + ctx.server_name:<34} {role:<9} {display}")
    print("Rooms:")
    for name, room_id in rooms.items():
        print(f"  {name:<20} {room_id}")
    print(
        "Try it: any Matrix client (Element, matrix-nio) against the client URL; Ctrl-C stops.",
        flush=True,
    )
