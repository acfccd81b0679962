"""The school's rooms follow the people record (``schema/people.py``) on the running node.

The import (``parta node people import``) writes only the database, like the other admin
commands, while the node may be running; rooms need the node's signed events and its rooms
in memory, so the node does this part.  It compares what the record asks for with what the
rooms hold and sends the difference, as the school account (``store.SCHOOL_BOT_LOCALPART``):

* a space (``m.space``, client-server API "Spaces") holding every room below, to which
  everyone is invited;
* a staff room (staff), an announcements room (everyone is invited; only staff may post:
  ``events_default`` 50 and staff at 50);
* per class a class room (its teachers and pupils; teachers at 50) and a parents' room (the
  parents of its pupils and its teachers; teachers at 50).

The rooms are invite-only.  In the class, parents' and staff rooms a person is invited by
the school account and joined at once (a join of their own, made by their server); to the
two school-wide rooms people are only invited and accept in their client.  That is not
only politeness: the node's per-event work (push rules, federation fan-out) grows with a
room's joined members, so joining the whole school into one room costs the square of its
size, while invites leave the joined set small.  A person who is no longer wanted (left a
class, deactivated, class closed) is kicked.  People the record does not manage (added by
hand) are left alone.

It runs at start-up and whenever the import generation changes (checked every
``SWEEP_SECONDS``).  Each room's changes are built under the room's lock and written in
one batch, so a whole school costs a few thousand signed events written in multi-row
inserts rather than one transaction each.  A room is recorded the moment it exists, and
the generation counts as done only when every room is in order: after a crash or a failed
room the next run picks up where this one stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from twisted.internet import defer

from node.rooms.service import RoomService
from schema.accounts import users
from schema.people import (
    people_classes,
    people_enrollments,
    people_guardians,
    people_orgs,
    people_persons,
    people_school_rooms,
)

from . import store
from .oneroster import STAFF_ROLES

log = logging.getLogger("parta.people")

SWEEP_SECONDS = store.SWEEP_SECONDS
STAFF_LEVEL = 50
ROOM_CONCURRENCY = 8


@dataclass
class Wanted:
    """What the record asks for, read in one transaction."""

    generation: int = 0
    school_name: str = "School"
    people: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # sid: uid, role
    names: dict[str, str] = field(default_factory=dict)  # user ID -> display name
    classes: dict[str, tuple[str, bool, str | None, str | None]] = field(default_factory=dict)
    enrollments: list[tuple[str, str, str]] = field(default_factory=list)
    guardians: list[tuple[str, str]] = field(default_factory=list)
    school_rooms: dict[str, str] = field(default_factory=dict)


def read_wanted(conn: Connection) -> Wanted:
    w = Wanted(generation=store.generation(conn))
    for r in conn.execute(select(people_orgs.c.name).where(people_orgs.c.org_type == "school")):
        w.school_name = r.name
        break
    for r in conn.execute(select(people_persons)):
        w.people[r.sourced_id] = (r.user_id, r.role, r.status == "active")
    for r in conn.execute(
        select(users.c.user_id, users.c.displayname, users.c.deactivated).where(
            users.c.user_id.in_(select(people_persons.c.user_id))
        )
    ):
        w.names[r.user_id] = r.displayname or r.user_id
    for r in conn.execute(select(people_classes)):
        w.classes[r.sourced_id] = (
            r.title,
            r.status == "active",
            r.class_room_id,
            r.parents_room_id,
        )
    w.enrollments = [
        (r.class_sourced_id, r.person_sourced_id, r.role)
        for r in conn.execute(select(people_enrollments))
    ]
    w.guardians = [
        (r.parent_sourced_id, r.child_sourced_id) for r in conn.execute(select(people_guardians))
    ]
    for r in conn.execute(select(people_school_rooms)):
        if r.kind != store.GENERATION:
            w.school_rooms[r.kind] = r.room_id
    return w


@dataclass
class RoomWant:
    """One room's wanted members (user ID -> power level, 0 for none)."""

    members: dict[str, int]
    managed: set[str]  # user IDs the record manages (may be kicked)
    events_default: int | None = None  # set for the announcements room
    invite_only: bool = False  # members are invited and join themselves (school-wide rooms)


