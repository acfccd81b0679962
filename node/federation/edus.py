"""Inbound EDUs, dispatched by type (spec: server-server API "EDUs", "Typing
Notifications", "Receipts", "Presence").

* ``m.typing`` (``{room_id, user_id, typing}``): "Receiving servers should verify that the
  user is in the room, and is a user belonging to the sending server" -- then the sync
  area's typing manager shows it to local clients (remote typing has no explicit timeout:
  the default 30 s applies, refreshed by the sender while the user types).
* ``m.receipt`` (``{room_id: {"m.read": {user_id: {event_ids, data}}}}``): the same checks,
  plus the event must be one we hold in that room; stored through the sync area's
  receipts (so local clients get ``m.receipt`` in their sync).
* ``m.presence``: handed to the sync area's presence when it is enabled
  (``node/federation/presence.py``).
* Server ACLs ("Server Access Control Lists (ACLs)"): a typing notification, and all the
  receipts, of a room whose current ``m.room.server_acl`` denies the origin are ignored.
* ``m.direct_to_device``, ``m.device_list_update``, ``m.signing_key_update``: handed to
  the e2ee area (``node/federation/e2ee_edus.py``): to-device messages for our users'
  devices, and device-list changes of the origin's users.
* anything else: ignored.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from federation.errors import MatrixError, NotFound
from federation.identifiers import MAX_ID_BYTES, is_valid_event_id, is_valid_user_id

from . import acl_check, e2ee_edus, fed_metrics
from . import presence as presence_edus

log = logging.getLogger("parta.federation.edus")

TYPING_TIMEOUT_MS = 30_000


def _domain(user_id: Any) -> str | None:
    if is_valid_user_id(user_id):
        return user_id.split(":", 1)[1]
    return None


def _plausible_id(value: Any, sigil: str) -> bool:
    """An ID that could name something we store: a string with the sigil, at most 255
    bytes, without NUL (which no identifier may hold and PostgreSQL cannot store).
    Anything else is ignored before it reaches the database."""
    return (
        isinstance(value, str)
        and value.startswith(sigil)
        and len(value.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES
        and "\x00" not in value
    )


class EduHandler:
    def __init__(self, *, rooms: Any, sync: Any, presence: bool = False, e2ee: Any = None) -> None:
        self.rooms = rooms
        self.sync = sync
        self.presence = presence
        self.handlers: dict[str, Callable[[str, Any], Awaitable[None]]] = {
            "m.typing": self.typing,
            "m.receipt": self.receipt,
            "m.presence": self.presence_edu,
            **e2ee_edus.handlers(e2ee),
        }
        self.counts: dict[str, int] = {}

    async def handle(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str):
            return
        handler = self.handlers.get(edu["edu_type"], self.ignore)
        try:
            await handler(origin, edu.get("content"))
        except MatrixError as exc:
            log.info(
                "event=edu_refused origin=%s type=%s reason=%s",
                origin,
                edu["edu_type"],
                exc.message,
            )
        self.counts[edu["edu_type"]] = self.counts.get(edu["edu_type"], 0) + 1
        fed_metrics.edu(edu["edu_type"])

    async def ignore(self, origin: str, content: Any) -> None:
        return None

    async def presence_edu(self, origin: str, content: Any) -> None:
        await presence_edus.receive(origin, content, rooms=self.rooms, sync=self.sync)

    async def _room(self, room_id: Any) -> Any:
        """The room, or None when ``room_id`` names no room we know."""
        if not _plausible_id(room_id, "!"):
            return None
        try:
            return await self.rooms.get_room(room_id)
        except NotFound:
            return None

    async def _joined(self, room_id: Any, user_id: str) -> bool:
        room = await self._room(room_id)
        return room is not None and room.membership(user_id) == "join"

    async def _acl_denied(self, origin: str, room_id: Any) -> bool:
        """Server ACLs: the room's current ACL denies the sending server."""
        room = await self._room(room_id)
        if room is None or acl_check.server_allowed(room, origin):
            return False
        log.info("event=edu_acl_denied origin=%s room=%s", origin, room_id)
        return True

    async def typing(self, origin: str, content: Any) -> None:
        if not isinstance(content, dict) or self.sync is None:
            return
        user_id, room_id = content.get("user_id"), content.get("room_id")
        if (
            not isinstance(user_id, str)
            or _domain(user_id) != origin
            or not isinstance(content.get("typing"), bool)
        ):
            return
        if await self._acl_denied(origin, room_id):
            return
        if not await self._joined(room_id, user_id):
            return
        self.sync.typing.set_typing(room_id, user_id, content["typing"], TYPING_TIMEOUT_MS)

    async def receipt(self, origin: str, content: Any) -> None:
        if not isinstance(content, dict) or self.sync is None:
            return
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict):
                continue
            by_user = by_type.get("m.read")
            if not isinstance(by_user, dict):
                continue
            if await self._acl_denied(origin, room_id):
                continue
            for user_id, receipt in by_user.items():
                if _domain(user_id) != origin or not isinstance(receipt, dict):
                    continue
                event_ids = receipt.get("event_ids")
                if (
                    not isinstance(event_ids, list)
                    or not event_ids
                    or not all(is_valid_event_id(e) for e in event_ids[:10])
                ):
                    continue
                if not await self._joined(room_id, user_id):
                    continue
                found = receipt.get("data")
                data = found if isinstance(found, dict) else {}
                thread_id = data.get("thread_id") or None
                if thread_id is not None and not (
                    thread_id == "main" or is_valid_event_id(thread_id)
                ):
                    continue  # "main" or a thread root's event ID
                for event_id in event_ids[:10]:
                    ev = await self.rooms.get_event(event_id)
                    if ev is None or ev.room_id != room_id:
                        continue
                    await self.sync.receipts.set_receipt(
                        room_id, "m.read", user_id, event_id, thread_id
                    )
