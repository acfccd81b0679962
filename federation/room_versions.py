"""Room versions as data.

Spec: https://spec.matrix.org/latest/rooms/ (``content/rooms/v10.md`` .. ``v12.md``).

Each version is a frozen dataclass of rule groups (event format, authorization, redaction,
state resolution), built from its predecessor with ``dataclasses.replace`` so that a version
states only what it changes.  Parta speaks versions 10, 11 and 12; 12 is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from .errors import UnsupportedRoomVersion


class StateResAlgorithm(str, Enum):
    V2 = "v2"
    # v2.1 (room version 12): start the iterative auth checks from the empty state and add
    # the conflicted state subgraph to the full conflicted set.
    V2_1 = "v2.1"


@dataclass(frozen=True)
class EventFormat:
    # v12: the room ID is "!" + the create event's reference hash; the create event carries
    # no room_id and is never listed in auth_events.
    room_id_is_create_event_hash: bool = False


@dataclass(frozen=True)
class AuthRules:
    knock_join_rule: bool = True  # v7+
    restricted_join_rule: bool = True  # v8+
    knock_restricted_join_rule: bool = True  # v10+
    integer_power_levels: bool = True  # v10+: power level values must be integers
    # v11: m.room.create has no `creator`; the creator is the create event's sender.
    implicit_room_creator: bool = False
    # v12: the create sender plus content.additional_creators have infinite power.
    privileged_creators: bool = False
    # v12: m.room.create must not appear in auth_events (the room ID implies it).
    create_in_auth_events: bool = True


@dataclass(frozen=True)
class RedactionRules:
    # v11 (MSC2176 + MSC3821 + MSC3989): keep all of m.room.create's content, `invite` in
    # power levels, `redacts` inside content, `signed` in third-party invites; drop
    # `origin`, `membership` and `prev_state` top-level keys from the preserved set.
    v11_rules: bool = False


@dataclass(frozen=True)
class StateResRules:
    algorithm: StateResAlgorithm = StateResAlgorithm.V2


@dataclass(frozen=True)
class RoomVersion:
    identifier: str
    event_format: EventFormat
    auth: AuthRules
    redaction: RedactionRules
    state_res: StateResRules
    stable: bool = True


V10 = RoomVersion(
    identifier="10",
    event_format=EventFormat(),
    auth=AuthRules(),
    redaction=RedactionRules(),
    state_res=StateResRules(),
)

V11 = replace(
    V10,
    identifier="11",
    auth=replace(V10.auth, implicit_room_creator=True),
    redaction=replace(V10.redaction, v11_rules=True),
)

V12 = replace(
    V11,
    identifier="12",
    event_format=replace(V11.event_format, room_id_is_create_event_hash=True),
    auth=replace(V11.auth, privileged_creators=True, create_in_auth_events=False),
    state_res=replace(V11.state_res, algorithm=StateResAlgorithm.V2_1),
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {v.identifier: v for v in (V10, V11, V12)}
DEFAULT_ROOM_VERSION = V12


def get_room_version(identifier: object) -> RoomVersion:
    """Return the rules for ``identifier`` or raise ``M_UNSUPPORTED_ROOM_VERSION``."""
    version = KNOWN_ROOM_VERSIONS.get(identifier) if isinstance(identifier, str) else None
    if version is None:
        supported = ", ".join(sorted(KNOWN_ROOM_VERSIONS, key=int))
        raise UnsupportedRoomVersion(
            f"Room version {identifier!r} is not supported by this server (supported: {supported})"
        )
    return version
