"""Memberships in rooms this server does not take part in: a remote invite, a rejected
invite, a knock.

Spec: server-server API "Inviting to a room" (the invitee's server learns of the room
only through the invite and its ``invite_room_state``), "Leaving Rooms (Rejecting
Invites)" ("Remote invites/knocks from other homeservers do not involve the server in
the graph"), client-server API "Stripped state" (what ``/sync`` shows in
``invite_state``/``knock_state``).

The membership event is stored through the rooms persister like any event (it gets a
stream ordering, a ``room_memberships`` row and wakes the user's ``/sync``), in a room
whose only known state is that event.  The room state the inviting server sent along is
kept in ``federation_remote_invites`` (stripped, client format) and served by
``stripped_state`` for such rooms.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import orjson
from sqlalchemy import delete, insert, select

from federation.errors import NotFound
from federation.events.model import Event
from node.rooms.client_format import strip_state_event
from node.rooms.event_meta import meta
from node.rooms.state_cache import RoomState
from schema.federation_membership import federation_remote_invites as t

log = logging.getLogger("parta.federation.membership")

CREATE = ("m.room.create", "")


def stripped(entry: Any) -> dict | None:
    """A client-format stripped state event from an ``invite_room_state`` entry (a PDU
    or already stripped); None for an entry that is neither."""
    if not isinstance(entry, dict):
        return None
    etype, skey, sender = entry.get("type"), entry.get("state_key"), entry.get("sender")
    content = entry.get("content")
    if not (
        isinstance(etype, str)
        and isinstance(skey, str)
        and isinstance(content, dict)
        and isinstance(sender, str)
    ):
        return None
    return {"type": etype, "state_key": skey, "content": content, "sender": sender}


def _save(conn: Any, row: dict) -> None:
    conn.execute(delete(t).where(t.c.event_id == row["event_id"]))
    conn.execute(insert(t).values(**row))


def _load(conn: Any, event_ids: Sequence[str]) -> dict[str, list]:
    return {
        r.event_id: orjson.loads(r.stripped_state)
        for r in conn.execute(
            select(t.c.event_id, t.c.stripped_state).where(t.c.event_id.in_(list(event_ids)))
        )
    }


def _latest_for(conn: Any, room_id: str, user_id: str) -> Any:
    return conn.execute(
        select(t)
        .where(t.c.room_id == room_id, t.c.user_id == user_id)
        .order_by(t.c.received_ts.desc())
        .limit(1)
    ).first()


async def remote_invite_for(db: Any, room_id: str, user_id: str) -> dict | None:
    """The latest out-of-band invite/knock row of ``user_id`` in ``room_id``."""
    row = await db.run(_latest_for, room_id, user_id)
    return dict(row._mapping) if row is not None else None


async def store_out_of_band(
    ms: Any,
    ev: Event,
    *,
    origin: str,
    stripped_state: Sequence[dict] = (),
    creator: str | None = None,
    record: bool = True,
) -> Event:
    """Persist ``ev`` (a membership event in a room we are not in) so ``/sync`` shows it."""
    rooms = ms.rooms
    if record:
        await ms.db.run(
            _save,
            {
                "event_id": ev.event_id,
                "room_id": ev.room_id,
                "user_id": ev.state_key,
                "membership": ev.content.get("membership", ""),
                "origin": origin,
                "room_version": ev.room_version.identifier,
                "stripped_state": orjson.dumps(list(stripped_state)).decode(),
                "received_ts": ms.clock.time_ms(),
            },
        )
    new_room = None
    try:
        room = await rooms.get_room(ev.room_id)
    except NotFound:
        room = rooms.loaded_room(ev.room_id)
        if room is None:
            room = RoomState(ev.room_id, ev.room_version, creator=creator or ev.sender)
            rooms.add_room(room)
            new_room = {
                "room_id": ev.room_id,
                "room_version": ev.room_version.identifier,
                "creator": creator or ev.sender,
                "is_public": False,
                "room_type": None,
                "created_ts": ms.clock.time_ms(),
            }
    async with room.lock:
        if room.state.get(ev.key) is not None and room.state[ev.key].event_id == ev.event_id:
            return room.state[ev.key]
        if new_room is not None:
            meta(ev).new_room = new_room
        d = rooms.commit_local(room, ev)
    try:
        await d
    except Exception:
        if new_room is not None:
            rooms.forget_room(ev.room_id)
        raise
    return ev


async def stripped_state_for(db: Any, room: Any, extra: Sequence[Event]) -> list[dict] | None:
    """``stripped_state`` of a room we only know through an out-of-band membership: the
    inviting server's room state plus ``extra``; None when nothing is stored."""
    if CREATE in room.state:
        return None
    ids = [e.event_id for e in extra]
    if not ids:
        return None
    found = await db.run(_load, ids)
    if not found:
        return None
    out: list[dict] = []
    for eid in ids:
        out.extend(found.get(eid, []))
    keys = {(s["type"], s["state_key"]) for s in out}
    out.extend(strip_state_event(e) for e in extra if (e.type, e.state_key) not in keys)
    return out
