"""Planning ``POST /createRoom``: the request body -> the ordered list of initial events.

Spec: client-server API ``create_room.yaml`` (order of events, presets table,
``power_level_content_override``, ``creation_content``, ``initial_state``, ``name``,
``topic``, ``invite``, ``room_version``), "Spaces" (``creation_content.type: m.space``),
``m.room.topic`` (``m.topic`` text block, v1.15).

Pure: no I/O, so the plan is unit-testable.  The service turns each planned event into a
signed PDU and checks it against the auth rules before anything is persisted.

The order of events (create_room.yaml):
  1. ``m.room.create``                        4. ``m.room.canonical_alias``
  2. the creator's ``m.room.member`` join     5. preset events (join rules, history
  3. ``m.room.power_levels`` (+ override)        visibility, guest access)
  6. ``initial_state`` in order               7. ``m.room.name``, ``m.room.topic``
  8. invites (``m.room.member`` invite)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from federation.errors import BadJSON, InvalidParam, MatrixError
from federation.identifiers import is_valid_user_id
from federation.room_versions import RoomVersion, get_room_version

PRESETS = {
    # preset: (join_rule, history_visibility, guest_access)
    "private_chat": ("invite", "shared", "can_join"),
    "trusted_private_chat": ("invite", "shared", "can_join"),
    "public_chat": ("public", "shared", "forbidden"),
}

# Invitees on other servers in one createRoom (each invite is a federation handshake).
MAX_REMOTE_INVITES = 50

# Appendix "Room aliases": the localpart is any non-empty string without ':' or NUL (and no
# whitespace or '#', which clients cannot express reliably in a URL path).
_ALIAS_LOCALPART = re.compile(r"^[^:\s#\x00]+$")


def invalid_room_state(message: str) -> MatrixError:
    return MatrixError(message, errcode="M_INVALID_ROOM_STATE", http_status=400)


@dataclass
class PlannedEvent:
    type: str
    state_key: str | None
    content: dict


@dataclass
class CreatePlan:
    room_version: RoomVersion
    create_content: dict
    room_type: str | None
    visibility: str  # public | private (published room directory)
    alias: str | None  # full alias from room_alias_name
    events: list[PlannedEvent] = field(default_factory=list)  # steps 3-7 (after join)
    invites: list[str] = field(default_factory=list)  # step 8
    is_direct: bool = False


def default_power_levels(
    creator: str, room_version: RoomVersion, preset: str, invites: list[str]
) -> dict:
    """Step 3's default ``m.room.power_levels`` content."""
    v12 = room_version.auth.privileged_creators
    users: dict[str, int] = {}
    if not v12:
        # Rooms 1-11: the creator (and for trusted_private_chat the invitees) get 100.
        users[creator] = 100
        if preset == "trusted_private_chat":
            for u in invites:
                users[u] = 100
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            # v12: "MUST explicitly be higher than state_default", e.g. 150.
            "m.room.tombstone": 150 if v12 else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
    }


