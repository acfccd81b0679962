"""``POST /createRoom`` carried out: plan -> signed, auth-checked events -> one batch.

Spec: client-server API ``create_room.yaml`` ("The server MUST apply the normal state
resolution rules when creating the new room, including checking power levels for each
event"; errors ``M_ROOM_IN_USE``, ``M_INVALID_ROOM_STATE``, ``M_UNSUPPORTED_ROOM_VERSION``).

All initial events are built and checked against the growing in-memory state before
anything is written, so a request that would produce an invalid room leaves no trace.
Then the alias is claimed and the events are queued with the persister together (they
usually land in one transaction).
"""

from __future__ import annotations

import logging
import secrets
import string

from federation.auth.errors import AuthError
from federation.auth.rules import check_auth
from federation.errors import MatrixError, NotFound
from federation.events.builder import build_create_event
from federation.events.model import Event

from . import store
from .creation import invalid_room_state, plan_create_room
from .event_meta import meta
from .state_cache import RoomState

_ROOM_ID_ALPHABET = string.ascii_letters

log = logging.getLogger("parta.rooms")


async def member_profile(service, user_id: str) -> dict:
    """displayname/avatar_url for a member event (client-server API ``m.room.member``)."""
    accounts = service.accounts
    if accounts is None or user_id.partition(":")[2] != service.server_name:
        return {}
    try:
        profile = await accounts.get_profile(user_id)
    except MatrixError:
        return {}
    out = {}
    for key in ("displayname", "avatar_url"):
        value = (profile or {}).get(key)
        if isinstance(value, str):
            out[key] = value
    return out


async def check_local_user(service, user_id: str) -> bool:
    """False for a user ID on this server that has no account."""
    if service.accounts is None or user_id.partition(":")[2] != service.server_name:
        return True
    return bool(await service.accounts.user_exists(user_id))


async def create_room(service, user_id: str, body: dict) -> str:
    plan = plan_create_room(
        body,
        creator=user_id,
        server_name=service.server_name,
        default_version=service.default_room_version,
    )
    rv = plan.room_version
    for invitee in plan.invites:
        if not await check_local_user(service, invitee):
            raise MatrixError(
                f"Cannot invite {invitee}: no such user", errcode="M_INVALID_PARAM", http_status=400
            )
    local_invites, remote_invites = split_invites(service, plan.invites)
    for invitee in remote_invites:
        service.hooks.membership.check_invitable(invitee)  # e.g. 403: not in the roster
    profiles = {u: await member_profile(service, u) for u in [user_id, *local_invites]}

    now = service.clock.time_ms()
    room_id = None
    if not rv.event_format.room_id_is_create_event_hash:
        opaque = "".join(secrets.choice(_ROOM_ID_ALPHABET) for _ in range(18))
        room_id = f"!{opaque}:{service.server_name}"
    create = build_create_event(
        rv,
        server_name=service.server_name,
        signing_key=service.signing_key,
        creator=user_id,
        content=plan.create_content,
        origin_server_ts=now,
        room_id=room_id,
    )
    check_auth(create, {})
    room = RoomState(
        create.room_id,
        rv,
        creator=user_id,
        is_public=plan.visibility == "public",
        room_type=plan.room_type,
    )
    service.apply_local(room, create)
    built: list[Event] = [create]

    def add(etype: str, state_key: str | None, content: dict) -> None:
        try:
            ev = service.build_and_check(room, user_id, etype, content, state_key)
        except AuthError as exc:
            raise invalid_room_state(
                f"Cannot send {etype} while creating the room: {exc.message}"
            ) from None
        service.apply_local(room, ev)
        built.append(ev)

    # 2. the creator joins
    add("m.room.member", user_id, {"membership": "join", **profiles[user_id]})
    # 3.-7. power levels, canonical alias, preset, initial_state, name, topic
    for pe in plan.events:
        add(pe.type, pe.state_key, pe.content)
    # 8. invites (users of other servers: after the room exists, see invite_remote_users)
    for invitee in local_invites:
        content = {"membership": "invite", **profiles[invitee]}
        if plan.is_direct:
            content["is_direct"] = True
        add("m.room.member", invitee, content)

    if plan.alias is not None:
        claimed = await service.db.run(store.create_alias, plan.alias, room.room_id, user_id, now)
        if not claimed:
            raise MatrixError("Room alias already taken", errcode="M_ROOM_IN_USE", http_status=400)

    meta(create).new_room = {
        "room_id": room.room_id,
        "room_version": rv.identifier,
        "creator": user_id,
        "is_public": plan.visibility == "public",
        "room_type": plan.room_type,
        "created_ts": now,
    }
    service.add_room(room)
    pending = [service.enqueue_applied(ev) for ev in built]
    try:
        for d in pending:
            await d
    except Exception:
        if plan.alias is not None:
            await service.db.run(store.delete_alias, plan.alias)
        raise
    await invite_remote_users(service, user_id, room.room_id, remote_invites, plan.is_direct)
    return room.room_id


def split_invites(service, invites: list[str]) -> tuple[list[str], list[str]]:
    """(users of this server, users of other servers) among createRoom's ``invite``.

    An invite of another server's user must be signed by that server before the room
    sees it (server-server API "Inviting to a room"), so it cannot join the creation
    batch; without federation every invite is built locally, as before."""
    if service.hooks.membership is None:
        return list(invites), []
    local = [u for u in invites if u.partition(":")[2] == service.server_name]
    return local, [u for u in invites if u.partition(":")[2] != service.server_name]


async def invite_remote_users(
    service, sender: str, room_id: str, invitees: list[str], is_direct: bool
) -> None:
    """Step 8 for users of other servers, through the federation invite handshake.

    Every invitee is tried; the first failure is then raised for the client (the room
    exists and keeps the invites that worked: the creator can retry with
    ``/rooms/{roomId}/invite``)."""
    membership = service.hooks.membership
    if membership is None or not invitees:
        return
    first_error: MatrixError | None = None
    unreachable: dict[str, MatrixError] = {}
    for invitee in invitees:
        server = invitee.partition(":")[2]
        if server in unreachable:
            continue  # one wait per server that cannot be reached, not one per invitee
        try:
            await membership.invite_user(sender, room_id, invitee, is_direct=is_direct)
        except MatrixError as exc:
            if exc.http_status in (502, 504):
                unreachable[server] = exc
            log.warning(
                "event=create_room_invite_failed room_id=%s invitee=%s errcode=%s error=%s",
                room_id,
                invitee,
                exc.errcode,
                exc.message,
            )
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


async def resolve_room_id_or_alias(service, room_id_or_alias: str) -> str:
    """``!room`` stays; ``#alias:server`` resolves locally (no federation yet)."""
    if room_id_or_alias.startswith("!"):
        return room_id_or_alias
    if room_id_or_alias.startswith("#"):
        room_id = await service.db.run(store.alias_room_id, room_id_or_alias)
        if room_id is None:
            raise NotFound(f"Room alias {room_id_or_alias} not found")
        return room_id
    raise MatrixError(
        f"{room_id_or_alias!r} is neither a room ID nor a room alias",
        errcode="M_INVALID_PARAM",
        http_status=400,
    )
