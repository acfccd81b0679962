"""Room summaries for the published room directory and the space hierarchy.

Spec: client-server API ``definitions/public_rooms_chunk.yaml`` (``PublishedRoomsChunk``)
and ``definitions/room_summary.yaml`` (adds ``room_type``, ``allowed_room_ids``,
``encryption``, ``room_version``).
"""

from __future__ import annotations

from typing import Any

from .state_cache import RoomState


def _topic(content: dict) -> str | None:
    block = content.get("m.topic")
    if isinstance(block, dict) and isinstance(block.get("m.text"), list):
        for rep in block["m.text"]:
            if (
                isinstance(rep, dict)
                and rep.get("mimetype", "text/plain") == "text/plain"
                and isinstance(rep.get("body"), str)
            ):
                return rep["body"] or None
    topic = content.get("topic")
    return topic if isinstance(topic, str) and topic else None


def room_summary(room: RoomState, *, full: bool = False) -> dict[str, Any]:
    """``PublishedRoomsChunk``; with ``full`` the ``RoomSummary`` extras as well."""
    hv = room.content("m.room.history_visibility").get("history_visibility")
    guest = room.content("m.room.guest_access").get("guest_access")
    join_rules = room.content("m.room.join_rules")
    join_rule = join_rules.get("join_rule")
    out: dict[str, Any] = {
        "room_id": room.room_id,
        "num_joined_members": len(room.joined),
        "world_readable": hv == "world_readable",
        "guest_can_join": guest == "can_join",
        "join_rule": join_rule if isinstance(join_rule, str) else "invite",
    }
    name = room.content("m.room.name").get("name")
    if isinstance(name, str) and name:
        out["name"] = name
    topic = _topic(room.content("m.room.topic"))
    if topic:
        out["topic"] = topic
    alias = room.content("m.room.canonical_alias").get("alias")
    if isinstance(alias, str) and alias:
        out["canonical_alias"] = alias
    avatar = room.content("m.room.avatar").get("url")
    if isinstance(avatar, str) and avatar:
        out["avatar_url"] = avatar
    if room.room_type is not None:
        out["room_type"] = room.room_type
    if full:
        out["room_version"] = room.room_version.identifier
        algorithm = room.content("m.room.encryption").get("algorithm")
        if isinstance(algorithm, str):
            out["encryption"] = algorithm
        allow = join_rules.get("allow")
        if isinstance(allow, list):
            ids = [
                a.get("room_id")
                for a in allow
                if isinstance(a, dict)
                and a.get("type") == "m.room_membership"
                and isinstance(a.get("room_id"), str)
            ]
            if ids:
                out["allowed_room_ids"] = ids
    return out


def search_text(summary: dict) -> str:
    return " ".join(summary.get(k, "") for k in ("name", "topic", "canonical_alias")).lower()
