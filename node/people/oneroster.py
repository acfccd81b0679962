"""Reading a OneRoster 1.2 CSV bulk export (1EdTech OneRoster 1.2 "CSV Binding").

A school's information system exports one directory: ``manifest.csv`` says, per file,
whether it is ``bulk`` (the whole truth), ``delta`` or ``absent``; ``orgs.csv``,
``users.csv``, ``classes.csv`` and ``enrollments.csv`` carry what the node uses, and
``academicSessions.csv`` / ``courses.csv`` are checked where present (a class may name a
course).  Roles come from ``users.csv`` ``role`` (the column 1.1 exports and many 1.2
exporters still write) or from 1.2's ``roles.csv`` (``userSourcedId``, ``role``,
``roleType`` primary first).  Parents and their children are linked by ``users.csv``
``agentSourcedIds`` on either side.

Only bulk files are imported: a delta cannot say who left, and the node's record must be
the school's whole roster.  Every problem is collected with its file and line (the header
is line 1) so school IT can fix the export in one pass; the caller applies nothing when
there is any.  Input is bounded: file size, row count and field size are capped.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ROWS = 200_000
MAX_FIELD = 4096
MAX_NAME = 255
MAX_ID = 255

# OneRoster 1.2 role vocabulary -> the node's roles (node/accounts/roles.py).
ROLE_MAP: dict[str, str] = {
    "student": "pupil",
    "teacher": "teacher",
    "aide": "teacher",
    "proctor": "teacher",
    "guardian": "parent",
    "parent": "parent",
    "relative": "parent",
    "principal": "director",
    "administrator": "office",
    "siteadministrator": "office",
    "districtadministrator": "office",
    "systemadministrator": "office",
}
STAFF_ROLES = frozenset({"teacher", "director", "deputy", "office"})
ENROLL_ROLES = frozenset({"student", "teacher", "aide", "proctor", "administrator"})

REQUIRED = ("orgs", "users", "classes", "enrollments")
OPTIONAL = ("academicSessions", "courses", "roles")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Person:
    sourced_id: str
    role: str  # the node's role
    given_name: str
    family_name: str
    active: bool

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


@dataclass(frozen=True)
class Org:
    sourced_id: str
    name: str
    org_type: str


@dataclass(frozen=True)
class Klass:
    sourced_id: str
    title: str
    org_sourced_id: str
    active: bool


@dataclass
class Roster:
    """What one export says: everything keyed by sourcedId."""

    orgs: dict[str, Org] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    classes: dict[str, Klass] = field(default_factory=dict)
    enrollments: dict[tuple[str, str], str] = field(default_factory=dict)  # (class, person)
    guardians: set[tuple[str, str]] = field(default_factory=set)  # (parent, child)


class RosterError(Exception):
    """The export has problems; nothing may be applied."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the export")
        self.problems = problems


def _active(status: str) -> bool:
    return status.strip().lower() != "tobedeleted"