def _opt_str(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadJSON(f"'{key}' must be a string")
    return value


def _opt_obj(body: dict, key: str) -> dict | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadJSON(f"'{key}' must be an object")
    return value


def plan_create_room(
    body: Any, *, creator: str, server_name: str, default_version: str
) -> CreatePlan:
    if not isinstance(body, dict):
        raise BadJSON("Request body must be a JSON object")

    visibility = _opt_str(body, "visibility") or "private"
    if visibility not in ("public", "private"):
        raise InvalidParam("'visibility' must be 'public' or 'private'")
    preset = _opt_str(body, "preset")
    if preset is None:
        # "A visibility of public equates to a preset of public_chat and private
        # visibility equates to a preset of private_chat."
        preset = "public_chat" if visibility == "public" else "private_chat"
    if preset not in PRESETS:
        raise InvalidParam(f"Unknown preset {preset!r}")

    version_id = body.get("room_version", default_version)
    room_version = get_room_version(version_id)  # 400 M_UNSUPPORTED_ROOM_VERSION

    invites = body.get("invite", [])
    if not isinstance(invites, list) or not all(is_valid_user_id(u) for u in invites):
        raise InvalidParam("'invite' must be a list of user IDs")
    invites = list(dict.fromkeys(u for u in invites if u != creator))
    remote = sum(1 for u in invites if u.partition(":")[2] != server_name)
    if remote > MAX_REMOTE_INVITES:
        # Each is a federation handshake made while the client waits.
        raise InvalidParam(f"'invite' may name at most {MAX_REMOTE_INVITES} users of other servers")
    if body.get("invite_3pid"):
        raise MatrixError(
            "Third-party invites are not supported by this server",
            errcode="M_UNRECOGNIZED",
            http_status=400,
        )
    is_direct = body.get("is_direct", False)
    if not isinstance(is_direct, bool):
        raise BadJSON("'is_direct' must be a boolean")

    # --- 1. m.room.create ---------------------------------------------------------------
    creation = dict(_opt_obj(body, "creation_content") or {})
    # "The server will overwrite the following keys: creator, room_version."
    creation.pop("creator", None)
    creation["room_version"] = room_version.identifier
    if room_version.auth.privileged_creators:
        extra = creation.get("additional_creators", [])
        if not isinstance(extra, list) or not all(is_valid_user_id(u) for u in extra):
            raise InvalidParam("creation_content.additional_creators must be a list of user IDs")
        if preset == "trusted_private_chat":
            # v1.16: combine additional_creators and the invitees, deduplicated.
            extra = list(extra) + invites
        extra = list(dict.fromkeys(u for u in extra if u != creator))
        if extra:
            creation["additional_creators"] = extra
        else:
            creation.pop("additional_creators", None)
    room_type = creation.get("type")
    if room_type is not None and not isinstance(room_type, str):
        raise BadJSON("creation_content.type must be a string")

    # --- 4. alias -------------------------------------------------------------------------
    alias = None
    alias_name = _opt_str(body, "room_alias_name")
    if alias_name is not None:
        if not _ALIAS_LOCALPART.match(alias_name):
            raise InvalidParam("Invalid characters in room alias name")
        alias = f"#{alias_name}:{server_name}"
        if len(alias.encode()) > 255:
            raise InvalidParam("Room alias too long")

    # --- 6. initial_state (parsed first: it shapes steps 3 and 5) --------------------------
    initial = body.get("initial_state", [])
    if not isinstance(initial, list):
        raise BadJSON("'initial_state' must be a list")
    initial_events: list[PlannedEvent] = []
    for i, item in enumerate(initial):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("content"), dict)
        ):
            raise BadJSON(f"initial_state[{i}] must be an object with 'type' and 'content'")
        skey = item.get("state_key", "")
        if not isinstance(skey, str):
            raise BadJSON(f"initial_state[{i}].state_key must be a string")
        if "\x00" in skey or "\x00" in item["type"]:  # database columns: PostgreSQL refuses NUL
            raise InvalidParam(f"initial_state[{i}] type and state_key may not contain NUL")
        if item["type"] in ("m.room.create", "m.room.member"):
            raise invalid_room_state(f"initial_state may not contain {item['type']}")
        initial_events.append(PlannedEvent(item["type"], skey, dict(item["content"])))
    initial_keys = {(e.type, e.state_key) for e in initial_events}

    plan = CreatePlan(
        room_version=room_version,
        create_content=creation,
        room_type=room_type,
        visibility=visibility,
        alias=alias,
        invites=invites,
        is_direct=is_direct,
    )

    # --- 3. power levels ------------------------------------------------------------------
    power = default_power_levels(creator, room_version, preset, invites)
    for e in initial_events:
        if (e.type, e.state_key) == ("m.room.power_levels", ""):
            power = dict(e.content)  # initial_state replaces the default content
    override = _opt_obj(body, "power_level_content_override")
    if override:
        power.update(override)
    plan.events.append(PlannedEvent("m.room.power_levels", "", power))

    if alias is not None:
        plan.events.append(PlannedEvent("m.room.canonical_alias", "", {"alias": alias}))

    # --- 5. preset events (initial_state takes precedence) --------------------------------
    join_rule, history, guest = PRESETS[preset]
    for etype, content in (
        ("m.room.join_rules", {"join_rule": join_rule}),
        ("m.room.history_visibility", {"history_visibility": history}),
        ("m.room.guest_access", {"guest_access": guest}),
    ):
        if (etype, "") not in initial_keys:
            plan.events.append(PlannedEvent(etype, "", content))

    # --- 6. initial_state, minus what steps 3 and 7 take over -----------------------------
    name = _opt_str(body, "name")
    topic = _opt_str(body, "topic")
    for e in initial_events:
        key = (e.type, e.state_key)
        if key == ("m.room.power_levels", ""):
            continue
        if (name is not None and key == ("m.room.name", "")) or (
            topic is not None and key == ("m.room.topic", "")
        ):
            continue  # "gets overridden by name and topic keys"
        plan.events.append(e)

    # --- 7. name and topic ----------------------------------------------------------------
    if name is not None:
        plan.events.append(PlannedEvent("m.room.name", "", {"name": name}))
    if topic is not None:
        plan.events.append(
            PlannedEvent(
                "m.room.topic",
                "",
                {
                    "topic": topic,
                    "m.topic": {"m.text": [{"body": topic, "mimetype": "text/plain"}]},
                },
            )
        )
    return plan
