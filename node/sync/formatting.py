"""How events leave ``/sync``: the timeline filter as a predicate and the event format the
filter asks for (client-server API "Filtering", ``event_format`` and ``event_fields``,
https://spec.matrix.org/v1.16/client-server-api/#filtering).  Shared by the joined and the
left rooms sections.
"""

from __future__ import annotations

from typing import Any, Callable

from federation.events.model import Event
from node.filtering import project_fields

from .ignored import without_ignored
from .params import SyncRun


def allow_timeline(run: SyncRun, room_id: str) -> Callable[[Event], bool]:
    """The room timeline filter as a predicate (a constant one when it passes everything)."""
    tf = run.filter.room.timeline
    if tf.is_pass_all:
        return without_ignored(lambda ev: True, run.ignored)
    return without_ignored(
        lambda ev: tf.allows(ev.type, ev.sender, ev.content, room_id), run.ignored
    )


def format_event(rooms: Any, run: SyncRun, ev: Event) -> dict:
    """``ev`` as the filter's ``event_format`` says, projected to its ``event_fields``."""
    f = run.filter
    if f.event_format == "federation":
        out = dict(ev.pdu)
        if ev.sender in rooms.erasure.erased:  # an erased sender (node/rooms/erasure.py)
            erased = rooms.erasure.served_content(ev, run.user_id, rooms)
            if erased is not None:
                out["content"] = erased
    else:
        out = rooms.format_client_event(ev, include_room_id=False, requester=run.p.requester)
    if f.event_fields is not None:
        out = project_fields(out, f.event_fields)
    return out
