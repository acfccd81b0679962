"""Authorization rule 1: the ``m.room.create`` event.

Spec: rooms v10/v11/v12 "Authorisation rules", rule 1.  The sub-rules differ per version:

=====  ==========================================  =======  =========================
rule   v10                                          v11      v12
=====  ==========================================  =======  =========================
1.1    any prev_events -> reject                    same     same
1.2    room_id domain != sender domain -> reject    same     has a room_id -> reject
1.3    content.room_version unrecognised -> reject  same     same
1.4    no content.creator -> reject                 (allow)  bad additional_creators
1.5    allow                                        --       allow
=====  ==========================================  =======  =========================
"""

from __future__ import annotations

from ..events.model import Event
from ..room_versions import KNOWN_ROOM_VERSIONS
from .errors import AuthError
from .user_ids import is_valid_user_id, user_id_domain


def check_create_event(event: Event) -> None:
    """Apply rule 1 to a create event: return to allow, raise ``AuthError`` to reject."""
    rv = event.room_version
    content = event.content

    # 1.1 If it has any prev_events, reject.
    if event.prev_event_ids:
        raise AuthError(rv, "1.1", "m.room.create must not have prev_events")

    if rv.event_format.room_id_is_create_event_hash:
        # v12: 1.2 If the event has a room_id, reject (the room ID is derived from the
        # create event's ID).
        if "room_id" in event.pdu:
            raise AuthError(rv, "1.2", "m.room.create must not have a room_id")
    else:
        # v10/v11: 1.2 If the domain of the room_id does not match the domain of the
        # sender, reject.
        room_domain = user_id_domain(event.pdu.get("room_id"))
        if room_domain is None or room_domain != user_id_domain(event.sender):
            raise AuthError(rv, "1.2", "room_id domain does not match sender domain")

    # 1.3 If content.room_version is present and is not a recognised version, reject.
    version = content.get("room_version")
    if "room_version" in content and not (
        isinstance(version, str) and version in KNOWN_ROOM_VERSIONS
    ):
        raise AuthError(rv, "1.3", f"unrecognised room_version {content['room_version']!r}")

    # v10 only: 1.4 If content has no creator property, reject.
    # (v11 dropped `creator`: the create event's sender is the creator.)
    if not rv.auth.implicit_room_creator and "creator" not in content:
        raise AuthError(rv, "1.4", "m.room.create content has no creator")

    # v12: 1.4 If additional_creators is present in content and is not an array of
    # strings where each string passes the user ID validation applied to sender, reject.
    if rv.auth.privileged_creators and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(is_valid_user_id(u) for u in extra):
            raise AuthError(rv, "1.4", "additional_creators must be an array of valid user IDs")

    # v10: 1.5, v11: 1.4, v12: 1.5 Otherwise, allow.
