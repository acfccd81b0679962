"""What push-rule evaluation costs a local send, in CPU *instructions* per message.

Usage: ``.venv/bin/python bench/bench_send_cost.py [--members 30] [--small 100] [--large 400]
[--json FILE]`` (needs ``valgrind``; about a minute on 2 cores).

Why: the wall-clock node benchmark (``bench_node.py --push-off``) moves by +-20 % on a shared
2-core machine, more than the difference it is meant to show.  Instructions executed are
nearly deterministic.  Under ``valgrind --tool=cachegrind`` (instruction counts only), an
in-process node (``tests/unit/node/push/push_support.PushNode``: the real rooms service with
its persister on in-memory SQLite, the real push area on its ``on_persisted`` hook, everything
on one thread) sends messages into a class room of ``--members`` members, with push
evaluation on and off, at two sizes so that start-up cancels out.  The denominator is the
rooms service's send alone (no HTTP, no /sync fan-out), so the share reported is an upper
bound of what push costs the whole send path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _inner(push: bool, members: int, n: int) -> None:
    sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests/unit/node")]
    from support.db import InlineDB
    from support.deferreds import result_of
    from twisted.internet import task

    from node.clock import ReactorClock
    from node.push.service import PushService
    from node.sync.notifier import SyncNotifier
    from rooms_support import SERVER, FakeAccounts, make_service, uid

    localparts = ["teacher"] + [f"pupil{i}" for i in range(members - 1)]
    reactor = task.Clock()
    reactor.advance(1_700_000_000)
    clock = ReactorClock(reactor)
    db = InlineDB()
    rooms = make_service(
        db, clock=clock, notifier=SyncNotifier(clock), accounts=FakeAccounts(localparts)
    )
    service = PushService(db=db, clock=clock, server_name=SERVER, max_pushers=3)
    service.rules.load_sync()
    if push:
        service.attach_rooms(rooms)
        # The members must be local users, or no rule is ever evaluated.
        assert all(uid(lp).endswith(":" + SERVER) for lp in localparts)
    teacher = uid("teacher")
    room = result_of(rooms.create_room(teacher, {"preset": "public_chat"}))
    for lp in localparts[1:]:
        result_of(rooms.update_membership(uid(lp), room, uid(lp), "join"))
    for i in range(n):
        reactor.advance(0.01)
        result_of(
            rooms.send_event(
                teacher,
                room,
                "m.room.message",
                {"msgtype": "m.text", "body": f"message {i} about homework"},
            )
        )
        if service.evaluator is not None and i % 10 == 9:
            service.evaluator.flush()  # the node writes notifications every 0.1 s


def _count(push: bool, members: int, n: int) -> int:
    out = f"/tmp/parta-send-cost-{os.getpid()}-{int(push)}-{n}.out"
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        f"--cachegrind-out-file={out}",
        sys.executable,
        __file__,
        "--inner",
        "on" if push else "off",
        "--members",
        str(members),
        "--n",
        str(n),
    ]
    # A fixed hash seed: without one the same code varies by about 1 % from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if res.returncode != 0:
        raise SystemExit(f"valgrind run failed:\n{res.stderr[-3000:]}")
    m = re.search(r"I\s+refs:\s+([\d,]+)", res.stderr)
    os.unlink(out)
    if m is None:
        raise SystemExit(f"no instruction count in valgrind output:\n{res.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=30)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=400)
    ap.add_argument("--json")
    ap.add_argument("--inner", choices=["on", "off"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        _inner(args.inner == "on", args.members, args.n)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    print(
        f"Send cost {time.strftime('%Y-%m-%d %H:%M')}: instructions per message into a room of "
        f"{args.members} members, push evaluation on and off"
    )
    per = {}
    for push in (False, True):
        small = _count(push, args.members, args.small)
        large = _count(push, args.members, args.large)
        per[push] = (large - small) / (args.large - args.small)
        print(f"  push {'on ' if push else 'off'}: {per[push]:,.0f} instructions per message")
    ratio = per[True] / per[False]
    print(f"  on/off: x{ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"members": args.members, "off": per[False], "on": per[True]}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
