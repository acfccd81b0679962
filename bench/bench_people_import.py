"""People import benchmark: a whole school from a OneRoster 1.2 CSV export (not a test).

Run: ``.venv/bin/python bench/bench_people_import.py [--pupils 1000] [--classes 40]
[--staff 80] [--change 0.05] [--keep DIR]``.

1. A synthetic export: ``--pupils`` pupils in ``--classes`` classes, ``--staff`` staff
   (a principal, office staff, one homeroom teacher per class and subject teachers, each
   class taught by four), and parents: one per pupil, a second for a third of them,
   siblings sharing a family one time in ten.
2. A fresh node data directory (``parta node init``, SQLite).  ``parta node people import``
   is timed as school IT runs it (a process of its own: reading, checking, planning and
   writing the accounts and the record in one transaction).
3. The node is started and times, in its own log (``event=people_rooms_synced ms=``), the
   room sync: the space, staff, announcements, class and parents' rooms created and every
   member invited and joined, written in batches.
4. ``--change`` of the pupils are changed (half move class, a quarter leave, a quarter are
   new, and as many renamed) and the export is imported again while the node runs; both
   the import and the node's room sync for it are timed.

The targets: the first import (import + room sync) within 10 s and a re-import with 5 %
changes within 2 s on the project's 2-core machines.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTA = str(ROOT / ".venv" / "bin" / "parta")
MANIFEST = [
    ("manifest.version", "1.0"),
    ("oneroster.version", "1.2"),
    ("file.academicSessions", "absent"),
    ("file.courses", "absent"),
    ("file.roles", "absent"),
    ("file.orgs", "bulk"),
    ("file.users", "bulk"),
    ("file.classes", "bulk"),
    ("file.enrollments", "bulk"),
]
USER_COLS = ["sourcedId", "status", "enabledUser", "givenName", "familyName", "role",
             "agentSourcedIds"]  # fmt: skip
GIVEN = ["Anna", "Boris", "Daria", "Egor", "Fedor", "Galina", "Ilya", "Kira", "Lev", "Maria",
         "Nikita", "Olga", "Pavel", "Raisa", "Sergei", "Tanya", "Vera", "Yuri", "Zoya"]  # fmt: skip
FAMILY = ["Ivanov", "Petrov", "Sidorov", "Smirnov", "Kuznetsov", "Popov", "Sokolov",
          "Lebedev", "Kozlov", "Novikov", "Morozov", "Volkov", "Orlov", "Egorov"]  # fmt: skip


def generate(rng: random.Random, pupils: int, classes: int, staff: int) -> dict:
    school = {"users": [], "classes": [], "enrollments": []}
    users = school["users"]
    users.append(["staff-0", "", "true", "Maria", "Director", "principal", ""])
    n_office = max(1, staff // 10)
    for i in range(1, n_office):
        users.append([f"staff-{i}", "", "true", rng.choice(GIVEN), "Office", "administrator", ""])
    teachers = [f"staff-{i}" for i in range(n_office, staff)]
    for t in teachers:
        users.append([t, "", "true", rng.choice(GIVEN), rng.choice(FAMILY), "teacher", ""])
    for c in range(classes):
        school["classes"].append([f"class-{c}", f"{5 + c // 8}{'ABCDEFGH'[c % 8]}"])
    families: list[list[str]] = []
    for p in range(pupils):
        sid = f"pupil-{p}"
        if families and rng.random() < 0.1:
            parents = rng.choice(families)
        else:
            parents = [f"parent-{len(families)}-a"]
            if rng.random() < 1 / 3:
                parents.append(f"parent-{len(families)}-b")
            families.append(parents)
        users.append(
            [sid, "", "true", rng.choice(GIVEN), rng.choice(FAMILY), "student", ",".join(parents)]
        )
        school["enrollments"].append([f"class-{p % classes}", sid, "student"])
    for parents in families:
        for parent in parents:
            users.append([parent, "", "true", rng.choice(GIVEN), rng.choice(FAMILY), "parent", ""])
    for c in range(classes):
        homeroom = teachers[c % len(teachers)]
        subject = [teachers[(classes + c * 3 + k) % len(teachers)] for k in range(3)]
        for t in dict.fromkeys([homeroom, *subject]):
            school["enrollments"].append([f"class-{c}", t, "teacher"])
    return school


def change(rng: random.Random, school: dict, fraction: float, classes: int) -> None:
    pupils = [u for u in school["users"] if u[5] == "student"]
    n = int(len(pupils) * fraction)
    rng.shuffle(pupils)
    movers, leavers = pupils[: n // 2], pupils[n // 2 : n // 2 + n // 4]
    renamed = pupils[n : 2 * n]
    for u in renamed:
        u[3] = u[3] + "a"
    moved = {u[0] for u in movers}
    gone = {u[0] for u in leavers}
    school["users"] = [u for u in school["users"] if u[0] not in gone]
    enr = []
    for cls, user, role in school["enrollments"]:
        if user in gone:
            continue
        if user in moved:
            cls = f"class-{(int(cls.split('-')[1]) + 1) % classes}"
        enr.append([cls, user, role])
    for i in range(n // 4):
        sid = f"pupil-new-{i}"
        school["users"].append([sid, "", "true", "New", rng.choice(FAMILY), "student", ""])
        enr.append([f"class-{i % classes}", sid, "student"])
    school["enrollments"] = enr


def write(directory: Path, school: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)

    def out(name: str, header: list[str], rows: list[list[str]]) -> None:
        with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)

    out("manifest", ["propertyName", "value"], [list(r) for r in MANIFEST])
    out("orgs", ["sourcedId", "status", "name", "type"], [["org-1", "", "School 1", "school"]])
    out("users", USER_COLS, school["users"])
    out(
        "classes",
        ["sourcedId", "status", "title", "schoolSourcedId"],
        [[sid, "", title, "org-1"] for sid, title in school["classes"]],
    )
    out(
        "enrollments",
        ["sourcedId", "status", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"],
        [[f"e-{i}", "", c, "org-1", u, r] for i, (c, u, r) in enumerate(school["enrollments"])],
    )


def timed_import(config: str, export: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [PARTA, "node", "people", "import", "-c", config, str(export), "--show", "0"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def wait_synced(log: Path, generation: int, timeout: float = 300.0) -> int:
    pattern = re.compile(rf"event=people_rooms_synced generation={generation} rooms=\d+ ms=(\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = pattern.search(log.read_text(encoding="utf-8", errors="replace"))
        if m:
            return int(m.group(1))
        if "Traceback" in log.read_text(encoding="utf-8", errors="replace"):
            raise SystemExit(f"the node failed; see {log}")
        time.sleep(0.2)
    raise SystemExit(f"no room sync for generation {generation} within {timeout} s; see {log}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pupils", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=40)
    ap.add_argument("--staff", type=int, default=80)
    ap.add_argument("--change", type=float, default=0.05)
    ap.add_argument("--keep", help="keep the data directory here")
    args = ap.parse_args()
    rng = random.Random(42)
    work = Path(args.keep or tempfile.mkdtemp(prefix="parta-people-bench-"))
    school = generate(rng, args.pupils, args.classes, args.staff)
    export = work / "export"
    write(export, school)
    people = len(school["users"])
    data = work / "node"
    subprocess.run(
        [PARTA, "node", "init", "--server-name", "bench.test", "--data-dir", str(data),
         "--port", "0", "--metrics-port", "0"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    config = str(data / "config.yaml")
    print(f"school: {people} people ({args.pupils} pupils, {args.staff} staff, "
          f"{people - args.pupils - args.staff} parents), {args.classes} classes, "
          f"{len(school['enrollments'])} enrollments")  # fmt: skip
    first_import = timed_import(config, export)
    log = work / "node.log"
    with open(log, "w") as fh:
        node = subprocess.Popen([PARTA, "node", "run", "-c", config], stdout=fh, stderr=fh)
    try:
        first_rooms = wait_synced(log, 1) / 1000
        print(f"first import: import {first_import:.2f} s + rooms {first_rooms:.2f} s "
              f"= {first_import + first_rooms:.2f} s (target <= 10 s)")  # fmt: skip
        change(rng, school, args.change, args.classes)
        write(export, school)
        re_import = timed_import(config, export)
        re_rooms = wait_synced(log, 2) / 1000
        print(f"re-import ({args.change:.0%} of pupils changed): import {re_import:.2f} s + "
              f"rooms {re_rooms:.2f} s = {re_import + re_rooms:.2f} s (target <= 2 s)")  # fmt: skip
        again = timed_import(config, export)
        print(f"same export again (empty plan): {again:.2f} s")
    finally:
        node.terminate()
        node.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