class _File:
    """One CSV file's rows as dicts with their line numbers; problems go to ``out``."""

    def __init__(self, directory: str, name: str, out: list[Problem]) -> None:
        self.name = f"{name}.csv"
        self.path = os.path.join(directory, self.name)
        self.out = out

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def rows(self, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
        try:
            size = os.path.getsize(self.path)
        except OSError as exc:
            self.problem(0, f"cannot read: {exc.strerror}")
            return []
        if size > MAX_FILE_BYTES:
            self.problem(0, f"larger than {MAX_FILE_BYTES} bytes")
            return []
        try:
            with open(self.path, "rb") as fh:
                text = fh.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.problem(0, f"not UTF-8 ({exc.reason} at byte {exc.start})")
            return []
        reader = csv.reader(io.StringIO(text, newline=""))
        rows: list[tuple[int, dict[str, str]]] = []
        try:
            header = next(reader, None)
            if header is None:
                self.problem(1, "empty file (a header row is required)")
                return []
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                self.problem(1, f"missing column(s): {', '.join(missing)}")
                return []
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                if len(rows) >= MAX_ROWS:
                    self.problem(line, f"more than {MAX_ROWS} rows")
                    break
                if len(values) != len(header):
                    self.problem(line, f"{len(values)} fields, the header has {len(header)}")
                    continue
                if any(len(v) > MAX_FIELD for v in values):
                    self.problem(line, f"a field longer than {MAX_FIELD} characters")
                    continue
                rows.append((line, {h: v.strip() for h, v in zip(header, values, strict=True)}))
        except csv.Error as exc:
            self.problem(reader.line_num, f"CSV syntax: {exc}")
        return rows

    def problem(self, line: int, reason: str) -> None:
        self.out.append(Problem(self.name, line, reason))


def _sourced_id(f: _File, line: int, row: dict[str, str], seen: set[str]) -> str | None:
    sid = row["sourcedId"]
    if not sid:
        f.problem(line, "empty sourcedId")
        return None
    if len(sid) > MAX_ID:
        f.problem(line, f"sourcedId longer than {MAX_ID} characters")
        return None
    if sid in seen:
        f.problem(line, f"duplicate sourcedId {sid!r}")
        return None
    seen.add(sid)
    return sid


def read_manifest(directory: str, out: list[Problem]) -> dict[str, str]:
    f = _File(directory, "manifest", out)
    if not f.exists():
        f.problem(0, "missing (the export must include manifest.csv)")
        return {}
    modes: dict[str, str] = {}
    for _line, row in f.rows(("propertyName", "value")):
        prop = row["propertyName"]
        if prop.startswith("file."):
            modes[prop[len("file.") :]] = row["value"].lower()
    for name in REQUIRED:
        mode = modes.get(name)
        if mode != "bulk":
            f.problem(0, f"file.{name} must be 'bulk' (is {mode or 'not listed'})")
    for name in OPTIONAL:
        mode = modes.get(name, "absent")
        if mode not in ("bulk", "absent"):
            f.problem(0, f"file.{name} is {mode!r}; only bulk exports are imported")
    return modes


def read_roster(directory: str) -> Roster:
    """Parse and cross-check an export; raises ``RosterError`` listing every problem."""
    out: list[Problem] = []
    if not os.path.isdir(directory):
        raise RosterError([Problem(directory, 0, "not a directory")])
    modes = read_manifest(directory, out)
    roster = Roster()
    for name in REQUIRED + OPTIONAL:
        if modes.get(name) == "bulk" and not _File(directory, name, out).exists():
            out.append(Problem(f"{name}.csv", 0, "the manifest lists it as bulk but it is missing"))
    if out:
        raise RosterError(out)

    f = _File(directory, "orgs", out)
    seen: set[str] = set()
    for line, row in f.rows(("sourcedId", "name", "type")):
        sid = _sourced_id(f, line, row, seen)
        if sid is None:
            continue
        if not row["name"] or len(row["name"]) > MAX_NAME:
            f.problem(line, f"name must be 1 to {MAX_NAME} characters")
            continue
        roster.orgs[sid] = Org(sid, row["name"], row["type"].lower()[:32])

    sessions: set[str] = set()
    if modes.get("academicSessions") == "bulk":
        f = _File(directory, "academicSessions", out)
        for line, row in f.rows(("sourcedId", "title")):
            _sourced_id(f, line, row, sessions)
    courses: set[str] = set()
    if modes.get("courses") == "bulk":
        f = _File(directory, "courses", out)
        for line, row in f.rows(("sourcedId", "title")):
            sid = _sourced_id(f, line, row, courses)
            if (
                sid is not None
                and row.get("orgSourcedId")
                and row["orgSourcedId"] not in roster.orgs
            ):
                f.problem(line, f"orgSourcedId {row['orgSourcedId']!r} is not in orgs.csv")

    roles_by_user = _read_roles(directory, modes, out)
    _read_users(directory, roster, roles_by_user, out)
    _read_classes(directory, roster, courses if modes.get("courses") == "bulk" else None, out)
    _read_enrollments(directory, roster, out)
    if out:
        raise RosterError(out)
    return roster


def _read_roles(directory: str, modes: dict[str, str], out: list[Problem]) -> dict[str, str]:
    """1.2 ``roles.csv``: the primary role of each user (first one listed otherwise)."""
    if modes.get("roles") != "bulk":
        return {}
    f = _File(directory, "roles", out)
    chosen: dict[str, tuple[bool, str]] = {}
    for line, row in f.rows(("userSourcedId", "role")):
        role = ROLE_MAP.get(row["role"].lower())
        if role is None:
            f.problem(line, f"unknown role {row['role']!r}")
            continue
        primary = row.get("roleType", "").lower() == "primary"
        user = row["userSourcedId"]
        if user not in chosen or (primary and not chosen[user][0]):
            chosen[user] = (primary, role)
    return {user: role for user, (_, role) in chosen.items()}


def _read_users(
    directory: str, roster: Roster, roles_by_user: dict[str, str], out: list[Problem]
) -> None:
    f = _File(directory, "users", out)
    seen: set[str] = set()
    agents: list[tuple[int, str, list[str]]] = []
    for line, row in f.rows(("sourcedId", "givenName", "familyName")):
        sid = _sourced_id(f, line, row, seen)
        if sid is None:
            continue
        raw_role = row.get("role", "")
        if raw_role:
            role = ROLE_MAP.get(raw_role.lower())
            if role is None:
                f.problem(line, f"unknown role {raw_role!r}")
                continue
        elif sid in roles_by_user:
            role = roles_by_user[sid]
        else:
            f.problem(line, "no role (neither a role column nor a row in roles.csv)")
            continue
        given = row.get("preferredGivenName") or row["givenName"]
        family = row.get("preferredFamilyName") or row["familyName"]
        if not given or len(given) > MAX_NAME or len(family) > MAX_NAME:
            f.problem(line, f"givenName must be 1 to {MAX_NAME} characters, familyName at most")
            continue
        enabled = row.get("enabledUser", "true").lower() not in ("false", "0", "no")
        roster.people[sid] = Person(
            sid, role, given, family, _active(row.get("status", "")) and enabled
        )
        ids = [a.strip() for a in row.get("agentSourcedIds", "").split(",") if a.strip()]
        if ids:
            agents.append((line, sid, ids))
    for line, sid, ids in agents:
        me = roster.people[sid]
        for agent_id in ids:
            agent = roster.people.get(agent_id)
            if agent is None:
                f.problem(line, f"agentSourcedIds names {agent_id!r}, not in users.csv")
            elif me.role == "pupil" and agent.role == "parent":
                roster.guardians.add((agent_id, sid))
            elif me.role == "parent" and agent.role == "pupil":
                roster.guardians.add((sid, agent_id))


def _read_classes(
    directory: str, roster: Roster, courses: set[str] | None, out: list[Problem]
) -> None:
    f = _File(directory, "classes", out)
    seen: set[str] = set()
    for line, row in f.rows(("sourcedId", "title", "schoolSourcedId")):
        sid = _sourced_id(f, line, row, seen)
        if sid is None:
            continue
        if not row["title"] or len(row["title"]) > MAX_NAME:
            f.problem(line, f"title must be 1 to {MAX_NAME} characters")
            continue
        if row["schoolSourcedId"] not in roster.orgs:
            f.problem(line, f"schoolSourcedId {row['schoolSourcedId']!r} is not in orgs.csv")
            continue
        course = row.get("courseSourcedId", "")
        if courses is not None and course and course not in courses:
            f.problem(line, f"courseSourcedId {course!r} is not in courses.csv")
            continue
        roster.classes[sid] = Klass(
            sid, row["title"], row["schoolSourcedId"], _active(row.get("status", ""))
        )


def _read_enrollments(directory: str, roster: Roster, out: list[Problem]) -> None:
    f = _File(directory, "enrollments", out)
    for line, row in f.rows(("classSourcedId", "userSourcedId", "role")):
        cls, user, role = row["classSourcedId"], row["userSourcedId"], row["role"].lower()
        if cls not in roster.classes:
            f.problem(line, f"classSourcedId {cls!r} is not in classes.csv")
        elif user not in roster.people:
            f.problem(line, f"userSourcedId {user!r} is not in users.csv")
        elif role not in ENROLL_ROLES:
            f.problem(line, f"role {row['role']!r} cannot be enrolled in a class")
        elif (cls, user) in roster.enrollments:
            f.problem(line, f"{user!r} is enrolled in {cls!r} twice")
        elif _active(row.get("status", "")):
            roster.enrollments[(cls, user)] = "student" if role == "student" else "teacher"
