"""City-wide verified roles: the node's side of role attestations (docs/people.md).

A school's staff (directors, deputies, teachers; never pupils or parents) carry a role
attestation signed with the node's server key (``federation.attestations``), shown as the
profile field ``org.parta.role``:

* local users: the node signs one on first demand and keeps it in memory, signing a new one
  once half of its lifetime (``LIFETIME_MS``) has passed, when the role or display name
  changed, or when the server key rotated -- so a role set with ``parta node user add
  --role`` or changed later is attested from the next request on, and nothing is stored;
* remote users: the attestation their server returns in the federation profile query is
  verified against the keys the city roster pins for that school before it is shown, and the
  verdict cached until the attestation expires (at most ``VERDICT_TTL_MS``).

What a client sees is never the bare signed document but a view with ``"verified"``: ``true``
with the role, school ID and school name from the roster; or ``false`` with the refusal's
``reason`` (tampered, expired, foreign-signed, unknown school) and nothing the claim says,
so an unverifiable role is never displayed as a role.

The roster and the server key live in the federation area (above accounts), which hands
them over once with ``attach``; until then (a node outside a city, unit tests) nobody is
attested and the field is absent.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Callable, Mapping, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection

from federation.attestations import (
    MAX_BYTES,
    STAFF_ROLES,
    AttestationError,
    RosterLookup,
    sign_attestation,
    verify_attestation,
)
from federation.keys import SigningKey
from schema.accounts import users

ROLE_FIELD = "org.parta.role"
# A teacher who sets this profile field to true is listed in the city staff directory;
# directors and deputies always are.
DIRECTORY_OPT_IN_FIELD = "org.parta.city_directory"
ALWAYS_LISTED = ("director", "deputy")
LIFETIME_MS = 7 * 24 * 3600 * 1000
VERDICT_TTL_MS = 3600 * 1000
VERDICT_CACHE_SIZE = 10_000
FETCH_TTL_MS = 5 * 60 * 1000  # how long a remote user's attestation (or its absence) is kept
MAX_STAFF = 1_000  # staff one node announces to the city directory


class RemoteRoleSource(Protocol):
    """Asks a remote user's server for their ``org.parta.role`` profile field (federation
    profile query); implemented by the federation area."""

    async def fetch(self, user_id: str) -> object | None:
        """The field's value as the server sent it; None when it has none or is unreachable."""
        ...


def staff_rows(conn: Connection, limit: int) -> list[dict]:
    """Active staff accounts: user ID, role, display name, directory opt-in."""
    rows = conn.execute(
        select(users.c.user_id, users.c.role, users.c.displayname, users.c.profile_fields)
        .where(users.c.role.in_(STAFF_ROLES))
        .where(users.c.deactivated.is_(False))
        .order_by(users.c.user_id)
        .limit(limit)
    ).all()
    out = []
    for r in rows:
        try:
            extra = json.loads(r.profile_fields) if r.profile_fields else {}
        except ValueError:
            extra = {}
        opt_in = isinstance(extra, dict) and extra.get(DIRECTORY_OPT_IN_FIELD) is True
        out.append(
            {"user_id": r.user_id, "role": r.role, "displayname": r.displayname, "opt_in": opt_in}
        )
    return out


def staff_row(conn: Connection, user_id: str) -> dict | None:
    r = conn.execute(
        select(users.c.role, users.c.displayname, users.c.deactivated).where(
            users.c.user_id == user_id
        )
    ).first()
    if r is None or r.deactivated or r.role not in STAFF_ROLES:
        return None
    return {"user_id": user_id, "role": r.role, "displayname": r.displayname}


def view(att_doc: object, roster: RosterLookup | None, now_ms: int) -> dict:
    """What a client is shown for a signed attestation (see module docstring)."""
    if roster is None:
        return {"verified": False, "reason": "unknown_school"}
    try:
        att = verify_attestation(att_doc, roster, now_ms)
    except AttestationError as exc:
        return {"verified": False, "reason": exc.reason}
    out: dict[str, Any] = {
        "verified": True,
        "role": att.role,
        "school": att.school,
        "school_name": att.school_name,
        "server_name": att.server_name,
        "expiry_ts": att.expiry_ts,
        "attestation": dict(att.doc),
    }
    if att.displayname:
        out["displayname"] = att.displayname
    return out


