"""People storage: plain ``fn(conn, ...)`` steps, run by the CLI on its own connection or by
the node through ``db.run``.

``apply_plan`` writes a whole import in the caller's one transaction (all or nothing):
accounts are inserted in one multi-row statement, without passwords (a person sets one
with a claim code, so no password hashing is on the import path), and the import
generation is bumped last so the running node's room sync (``room_sync.py``) notices it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Callable

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.engine import Connection, Row

from schema.accounts import users
from schema.people import (
    people_claim_codes,
    people_classes,
    people_enrollments,
    people_guardians,
    people_orgs,
    people_persons,
    people_school_rooms,
)

from ..accounts import store as accounts_store
from .oneroster import Klass, Org, Person
from .plan import Plan, State

# The account that creates and administers the school's rooms (no password: nobody logs in
# as it).  Its localpart starts with "_" like other service accounts.
SCHOOL_BOT_LOCALPART = "_parta_school"
GENERATION = "generation"
# How often the running node looks for a new import generation (room_sync.py).
SWEEP_SECONDS = 10.0
_CHUNK = 500


def random_localpart() -> str:
    """An opaque localpart: 80 random bits in lowercase base32 (no name, no sourcedId)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "p" + "".join(secrets.choice(alphabet) for _ in range(16))


def load_state(conn: Connection) -> State:
    state = State()
    for r in conn.execute(select(people_orgs)):
        state.orgs[r.sourced_id] = Org(r.sourced_id, r.name, r.org_type)
    for r in conn.execute(select(people_persons)):
        state.people[r.sourced_id] = Person(
            r.sourced_id, r.role, r.given_name, r.family_name, r.status == "active"
        )
    for r in conn.execute(select(people_classes)):
        state.classes[r.sourced_id] = Klass(
            r.sourced_id, r.title, r.org_sourced_id, r.status == "active"
        )
    for r in conn.execute(select(people_enrollments)):
        state.enrollments[(r.class_sourced_id, r.person_sourced_id)] = r.role
    for r in conn.execute(select(people_guardians)):
        state.guardians.add((r.parent_sourced_id, r.child_sourced_id))
    state.has_school_rooms = (
        conn.execute(
            select(people_school_rooms.c.kind).where(people_school_rooms.c.kind == GENERATION)
        ).first()
        is not None
    )
    return state


def user_ids(conn: Connection) -> dict[str, str]:
    """sourcedId -> user ID of every imported person."""
    return {
        r.sourced_id: r.user_id
        for r in conn.execute(select(people_persons.c.sourced_id, people_persons.c.user_id))
    }


def _chunks(rows: list[dict]) -> list[list[dict]]:
    return [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]


def ensure_school_bot(conn: Connection, server_name: str, now_ms: int) -> str:
    user_id = f"@{SCHOOL_BOT_LOCALPART}:{server_name}"
    if not accounts_store.user_exists(conn, user_id):
        accounts_store.insert_user(
            conn,
            user_id=user_id,
            localpart=SCHOOL_BOT_LOCALPART,
            role="office",
            displayname="School",
            password_hash=None,
            now_ms=now_ms,
        )
    return user_id


def apply_plan(
    conn: Connection,
    plan: Plan,
    *,
    server_name: str,
    now_ms: int,
    new_localpart: Callable[[], str] = random_localpart,
) -> dict[str, str]:
    """Write ``plan``; returns sourcedId -> user ID of the accounts it created."""
    ensure_school_bot(conn, server_name, now_ms)
    for org in plan.orgs_upsert:
        conn.execute(delete(people_orgs).where(people_orgs.c.sourced_id == org.sourced_id))
        conn.execute(
            insert(people_orgs).values(
                sourced_id=org.sourced_id, name=org.name, org_type=org.org_type
            )
        )

    created: dict[str, str] = {}
    user_rows: list[dict] = []
    person_rows: list[dict] = []
    for p in plan.create:
        localpart = new_localpart()
        user_id = f"@{localpart}:{server_name}"
        created[p.sourced_id] = user_id
        user_rows.append(
            {
                "user_id": user_id,
                "localpart": localpart,
                "role": p.role,
                "displayname": p.display_name,
                "avatar_url": None,
                "profile_fields": None,
                "password_hash": None,
                "created_ts": now_ms,
                "deactivated": False,
            }
        )
        person_rows.append(
            {
                "sourced_id": p.sourced_id,
                "user_id": user_id,
                "role": p.role,
                "given_name": p.given_name,
                "family_name": p.family_name,
                "status": "active",
            }
        )
    for chunk in _chunks(user_rows):
        conn.execute(insert(users), chunk)
    for chunk in _chunks(person_rows):
        conn.execute(insert(people_persons), chunk)

    ids = user_ids(conn)
    for u in plan.update:
        a = u.after
        conn.execute(
            update(people_persons)
            .where(people_persons.c.sourced_id == a.sourced_id)
            .values(role=a.role, given_name=a.given_name, family_name=a.family_name)
        )
        conn.execute(
            update(users)
            .where(users.c.user_id == ids[a.sourced_id])
            .values(role=a.role, displayname=a.display_name)
        )
    for p in plan.deactivate:
        user_id = ids[p.sourced_id]
        conn.execute(
            update(people_persons)
            .where(people_persons.c.sourced_id == p.sourced_id)
            .values(status="inactive")
        )
        accounts_store.deactivate_user(conn, user_id, erase=False)
        conn.execute(delete(people_claim_codes).where(people_claim_codes.c.user_id == user_id))

    if plan.classes_create:
        conn.execute(
            insert(people_classes),
            [
                {
                    "sourced_id": k.sourced_id,
                    "title": k.title,
                    "org_sourced_id": k.org_sourced_id,
                    "status": "active",
                    "class_room_id": None,
                    "parents_room_id": None,
                }
                for k in plan.classes_create
            ],
        )
    for k in plan.classes_update + plan.classes_close:
        conn.execute(
            update(people_classes)
            .where(people_classes.c.sourced_id == k.sourced_id)
            .values(
                title=k.title,
                org_sourced_id=k.org_sourced_id,
                status="active" if k.active else "inactive",
            )
        )

    gone = [(c, p) for c, p in plan.unenroll] + [(c, p) for c, p, _ in plan.enroll]
    for i in range(0, len(gone), _CHUNK):
        conn.execute(
            delete(people_enrollments).where(
                tuple_(
                    people_enrollments.c.class_sourced_id, people_enrollments.c.person_sourced_id
                ).in_(gone[i : i + _CHUNK])
            )
        )
    enroll_rows = [
        {"class_sourced_id": c, "person_sourced_id": p, "role": r} for c, p, r in plan.enroll
    ]
    for chunk in _chunks(enroll_rows):
        conn.execute(insert(people_enrollments), chunk)

    for parent, child in plan.guardians_remove:
        conn.execute(
            delete(people_guardians).where(
                people_guardians.c.parent_sourced_id == parent,
                people_guardians.c.child_sourced_id == child,
            )
        )
    guardian_rows = [{"parent_sourced_id": p, "child_sourced_id": c} for p, c in plan.guardians_add]
    for chunk in _chunks(guardian_rows):
        conn.execute(insert(people_guardians), chunk)

    bump_generation(conn)
    return created


