"""Server ACLs applied by the node (spec: server-server API "Server Access Control Lists
(ACLs)"; the decision itself is ``federation.acl``).

"When a remote server makes a request, it MUST be verified to be allowed by the server
ACLs.  If the server is denied access to a room, the receiving server MUST reply with a 403
HTTP status code and an ``errcode`` of ``M_FORBIDDEN``."  The ACL is the room's *current*
``m.room.server_acl`` state event (``RoomState.state``); a room we do not know has none.

Where it is applied:

* the endpoints whose prefix the spec lists (``PROTECTED_PREFIXES``, from the
  ``acl_protected`` entries of ``federation/transport/endpoints.py``: make/send join, leave
  and knock, invite, state, state_ids, backfill, event_auth, get_missing_events) -- by
  ``FederationRoutes`` (``xmatrix_auth.py``) through ``RoomAclGuard`` on the ``roomId``
  path parameter, after the request is authenticated and before the handler runs;
  ``/event/{eventId}`` checks the event's room itself (``server/event.py``), under the
  general rule above;
* ``/send``: every PDU whose sending server (the transaction's origin) the room denies is
  dropped with an error in the response and nothing stored (``ingest/checks.py``
  ``Checks.prepare``); typing notifications and all receipts of such a room are ignored
  (``edus.py``).

Nothing else changes: events are still sent to denied servers that are residents of the
room ("Servers should still send events to denied servers if they are still residents"),
and ACLs do not take part in the authorization rules.

Cost: a room without an ACL event is one dict lookup.  Compiled ACLs are cached by event ID
(IDs are hashes of the event, so one cache serves every room and node of the process); the
cached entry also keeps the content it was compiled from, so a redacted copy of the event
(same ID, content stripped) is compiled afresh.  Each compiled ACL memoises its decisions
per server name.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.acl import ServerAcl
from federation.errors import Forbidden, NotFound
from federation.transport.endpoints import ACL_PROTECTED_PREFIXES

log = logging.getLogger("parta.federation.acl")

ACL_KEY = ("m.room.server_acl", "")
CACHE_LIMIT = 1024

# Server-server API "Server Access Control Lists (ACLs)": "The following endpoint prefixes
# MUST be protected" -- those of the endpoints Parta serves, flagged in the endpoint table.
PROTECTED_PREFIXES = ACL_PROTECTED_PREFIXES

# event ID -> (the content compiled, the compiled ACL)
_compiled: dict[str, tuple[Any, ServerAcl]] = {}


def compiled_acl(ev: Any) -> ServerAcl:
    """The compiled ACL of an ``m.room.server_acl`` event (cached by event ID)."""
    content = ev.content
    hit = _compiled.get(ev.event_id)
    if hit is not None and hit[0] is content:
        return hit[1]
    acl = ServerAcl.from_content(content)
    if len(_compiled) >= CACHE_LIMIT:
        _compiled.clear()
    _compiled[ev.event_id] = (content, acl)
    return acl


def server_allowed(room: Any, server_name: str) -> bool:
    """Whether the room's current server ACL lets ``server_name`` take part (rule 1: a
    room without an ``m.room.server_acl`` event allows everyone)."""
    ev = room.state.get(ACL_KEY)
    if ev is None:
        return True
    return compiled_acl(ev).allows(server_name)


def denied_message(server_name: str) -> str:
    return f"Server {server_name} is denied access to the room by its server ACL"


def require_allowed(room: Any, server_name: str) -> None:
    """403 ``M_FORBIDDEN`` when the room's server ACL denies ``server_name``."""
    if not server_allowed(room, server_name):
        log.info("event=server_acl_denied origin=%s room=%s", server_name, room.room_id)
        raise Forbidden(denied_message(server_name))


def protects(template: str) -> bool:
    """Whether an endpoint's path template is under one of the protected prefixes."""
    return any(template == p or template.startswith(p + "/") for p in PROTECTED_PREFIXES)


class RoomAclGuard:
    """The endpoints' check, given the ``roomId`` of the request: 403 when the room's
    current ACL denies the origin; nothing for a room this server does not know (the
    handler answers those)."""

    def __init__(self, rooms: Any) -> None:
        self.rooms = rooms

    async def check(self, origin: str, room_id: Any) -> None:
        if not isinstance(room_id, str):
            return
        try:
            room = await self.rooms.get_room(room_id)
        except NotFound:
            return
        require_allowed(room, origin)