class RoleAttestations:
    """Issues the local staff's attestations and verifies remote ones (module docstring)."""

    def __init__(self, db: Any, clock: Any, server_name: str) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self._roster: Callable[[], RosterLookup | None] = lambda: None
        self._key: Callable[[], SigningKey] | None = None
        self._issued: dict[str, dict] = {}  # user ID -> signed attestation
        self._verdicts: OrderedDict[str, tuple[int, dict]] = OrderedDict()
        self._remote: RemoteRoleSource | None = None
        self._fetched: OrderedDict[str, tuple[int, object | None]] = OrderedDict()

    def attach(
        self,
        roster: Callable[[], RosterLookup | None],
        signing_key: Callable[[], SigningKey],
        remote: RemoteRoleSource | None = None,
    ) -> None:
        """Called once by the federation's wiring: the city roster, the server key and the
        way to ask other servers."""
        self._roster = roster
        self._key = signing_key
        self._remote = remote

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def roster(self) -> RosterLookup | None:
        return self._roster()

    # --- local staff ---------------------------------------------------------------------
    def _school_id(self) -> str | None:
        roster = self._roster()
        entry = roster.entry(self.server_name) if roster is not None else None
        return entry.school_id if entry is not None else None

    def _sign(self, row: Mapping[str, Any]) -> dict | None:
        """The current attestation for a staff row, signing a new one when needed."""
        school = self._school_id()
        if school is None or self._key is None:
            return None
        key = self._key()
        now = self.clock.time_ms()
        uid = row["user_id"]
        name = row.get("displayname") or None
        have = self._issued.get(uid)
        if (
            have is not None
            and have["role"] == row["role"]
            and have.get("displayname") == (name[:255] if name else None)
            and have["school"] == school
            and key.key_id in have["signatures"][self.server_name]
            and now < have["issued_ts"] + LIFETIME_MS // 2
        ):
            return have
        doc = sign_attestation(
            user_id=uid,
            role=row["role"],
            server_name=self.server_name,
            school=school,
            key=key,
            issued_ts=now,
            lifetime_ms=LIFETIME_MS,
            displayname=name,
        )
        self._issued[uid] = doc
        return doc

    async def local(self, user_id: str) -> dict | None:
        """The signed attestation of a local staff member, None for anyone else."""
        if not self.enabled or user_id.partition(":")[2] != self.server_name:
            return None
        row = await self.db.run(staff_row, user_id)
        if row is None:
            self._issued.pop(user_id, None)
            return None
        return self._sign(row)

    async def directory(self) -> list[dict]:
        """Attestations for the city staff directory: directors and deputies, and teachers
        who opted in (``DIRECTORY_OPT_IN_FIELD``)."""
        if not self.enabled:
            return []
        out = []
        for row in await self.db.run(staff_rows, MAX_STAFF):
            if row["role"] in ALWAYS_LISTED or row["opt_in"]:
                doc = self._sign(row)
                if doc is not None:
                    out.append(doc)
        return out

    # --- what clients see ----------------------------------------------------------------
    async def local_view(self, user_id: str) -> dict | None:
        doc = await self.local(user_id)
        if doc is None:
            return None
        return view(doc, self._roster(), self.clock.time_ms())

    def remote_view(self, user_id: str, doc: object) -> dict:
        """The verdict on a remote user's attestation, cached by its signed content."""
        now = self.clock.time_ms()
        try:
            cache_key = user_id + "\n" + json.dumps(doc, sort_keys=True)
        except (TypeError, ValueError):
            return {"verified": False, "reason": "malformed"}
        if len(cache_key) > 2 * MAX_BYTES:  # never keep a large document in the cache
            return {"verified": False, "reason": "malformed"}
        hit = self._verdicts.get(cache_key)
        if hit is not None and now < hit[0]:
            return hit[1]
        shown = view(doc, self._roster(), now)
        if shown["verified"] and shown.get("attestation", {}).get("user_id") != user_id:
            shown = {"verified": False, "reason": "foreign"}  # someone else's attestation
        until = now + VERDICT_TTL_MS
        if shown["verified"]:
            until = min(until, shown["expiry_ts"])
        self._verdicts[cache_key] = (until, shown)
        self._verdicts.move_to_end(cache_key)
        while len(self._verdicts) > VERDICT_CACHE_SIZE:
            self._verdicts.popitem(last=False)
        return shown

    async def remote_field(self, user_id: str) -> dict | None:
        """The shown ``org.parta.role`` of a remote user (None: they have none), asking
        their server at most once per ``FETCH_TTL_MS``."""
        if self._remote is None:
            return None
        now = self.clock.time_ms()
        hit = self._fetched.get(user_id)
        if hit is not None and now < hit[0]:
            doc = hit[1]
        else:
            doc = await self._remote.fetch(user_id)
            self._fetched[user_id] = (now + FETCH_TTL_MS, doc)
            self._fetched.move_to_end(user_id)
            while len(self._fetched) > VERDICT_CACHE_SIZE:
                self._fetched.popitem(last=False)
        if doc is None:
            return None
        return self.remote_view(user_id, doc)
