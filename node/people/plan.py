"""The import planner: (what the node holds, what the export says) -> the changes.

Pure: no I/O, no clock.  The plan is what ``--dry-run`` prints and what ``apply`` writes,
so the two never disagree.  Re-running the same export gives an empty plan: every list
compares the export with the node's record by sourcedId.

Rooms follow from the record (``room_sync.py`` on the running node): a new class means a
class room and a parents' room; enrollments and guardianships decide who is in them.  The
plan lists those consequences too so school IT sees them before anything happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .oneroster import STAFF_ROLES, Klass, Org, Person, Roster


@dataclass(frozen=True)
class PersonUpdate:
    sourced_id: str
    before: Person
    after: Person

    def describe(self) -> str:
        changes = []
        if self.before.role != self.after.role:
            changes.append(f"role {self.before.role} -> {self.after.role}")
        if self.before.display_name != self.after.display_name:
            changes.append(f"name {self.before.display_name!r} -> {self.after.display_name!r}")
        return f"{self.sourced_id}: {', '.join(changes)}"


@dataclass
class State:
    """The node's record (people tables), in the planner's terms."""

    orgs: dict[str, Org] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    classes: dict[str, Klass] = field(default_factory=dict)
    enrollments: dict[tuple[str, str], str] = field(default_factory=dict)
    guardians: set[tuple[str, str]] = field(default_factory=set)
    has_school_rooms: bool = False


@dataclass
class Plan:
    orgs_upsert: list[Org] = field(default_factory=list)
    create: list[Person] = field(default_factory=list)
    update: list[PersonUpdate] = field(default_factory=list)
    deactivate: list[Person] = field(default_factory=list)
    kept_deactivated: list[Person] = field(default_factory=list)  # back in the file: no
    classes_create: list[Klass] = field(default_factory=list)
    classes_update: list[Klass] = field(default_factory=list)
    classes_close: list[Klass] = field(default_factory=list)
    enroll: list[tuple[str, str, str]] = field(default_factory=list)  # class, person, role
    unenroll: list[tuple[str, str]] = field(default_factory=list)
    guardians_add: list[tuple[str, str]] = field(default_factory=list)
    guardians_remove: list[tuple[str, str]] = field(default_factory=list)
    school_rooms_create: list[str] = field(default_factory=list)

    @property
    def rooms_to_create(self) -> list[str]:
        rooms = [f"school {kind}" for kind in self.school_rooms_create]
        for k in self.classes_create:
            rooms += [f"class room {k.title!r}", f"parents' room {k.title!r}"]
        return rooms

    def is_empty(self) -> bool:
        return not any(
            (
                self.orgs_upsert,
                self.create,
                self.update,
                self.deactivate,
                self.classes_create,
                self.classes_update,
                self.classes_close,
                self.enroll,
                self.unenroll,
                self.guardians_add,
                self.guardians_remove,
                self.school_rooms_create,
            )
        )


SCHOOL_ROOMS = ("space", "staff", "announcements")


def make_plan(state: State, roster: Roster) -> Plan:
    plan = Plan()
    for sid, org in sorted(roster.orgs.items()):
        if state.orgs.get(sid) != org:
            plan.orgs_upsert.append(org)

    for sid, person in sorted(roster.people.items()):
        known = state.people.get(sid)
        if known is None:
            if person.active:
                plan.create.append(person)
        elif not known.active:
            if person.active:
                plan.kept_deactivated.append(person)
        elif not person.active:
            plan.deactivate.append(known)
        elif (known.role, known.given_name, known.family_name) != (
            person.role,
            person.given_name,
            person.family_name,
        ):
            plan.update.append(PersonUpdate(sid, known, person))
    for sid, known in sorted(state.people.items()):
        if known.active and sid not in roster.people:
            plan.deactivate.append(known)

    for sid, klass in sorted(roster.classes.items()):
        known_class = state.classes.get(sid)
        if known_class is None:
            if klass.active:
                plan.classes_create.append(klass)
        elif known_class.active and not klass.active:
            plan.classes_close.append(klass)
        elif known_class != klass:
            plan.classes_update.append(klass)
    for sid, known_class in sorted(state.classes.items()):
        if known_class.active and sid not in roster.classes:
            plan.classes_close.append(
                Klass(sid, known_class.title, known_class.org_sourced_id, False)
            )

    live = _live_people(state, roster)
    live_classes = {sid for sid, k in roster.classes.items() if k.active}
    wanted = {
        key: role
        for key, role in roster.enrollments.items()
        if key[0] in live_classes and key[1] in live
    }
    for key, role in sorted(wanted.items()):
        if state.enrollments.get(key) != role:
            plan.enroll.append((key[0], key[1], role))
    plan.unenroll = sorted(k for k in state.enrollments if k not in wanted)

    wanted_guardians = {g for g in roster.guardians if g[0] in live and g[1] in live}
    plan.guardians_add = sorted(wanted_guardians - state.guardians)
    plan.guardians_remove = sorted(state.guardians - wanted_guardians)

    if not state.has_school_rooms and (live or state.people):
        plan.school_rooms_create = list(SCHOOL_ROOMS)
    return plan


def _live_people(state: State, roster: Roster) -> set[str]:
    """Who has a usable account after the plan: active in the file and not deactivated on
    the node before (a deactivated account is never reopened)."""
    live = set()
    for sid, person in roster.people.items():
        known = state.people.get(sid)
        if person.active and (known is None or known.active):
            live.add(sid)
    return live


def is_staff(role: str) -> bool:
    return role in STAFF_ROLES


def summary(plan: Plan, first: int = 10) -> str:
    """A readable account of the plan: counts and the first ``first`` items of each kind."""
    if plan.is_empty():
        return "Nothing to change: the node already matches the export.\n"
    parts: list[str] = []

    def section(title: str, items: list[str]) -> None:
        if not items:
            return
        parts.append(f"{title}: {len(items)}")
        parts.extend(f"  {item}" for item in items[:first])
        if len(items) > first:
            parts.append(f"  ... and {len(items) - first} more")

    section(
        "Accounts to create", [f"{p.sourced_id} {p.role} {p.display_name!r}" for p in plan.create]
    )
    section("Accounts to update", [u.describe() for u in plan.update])
    section(
        "Accounts to deactivate",
        [f"{p.sourced_id} {p.role} {p.display_name!r}" for p in plan.deactivate],
    )
    section(
        "Deactivated accounts that stay deactivated",
        [f"{p.sourced_id} {p.display_name!r}" for p in plan.kept_deactivated],
    )
    section("Organisations to record", [f"{o.sourced_id} {o.name!r}" for o in plan.orgs_upsert])
    section("Rooms to create", plan.rooms_to_create)
    section("Classes to rename", [f"{k.sourced_id} -> {k.title!r}" for k in plan.classes_update])
    section(
        "Classes to close (rooms emptied)",
        [f"{k.sourced_id} {k.title!r}" for k in plan.classes_close],
    )
    section(
        "Memberships to add (class enrollments)", [f"{p} -> {c} as {r}" for c, p, r in plan.enroll]
    )
    section("Memberships to remove (left a class)", [f"{p} leaves {c}" for c, p in plan.unenroll])
    section("Parent links to add", [f"{p} parent of {c}" for p, c in plan.guardians_add])
    section(
        "Parent links to remove", [f"{p} no longer parent of {c}" for p, c in plan.guardians_remove]
    )
    return "\n".join(parts) + "\n"