def generation(conn: Connection) -> int:
    row = conn.execute(
        select(people_school_rooms.c.room_id).where(people_school_rooms.c.kind == GENERATION)
    ).first()
    return int(row.room_id) if row else 0


def bump_generation(conn: Connection) -> int:
    current = generation(conn)
    conn.execute(delete(people_school_rooms).where(people_school_rooms.c.kind == GENERATION))
    conn.execute(insert(people_school_rooms).values(kind=GENERATION, room_id=str(current + 1)))
    return current + 1


# --- claim codes -----------------------------------------------------------------------------
def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def set_claim_codes(conn: Connection, codes: dict[str, str], now_ms: int) -> None:
    """user ID -> new code (plain): replaces each user's previous code."""
    ids = list(codes)
    for i in range(0, len(ids), _CHUNK):
        conn.execute(
            delete(people_claim_codes).where(people_claim_codes.c.user_id.in_(ids[i : i + _CHUNK]))
        )
    rows = [
        {"code_hash": hash_code(code), "user_id": uid, "created_ts": now_ms}
        for uid, code in codes.items()
    ]
    for chunk in _chunks(rows):
        conn.execute(insert(people_claim_codes), chunk)


def take_claim_code(conn: Connection, code: str) -> str | None:
    """The user a live code belongs to, deleting it (a code works once); None if unknown."""
    digest = hash_code(code)
    row = conn.execute(
        select(people_claim_codes.c.user_id).where(people_claim_codes.c.code_hash == digest)
    ).first()
    if row is None:
        return None
    conn.execute(delete(people_claim_codes).where(people_claim_codes.c.code_hash == digest))
    return str(row.user_id)


def class_claimants(conn: Connection, class_sourced_id: str) -> list[dict] | None:
    """The active pupils of a class and their active parents, for a printable code list;
    None if there is no such class."""
    klass = conn.execute(
        select(people_classes.c.title).where(people_classes.c.sourced_id == class_sourced_id)
    ).first()
    if klass is None:
        return None
    pupils = [
        r.person_sourced_id
        for r in conn.execute(
            select(people_enrollments.c.person_sourced_id).where(
                people_enrollments.c.class_sourced_id == class_sourced_id,
                people_enrollments.c.role == "student",
            )
        )
    ]
    parents: dict[str, list[str]] = {}
    for r in conn.execute(
        select(people_guardians).where(people_guardians.c.child_sourced_id.in_(pupils))
    ):
        parents.setdefault(r.child_sourced_id, []).append(r.parent_sourced_id)
    wanted = set(pupils) | {p for ps in parents.values() for p in ps}
    persons = {
        r.sourced_id: r
        for r in conn.execute(
            select(people_persons).where(
                people_persons.c.sourced_id.in_(wanted), people_persons.c.status == "active"
            )
        )
    }
    out: list[dict] = []
    for pupil in sorted(pupils, key=lambda s: _sort_name(persons.get(s))):
        if pupil not in persons:
            continue
        out.append(_claimant(persons[pupil], None))
        for parent in sorted(parents.get(pupil, [])):
            if parent in persons:
                out.append(_claimant(persons[parent], persons[pupil]))
    return out


def _sort_name(row: Row[Any] | None) -> tuple[str, str]:
    return ("", "") if row is None else (row.family_name, row.given_name)


def _claimant(row: Row[Any], child: Row[Any] | None) -> dict:
    return {
        "sourced_id": row.sourced_id,
        "user_id": row.user_id,
        "role": row.role,
        "name": f"{row.given_name} {row.family_name}".strip(),
        "child": None if child is None else f"{child.given_name} {child.family_name}".strip(),
    }