def wanted_rooms(w: Wanted) -> dict[str, RoomWant]:
    """Room ID -> wanted membership, for every room already made (pure)."""
    managed = {uid for uid, _role, _active in w.people.values()}
    live = {sid: (uid, role) for sid, (uid, role, active) in w.people.items() if active}
    everyone = {uid: (STAFF_LEVEL if role in STAFF_ROLES else 0) for uid, role in live.values()}
    rooms: dict[str, RoomWant] = {}
    if "space" in w.school_rooms:
        rooms[w.school_rooms["space"]] = RoomWant(
            {u: 0 for u in everyone}, managed, invite_only=True
        )
    if "announcements" in w.school_rooms:
        rooms[w.school_rooms["announcements"]] = RoomWant(
            dict(everyone), managed, events_default=STAFF_LEVEL, invite_only=True
        )
    if "staff" in w.school_rooms:
        rooms[w.school_rooms["staff"]] = RoomWant(
            {uid: 0 for uid, role in live.values() if role in STAFF_ROLES}, managed
        )
    parents_of: dict[str, list[str]] = {}
    for parent, child in w.guardians:
        parents_of.setdefault(child, []).append(parent)
    by_class: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for cls, sid, role in w.enrollments:
        info = w.classes.get(cls)
        if info is None or not info[1] or sid not in live:
            continue
        class_members, parent_members = by_class.setdefault(cls, ({}, {}))
        uid = live[sid][0]
        if role == "student":
            class_members[uid] = 0
            for parent in parents_of.get(sid, []):
                if parent in live:
                    parent_members[live[parent][0]] = 0
        else:
            class_members[uid] = STAFF_LEVEL
            parent_members[uid] = STAFF_LEVEL
    for cls, (_title, _active, class_room, parents_room) in w.classes.items():
        class_members, parent_members = by_class.get(cls, ({}, {}))
        if class_room:
            rooms[class_room] = RoomWant(class_members, managed)
        if parents_room:
            rooms[parents_room] = RoomWant(parent_members, managed)
    return rooms


