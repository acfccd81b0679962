"""Room membership endpoints (client-server API "Room membership").

- ``POST /join/{roomIdOrAlias}`` (``via`` / deprecated ``server_name`` query: the servers
  to join a remote room through), ``POST /rooms/{roomId}/join`` (joining.yaml)
- ``POST /rooms/{roomId}/invite`` (inviting.yaml)
- ``POST /knock/{roomIdOrAlias}`` (knocking.yaml)
- ``POST /rooms/{roomId}/leave``, ``POST /rooms/{roomId}/forget`` (leaving.yaml)
- ``POST /rooms/{roomId}/kick`` (kicking.yaml), ``/ban``, ``/unban`` (banning.yaml)
- ``GET /joined_rooms`` (list_joined_rooms.yaml)

With federation wired, ``service.hooks.membership`` (node/federation/membership)
takes joins (remote rooms and aliases), invites of remote users and leaves of rooms known
only through a remote invite; without it everything stays local.
"""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from .. import store
from ..create_ops import resolve_room_id_or_alias
from .common import V3, optional_str, required_str


def register(router: Any, service: Any) -> None:
    async def _join(req: Any, room_id: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        reason = optional_str(body, "reason")
        if body.get("third_party_signed") is not None:
            raise MatrixError(
                "Third-party invites are not supported by this server",
                errcode="M_UNRECOGNIZED",
                http_status=400,
            )
        fed = service.hooks.membership
        if fed is not None:
            via = list(req.args.get("via") or []) + list(req.args.get("server_name") or [])
            room_id = await fed.join_room(req.user_id, room_id, via, reason)
            return 200, {"room_id": room_id}
        await service.update_membership(req.user_id, room_id, req.user_id, "join", reason)
        return 200, {"room_id": room_id}

    async def join_by_id_or_alias(req: Any, roomIdOrAlias: str) -> tuple[int, dict]:
        if service.hooks.membership is not None:
            return await _join(req, roomIdOrAlias)  # resolves remote aliases too
        room_id = await resolve_room_id_or_alias(service, roomIdOrAlias)
        return await _join(req, room_id)

    async def join_by_id(req: Any, roomId: str) -> tuple[int, dict]:
        return await _join(req, roomId)

    async def knock(req: Any, roomIdOrAlias: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        reason = optional_str(body, "reason")
        fed = service.hooks.membership
        if fed is not None:
            via = list(req.args.get("via") or []) + list(req.args.get("server_name") or [])
            return 200, {"room_id": await fed.knock_room(req.user_id, roomIdOrAlias, via, reason)}
        room_id = await resolve_room_id_or_alias(service, roomIdOrAlias)
        await service.update_membership(req.user_id, room_id, req.user_id, "knock", reason)
        return 200, {"room_id": room_id}

    async def invite(req: Any, roomId: str) -> tuple[int, dict]:
        body = req.json()
        target = required_str(body, "user_id")
        fed = service.hooks.membership
        if fed is not None:
            await fed.invite_user(req.user_id, roomId, target, optional_str(body, "reason"))
            return 200, {}
        await service.update_membership(
            req.user_id, roomId, target, "invite", optional_str(body, "reason")
        )
        return 200, {}

    async def leave(req: Any, roomId: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        fed = service.hooks.membership
        if fed is not None:
            await fed.leave_room(req.user_id, roomId, optional_str(body, "reason"))
            return 200, {}
        await service.update_membership(
            req.user_id, roomId, req.user_id, "leave", optional_str(body, "reason")
        )
        return 200, {}

    async def forget(req: Any, roomId: str) -> tuple[int, dict]:
        room = await service.get_room(roomId)
        membership = room.membership(req.user_id)
        if membership in ("join", "invite", "knock"):
            raise MatrixError(
                f"User {req.user_id} is in room {roomId}", errcode="M_UNKNOWN", http_status=400
            )
        await service.db.run(store.forget_room, req.user_id, roomId, service.clock.time_ms())
        return 200, {}

    def _moderation(membership: str, action: str | None):
        async def handler(req: Any, roomId: str) -> tuple[int, dict]:
            body = req.json()
            target = required_str(body, "user_id")
            await service.update_membership(
                req.user_id, roomId, target, membership, optional_str(body, "reason"), action=action
            )
            return 200, {}

        return handler

    async def joined_rooms(req: Any) -> tuple[int, dict]:
        return 200, {"joined_rooms": await service.joined_room_ids(req.user_id)}

    router.add("POST", V3 + "/join/{roomIdOrAlias}", join_by_id_or_alias, rate_limited=True)
    router.add("POST", V3 + "/rooms/{roomId}/join", join_by_id, rate_limited=True)
    router.add("POST", V3 + "/rooms/{roomId}/invite", invite, rate_limited=True)
    router.add("POST", V3 + "/knock/{roomIdOrAlias}", knock, rate_limited=True)
    router.add("POST", V3 + "/rooms/{roomId}/leave", leave, rate_limited=True)
    router.add("POST", V3 + "/rooms/{roomId}/forget", forget, rate_limited=True)
    router.add("POST", V3 + "/rooms/{roomId}/kick", _moderation("leave", "kick"))
    router.add("POST", V3 + "/rooms/{roomId}/ban", _moderation("ban", None))
    router.add("POST", V3 + "/rooms/{roomId}/unban", _moderation("leave", "unban"))
    router.add("GET", V3 + "/joined_rooms", joined_rooms)
