"""Shared pieces of the membership handshakes (resident and joining/leaving server side).

Spec: server-server API "Joining Rooms", "Leaving Rooms (Rejecting Invites)", "Knocking
upon a room", "Inviting to a room":

* ``room_for_resident``: the room must be one this server takes part in (a local member
  is joined), else 404 -- we cannot help anyone into a room we are not in;
* ``template``: the ``make_*`` answer, an unsigned event built on our current state and
  checked against the auth rules (403 when the membership would not be allowed);
* ``check_template``: the checks the joining/leaving/knocking server MUST make on a
  ``make_*`` answer ("room_id ... sender and state_key ... type ... membership");
* ``sign_template``: the leaving/knocking server's event built and signed from that answer;
* ``check_submitted``: the checks on a ``send_*`` / ``invite`` body (signature check, the
  event ID, type, membership, sender on the origin server, state_key == sender);
* ``auth_chain_pdus``: every event in the auth chains of some events.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from federation.errors import Forbidden, InvalidParam, MatrixError, NotFound
from federation.events.builder import build_event
from federation.events.checks import check_received_event
from federation.events.model import Event
from federation.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from federation.signing import SignatureError

MEMBER = "m.room.member"
SUPPORTED_VERSIONS = sorted(KNOWN_ROOM_VERSIONS, key=int)


def domain_of(user_id: str) -> str:
    return user_id.partition(":")[2] if isinstance(user_id, str) else ""


def require_user_on(user_id: str, server: str, what: str = "user") -> None:
    if not isinstance(user_id, str) or not user_id.startswith("@") or domain_of(user_id) != server:
        raise Forbidden(f"The {what} {user_id!r} does not belong to the requesting server {server}")


def incompatible_version(rv_id: str) -> MatrixError:
    return MatrixError(
        f"Your homeserver does not support the features required to "
        f"interact with this room (room version {rv_id})",
        errcode="M_INCOMPATIBLE_ROOM_VERSION",
        http_status=400,
        room_version=rv_id,
    )


def local_members_joined(room: Any, server_name: str) -> bool:
    return any(domain_of(u) == server_name for u in room.joined)


async def room_for_resident(rooms: Any, room_id: str) -> Any:
    """The room, when this server is resident in it (404 otherwise)."""
    try:
        room = await rooms.get_room(room_id)
    except NotFound:
        raise NotFound(f"Unknown room {room_id}") from None
    if ("m.room.create", "") not in room.state or not local_members_joined(room, rooms.server_name):
        raise NotFound(f"This server is not in room {room_id}")
    return room


def template(
    rooms: Any, room: Any, user_id: str, membership: str, content: Mapping[str, Any] | None = None
) -> dict:
    """An unsigned ``m.room.member`` template for ``user_id`` on top of our state."""
    body = {"membership": membership, **(content or {})}
    ev = rooms.build_and_check(room, user_id, MEMBER, body, state_key=user_id)
    pdu = {k: v for k, v in ev.pdu.items() if k not in ("hashes", "signatures", "unsigned")}
    pdu["origin"] = rooms.server_name
    return {"room_version": room.room_version.identifier, "event": pdu}


def check_template(resp: Any, room_id: str, user_id: str, membership: str) -> dict:
    """The event template of a ``make_*`` response after the mandatory checks."""
    if not isinstance(resp, dict) or not isinstance(resp.get("event"), dict):
        raise InvalidParam("make_* response has no event template")
    ev = resp["event"]
    content = ev.get("content")
    if (
        ev.get("room_id") != room_id
        or ev.get("sender") != user_id
        or ev.get("state_key") != user_id
        or ev.get("type") != MEMBER
        or not isinstance(content, dict)
        or content.get("membership") != membership
    ):
        raise InvalidParam(
            "make_* response does not match the request (room_id, sender, "
            "state_key, type or membership)"
        )
    for key in ("prev_events", "auth_events"):
        if not isinstance(ev.get(key), list):
            raise InvalidParam(f"make_* template has no {key}")
    depth = ev.get("depth")
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise InvalidParam("make_* template has no depth")
    return ev


def sign_template(
    ms: Any, server: str, resp: Any, room_id: str, user_id: str, membership: str, reason: str | None
) -> Event:
    """Our signed ``membership`` event for ``user_id`` from ``server``'s ``make_*`` answer
    ``resp`` (its room version and checked template; ``reason`` added to the content).
    400 ``M_UNSUPPORTED_ROOM_VERSION`` for a version we do not know, 502 for a template
    that fails ``check_template``."""
    rv = KNOWN_ROOM_VERSIONS.get(resp.get("room_version", "1"))
    if rv is None:
        raise MatrixError(
            "Unsupported room version", errcode="M_UNSUPPORTED_ROOM_VERSION", http_status=400
        )
    try:
        tmpl = check_template(resp, room_id, user_id, membership)
    except MatrixError as exc:
        raise MatrixError(
            f"{server}: {exc.message}", errcode="M_UNKNOWN", http_status=502
        ) from None
    content = dict(tmpl["content"])
    if reason:
        content["reason"] = reason
    return build_event(
        rv,
        server_name=ms.server_name,
        signing_key=ms.signing_key,
        type=MEMBER,
        sender=user_id,
        content=content,
        room_id=room_id,
        prev_events=list(tmpl["prev_events"]),
        auth_events=list(tmpl["auth_events"]),
        depth=tmpl["depth"],
        origin_server_ts=ms.clock.time_ms(),
        state_key=user_id,
    )


async def verify_pdu(keyring: Any, pdu: Any, rv: RoomVersion) -> Event:
    """Format and signature checks of a PDU received outside a transaction (400 on
    failure); a content hash mismatch is refused too (we would sign or persist it)."""
    if not isinstance(pdu, dict):
        raise InvalidParam("The event must be a JSON object")
    try:
        if keyring is not None:
            await keyring.ensure_event_keys([pdu])
            lookup = keyring.event_key_lookup(pdu)
        else:  # pragma: no cover - wiring always has one
            lookup = lambda server, key_id: None  # noqa: E731 - same variable as the keyring's
        ev = check_received_event(pdu, rv, lookup)
    except SignatureError as exc:
        raise InvalidParam(f"The event fails the signature check: {exc.message}") from None
    except MatrixError as exc:
        raise InvalidParam(f"The event is not valid: {exc.message}") from None
    if ev.content_hash_mismatch:
        raise InvalidParam("The event's content hash does not match")
    return ev


async def check_submitted(
    keyring: Any,
    pdu: Any,
    rv: RoomVersion,
    *,
    origin: str,
    room_id: str,
    event_id: str,
    membership: str,
    state_key_is_sender: bool = True,
) -> Event:
    ev = await verify_pdu(keyring, pdu, rv)
    if ev.event_id != event_id:
        raise InvalidParam(f"The event ID {ev.event_id} does not match the path ({event_id})")
    if ev.room_id != room_id:
        raise InvalidParam("The event is for another room")
    if ev.type != MEMBER or ev.content.get("membership") != membership:
        raise InvalidParam(f"The event is not an m.room.member {membership} event")
    if domain_of(ev.sender) != origin:
        raise InvalidParam("The event's sender is not a user of the origin server")
    if state_key_is_sender and ev.state_key != ev.sender:
        raise InvalidParam("The event's state_key is not its sender")
    return ev


async def auth_chain_pdus(rooms: Any, event_ids: Iterable[str]) -> list[dict]:
    """Every event in the auth chains of ``event_ids`` (not the events themselves unless
    reachable), as PDUs, oldest depth first."""
    seen: dict[str, Event] = {}
    frontier = set()
    start = await rooms.get_events(list(set(event_ids)))
    for ev in start.values():
        frontier.update(ev.auth_event_ids)
    while frontier:
        ids = [i for i in frontier if i not in seen]
        frontier = set()
        if not ids:
            break
        found = await rooms.get_events(ids)
        for eid, ev in found.items():
            seen[eid] = ev
            frontier.update(a for a in ev.auth_event_ids if a not in seen)
    return [dict(e.pdu) for e in sorted(seen.values(), key=lambda e: (e.depth, e.event_id))]


def servers_in_room(room: Any) -> list[str]:
    return sorted({domain_of(u) for u in room.joined})
