"""Room aliases: local alias mappings and ``m.room.canonical_alias`` validation.

Spec: client-server API "Room aliases" (``directory.yaml``: PUT/GET/DELETE
``/directory/room/{roomAlias}``, GET ``/rooms/{roomId}/aliases``; "Servers may contact
the server named in the alias to find the room ID": ``hooks.remote_directory``), appendix "Room
aliases" (``#room_alias:domain``, at most 255 bytes), ``room_state.yaml`` (new aliases in
``m.room.canonical_alias`` must be valid -- ``M_INVALID_PARAM`` -- and point to the room
-- ``M_BAD_ALIAS``).
"""

from __future__ import annotations

from federation.auth.power_levels import event_send_level, user_power_level
from federation.errors import Forbidden, InvalidParam, MatrixError, NotFound
from federation.identifiers import is_valid_server_name

from . import store


def parse_alias(alias: object) -> tuple[str, str]:
    """(localpart, server) of a syntactically valid alias, else 400 M_INVALID_PARAM."""
    if not isinstance(alias, str) or not alias.startswith("#") or len(alias.encode()) > 255:
        raise InvalidParam("Room alias invalid")
    local, sep, server = alias[1:].partition(":")
    if not sep or not local or not is_valid_server_name(server) or any(c.isspace() for c in local):
        raise InvalidParam("Room alias invalid")
    return local, server


async def check_canonical_alias_content(service, room_id: str, content: dict) -> None:
    """Validate new aliases of an ``m.room.canonical_alias`` event before sending it."""
    room = await service.get_room(room_id)
    current = room.content("m.room.canonical_alias")
    old = set()
    if isinstance(current.get("alias"), str):
        old.add(current["alias"])
    if isinstance(current.get("alt_aliases"), list):
        old.update(a for a in current["alt_aliases"] if isinstance(a, str))
    new: list[str] = []
    alias = content.get("alias")
    if alias is not None:
        new.append(alias)
    alt = content.get("alt_aliases")
    if alt is not None:
        if not isinstance(alt, list):
            raise InvalidParam("alt_aliases must be a list of room aliases")
        new.extend(alt)
    for a in new:
        if a in old:
            continue  # "Servers do not validate aliases which are ... already present"
        _, server = parse_alias(a)
        if server == service.server_name:
            target = await service.db.run(store.alias_room_id, a)
            if target != room_id:
                raise MatrixError(
                    f"The alias '{a}' does not point to this room.",
                    errcode="M_BAD_ALIAS",
                    http_status=400,
                )


async def get_alias(service, alias: str) -> dict:
    """An alias of ours from the database; another server's from that server, over
    federation (``query/directory``), when the node federates (else 404)."""
    _, server = parse_alias(alias)
    remote = service.hooks.remote_directory
    if server != service.server_name and remote is not None:
        return await remote.resolve_alias(alias)
    room_id = await service.db.run(store.alias_room_id, alias)
    if room_id is None:
        raise NotFound(f"Room alias {alias} not found.")
    return {"room_id": room_id, "servers": [service.server_name]}


async def set_alias(service, user_id: str, alias: str, room_id: object) -> None:
    _, server = parse_alias(alias)
    if server != service.server_name:
        raise InvalidParam(f"Room alias must be on this server ({service.server_name})")
    if not isinstance(room_id, str):
        raise MatrixError("'room_id' must be a room ID", errcode="M_BAD_JSON")
    room = await service.get_room(room_id)
    if room.membership(user_id) != "join":
        raise Forbidden("You must be in the room to give it an alias")
    created = await service.db.run(
        store.create_alias, alias, room_id, user_id, service.clock.time_ms()
    )
    if not created:
        raise MatrixError(
            f"Room alias {alias} already exists.", errcode="M_UNKNOWN", http_status=409
        )


async def delete_alias(service, user_id: str, alias: str) -> None:
    """Only the alias' creator or a user who may change the room's canonical alias."""
    parse_alias(alias)
    row = await service.db.run(store.alias_row, alias)
    if row is None:
        raise NotFound(f"Room alias {alias} not found.")
    if row.creator != user_id:
        try:
            room = await service.get_room(row.room_id)
        except NotFound:
            room = None
        allowed = (
            room is not None
            and room.membership(user_id) == "join"
            and user_power_level(user_id, room.state, room.room_version)
            >= event_send_level("m.room.canonical_alias", True, room.state)
        )
        if not allowed:
            raise Forbidden("You may not delete this alias")
    await service.db.run(store.delete_alias, alias)
    await _drop_from_canonical_alias(service, user_id, row.room_id, alias)


async def _drop_from_canonical_alias(service, user_id: str, room_id: str, alias: str) -> None:
    """Best effort: remove the deleted alias from the room's canonical alias event."""
    try:
        room = await service.get_room(room_id)
    except NotFound:
        return
    content = room.content("m.room.canonical_alias")
    changed = False
    if content.get("alias") == alias:
        del content["alias"]
        changed = True
    alt = content.get("alt_aliases")
    if isinstance(alt, list) and alias in alt:
        content["alt_aliases"] = [a for a in alt if a != alias]
        changed = True
    if not changed:
        return
    try:
        await service.create_event(
            room_id, user_id, "m.room.canonical_alias", content, state_key=""
        )
    except MatrixError:
        pass  # "delete the alias ... even if the user does not have permission"


async def room_aliases(service, user_id: str, room_id: str) -> list[str]:
    room = await service.get_room(room_id)
    hv = room.content("m.room.history_visibility").get("history_visibility")
    if room.membership(user_id) != "join" and hv != "world_readable":
        raise Forbidden("You are not a member of the room.")
    return await service.db.run(store.aliases_for_room, room_id)