class PeopleRoomSync:
    def __init__(self, db: Any, rooms: RoomService, server_name: str) -> None:
        self.db = db
        self.rooms = rooms
        self.server_name = server_name
        self.bot = f"@{store.SCHOOL_BOT_LOCALPART}:{server_name}"
        self.done_generation = 0
        self._running = False

    async def run_once(self) -> bool:
        """Bring the rooms in line with the record if it changed; True if it ran."""
        if self._running:
            return False
        self._running = True
        try:
            generation = await self.db.run(store.generation)
            if generation == 0 or generation == self.done_generation:
                return False
            await self.sync()
            return True
        finally:
            self._running = False

    async def sync(self) -> None:
        started = self.rooms.clock.time_ms()
        w = await self.db.run(read_wanted)
        await self._make_rooms(w)
        w = await self.db.run(read_wanted)  # with the room IDs just recorded
        failed = 0
        wanted = wanted_rooms(w)
        items = list(wanted.items())
        for i in range(0, len(items), ROOM_CONCURRENCY):
            batch = [
                defer.ensureDeferred(self._sync_room(room_id, want, w.names))
                for room_id, want in items[i : i + ROOM_CONCURRENCY]
            ]
            results = await defer.DeferredList(batch, consumeErrors=True)
            for (ok, result), (room_id, _want) in zip(
                results, items[i : i + ROOM_CONCURRENCY], strict=True
            ):
                if not ok:
                    failed += 1
                    log.warning(
                        "event=people_room_sync_failed room_id=%s error=%s", room_id, result
                    )
        if failed == 0:
            self.done_generation = w.generation
            log.info(
                "event=people_rooms_synced generation=%d rooms=%d ms=%d",
                w.generation,
                len(items),
                self.rooms.clock.time_ms() - started,
            )

    # --- rooms -------------------------------------------------------------------------------
    async def _create(
        self,
        name: str,
        *,
        space: str | None,
        room_type: str | None = None,
        events_default: int | None = None,
    ) -> str:
        body: dict[str, Any] = {"preset": "private_chat", "name": name}
        if room_type is not None:
            body["creation_content"] = {"type": room_type}
        if space is not None:
            body["initial_state"] = [
                {
                    "type": "m.space.parent",
                    "state_key": space,
                    "content": {"via": [self.server_name], "canonical": True},
                }
            ]
        if events_default is not None:
            body["power_level_content_override"] = {"events_default": events_default}
        room_id = await self.rooms.create_room(self.bot, body)
        if space is not None:
            await self.rooms.send_event(
                self.bot, space, "m.space.child", {"via": [self.server_name]}, room_id
            )
        return room_id

    async def _make_rooms(self, w: Wanted) -> None:
        space = w.school_rooms.get("space")
        if space is None:
            space = await self._create(w.school_name, space=None, room_type="m.space")
            await self.db.run(_record_school_room, "space", space)
        for kind, name, events_default in (
            ("staff", "Staff room", None),
            ("announcements", "Announcements", STAFF_LEVEL),
        ):
            if kind not in w.school_rooms:
                room_id = await self._create(name, space=space, events_default=events_default)
                await self.db.run(_record_school_room, kind, room_id)
        for cls, (title, active, class_room, parents_room) in sorted(w.classes.items()):
            if not active:
                continue
            if class_room is None:
                room_id = await self._create(title, space=space)
                await self.db.run(_record_class_room, cls, "class_room_id", room_id)
            if parents_room is None:
                room_id = await self._create(f"{title} \N{EM DASH} parents", space=space)
                await self.db.run(_record_class_room, cls, "parents_room_id", room_id)

    async def _sync_room(self, room_id: str, want: RoomWant, names: dict[str, str]) -> None:
        """Invite and join who is missing, kick who left, set the power levels: built under
        the room's lock, written as one batch."""
        room = await self.rooms.get_room(room_id)
        pending: list[defer.Deferred] = []
        persister = self.rooms.persister
        persister.hold()  # the room's events become one write, not one each
        try:
            await self._build_room(room, want, names, pending)
        finally:
            persister.release()
        for d in pending:
            await d

    async def _build_room(
        self, room: Any, want: RoomWant, names: dict[str, str], pending: list[defer.Deferred]
    ) -> None:
        async with room.lock:
            events = dict(room.members())
            current = {uid: ev.content.get("membership") for uid, ev in events.items()}
            for uid in sorted(want.members):
                state = current.get(uid)
                if state == "ban":  # a ban by the room's staff stands
                    continue
                if state == "join":
                    name = names.get(uid, uid)
                    if events[uid].content.get("displayname") != name:  # renamed in the file
                        content = {**events[uid].content, "displayname": name}
                        pending.append(self._commit(room, uid, uid, content))
                    continue
                if state != "invite":
                    content = {"membership": "invite", "displayname": names.get(uid, uid)}
                    pending.append(self._commit(room, self.bot, uid, content))
                if want.invite_only:
                    continue
                content = {"membership": "join", "displayname": names.get(uid, uid)}
                pending.append(self._commit(room, uid, uid, content))
            for uid, state in sorted(current.items()):
                if (
                    uid in want.managed
                    and uid not in want.members
                    and state
                    in (
                        "join",
                        "invite",
                        "knock",
                    )
                ):
                    pending.append(self._commit(room, self.bot, uid, {"membership": "leave"}))
            levels = self._levels(room, want)
            if levels is not None:
                ev = self.rooms.build_and_check(room, self.bot, "m.room.power_levels", levels, "")
                pending.append(self.rooms.commit_local(room, ev))

    def _commit(self, room: Any, sender: str, target: str, content: dict) -> Any:
        ev = self.rooms.build_and_check(room, sender, "m.room.member", content, target)
        return self.rooms.commit_local(room, ev)

    def _levels(self, room: Any, want: RoomWant) -> dict | None:
        """The room's power levels with the managed users' levels as wanted; None if they
        already are."""
        current = dict(room.content("m.room.power_levels"))
        users_now = dict(current.get("users") or {})
        new_users = {u: lvl for u, lvl in users_now.items() if u not in want.managed}
        new_users.update({u: lvl for u, lvl in want.members.items() if lvl > 0})
        changed = new_users != users_now
        if want.events_default is not None and current.get("events_default") != want.events_default:
            current["events_default"] = want.events_default
            changed = True
        if not changed:
            return None
        current["users"] = new_users
        return current


def _record_school_room(conn: Connection, kind: str, room_id: str) -> None:
    conn.execute(insert(people_school_rooms).values(kind=kind, room_id=room_id))


def _record_class_room(conn: Connection, cls: str, column: str, room_id: str) -> None:
    conn.execute(
        update(people_classes).where(people_classes.c.sourced_id == cls).values({column: room_id})
    )
