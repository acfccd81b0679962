"""``m.presence`` EDUs (server-server API "Presence"): ``{"push": [{"user_id",
"presence", "last_active_ago", "status_msg"?, "currently_active"?}]}``.

Outbound: every client-visible change of a local user whose presence the school shares
(``node/sync/presence.py``) is queued for the servers with joined members in the user's
rooms, coalesced per user, so only the latest state waits in a slow server's queue.

Inbound: an entry counts only for a user of the sending server, with a valid state, who
is joined to a room this node knows (so a server cannot fill our memory with users no
local user can ever see); at most ``MAX_PUSH`` entries of one EDU are looked at.  Only
when presence is enabled on this node.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from federation.identifiers import is_valid_user_id

if TYPE_CHECKING:
    from node.sync.presence import PresenceManager
    from node.sync.service import SyncService

log = logging.getLogger("parta.federation.presence")

PRESENCE = "m.presence"
MAX_PUSH = 100
_STATES = ("online", "unavailable", "offline")


def presence_edu(user_id: str, content: dict) -> tuple[str, dict, str]:
    entry = {k: v for k, v in content.items() if k != "user_id"}
    entry["user_id"] = user_id
    entry.setdefault("last_active_ago", 0)
    return PRESENCE, {"push": [entry]}, f"presence|{user_id}"


def _manager(sync: SyncService | None) -> PresenceManager | None:
    """The sync area's presence, None when the node does not wire presence (off)."""
    return None if sync is None else sync.handler.presence


async def receive(origin: str, content: Any, *, rooms: Any, sync: SyncService | None) -> None:
    manager = _manager(sync)
    if manager is None or not manager.enabled or not isinstance(content, dict):
        return
    push = content.get("push")
    if not isinstance(push, list):
        return
    for entry in push[:MAX_PUSH]:
        if not isinstance(entry, dict):
            continue
        user_id = entry.get("user_id")
        if not is_valid_user_id(user_id) or user_id.split(":", 1)[1] != origin:
            continue
        if entry.get("presence") not in _STATES:
            continue
        if not await rooms.joined_room_ids(user_id):
            continue
        await manager.receive_remote(origin, entry)


def attach_outbound(sender: Any, *, rooms: Any, sync: SyncService | None) -> None:
    """Send local users' presence changes to the servers sharing their rooms."""
    manager = _manager(sync)
    if manager is None or not manager.enabled:
        return
    from twisted.internet import defer

    async def send(user_id: str, content: dict) -> None:
        dests: set[str] = set()
        for room_id in await rooms.joined_room_ids(user_id):
            dests |= await sender.destinations_for_room(room_id)
        if dests:
            edu_type, body, key = presence_edu(user_id, content)
            await sender.send_edu(dests, edu_type, body, key)

    def on_change(user_id: str, content: dict) -> None:
        defer.ensureDeferred(send(user_id, content)).addErrback(
            lambda f: log.warning("event=presence_edu_failed error=%s", f.value)
        )

    manager.listeners.append(on_change)
