"""Which classes of city servers may take part in a room: the Parta state event
``org.parta.room.audience``: ``external`` class servers (e.g. a ministry) take part in rooms
that allow them and cannot join rooms restricted to schools (docs/architecture.md "Room
audience").

The event (state key ``""``)::

    {"type": "org.parta.room.audience", "state_key": "",
     "content": {"classes": ["school", "city", "external"]}}

lists the roster classes (``federation.roster.SERVER_CLASSES``) whose servers' users may
join or be invited.  A room without it -- every room a school creates unless it says
otherwise -- admits ``school`` and ``city`` servers only, so an ``external`` server needs an
explicit invitation of its class; malformed content counts as that default (never wider).

Enforced by the resident server on ``make_join`` / ``send_join`` / ``make_knock`` /
``send_knock`` (the joining user's server) and when inviting a user of another server
(the invitee's server): a refusal is 403 ``M_FORBIDDEN`` naming the classes.  It takes
effect only while the node enforces a roster (the policy knows the classes); the node's
own users are never refused by it.
"""

from __future__ import annotations

from typing import Any, Mapping

from federation.errors import Forbidden
from federation.roster import SERVER_CLASSES

from .policy import ClassifiesServers

AUDIENCE_EVENT = "org.parta.room.audience"
DEFAULT_CLASSES: tuple[str, ...] = ("school", "city")


def room_audience(state: Mapping[tuple[str, str], Any]) -> tuple[str, ...]:
    """The classes admitted by the room whose current state is ``state``."""
    ev = state.get((AUDIENCE_EVENT, ""))
    if ev is None:
        return DEFAULT_CLASSES
    content = getattr(ev, "content", None)
    classes = content.get("classes") if isinstance(content, Mapping) else None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        return DEFAULT_CLASSES
    return tuple(c for c in SERVER_CLASSES if c in classes)


def check_audience(
    policy: Any,
    state: Mapping[tuple[str, str], Any],
    server_name: str,
    *,
    local_server: str,
    what: str = "join",
) -> None:
    """Refuse (403) a user of ``server_name`` whose server class the room does not admit."""
    if server_name == local_server:
        return
    if not isinstance(policy, ClassifiesServers) or not policy.bound:
        return  # open federation: no classes to go by
    cls = policy.server_class(server_name)
    if cls is None:
        raise Forbidden(f"server {server_name} is not in the city roster")
    allowed = room_audience(state)
    if cls not in allowed:
        raise Forbidden(
            f"This room admits servers of class {' and '.join(allowed) or 'none'} "
            f"only; {server_name} is of class {cls} (cannot {what})"
        )
