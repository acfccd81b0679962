"""``SyncService``: the sync area's parts, plus the operations its endpoints share.

Holds the notifier, filters, typing, receipts, account data, user directory and the ``/sync``
handler.  Read markers (client-server API "Read and unread markers") live here because they
combine room account data (``m.fully_read``) and receipts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import Forbidden, InvalidParam, MatrixError, NotFound

from .account_data import AccountDataStore
from .filter_store import FilterStore
from .handler import SyncHandler
from .notifier import SyncNotifier
from .receipts import ReceiptStore
from .typing import TypingManager
from .user_directory import UserDirectory

if TYPE_CHECKING:
    from node.rooms.service import RoomService

MEMBER = "m.room.member"


class SyncService:
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        server_name: str,
        accounts: Any,
        rooms: RoomService,
        notifier: SyncNotifier,
    ) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.accounts = accounts
        self.rooms = rooms
        self.notifier = notifier
        self.filters = FilterStore(db)
        self.typing = TypingManager(clock, notifier)
        self.receipts = ReceiptStore(db, notifier, clock)
        self.account_data = AccountDataStore(db, notifier)
        self.directory = UserDirectory(db, accounts, rooms, server_name, clock)
        self.handler = SyncHandler(
            db=db,
            rooms=rooms,
            notifier=notifier,
            typing=self.typing,
            receipts=self.receipts,
            account_data=self.account_data,
            clock=clock,
        )
        # Read-only tap on the rooms area's persistence hook: recent events for woken syncs.
        rooms.persister.on_persisted.append(self._on_persisted)

    def _on_persisted(self, evs: Any) -> None:
        """After each committed batch: cache recent events; a member who is no longer
        joined stops typing."""
        self.handler.state.recent.on_persisted(evs)
        for ev in evs:
            if (
                ev.type == MEMBER
                and ev.content.get("membership") != "join"
                and ev.state_key in self.typing.typing_users_set(ev.room_id)
            ):
                self.typing.user_left(ev.room_id, ev.state_key)

    # --- checks shared by the endpoints -----------------------------------------------------
    @staticmethod
    def require_self(req: Any, user_id: str, what: str) -> None:
        if user_id != req.user_id:
            raise Forbidden(f"Cannot {what} for other users")

    async def require_joined(self, user_id: str, room_id: str) -> None:
        try:
            state = await self.handler.state.current_state(room_id)
        except NotFound:
            raise Forbidden("You are not in this room") from None
        ev = state.get((MEMBER, user_id))
        if ev is None or ev.content.get("membership") != "join":
            raise Forbidden("You are not in this room")

    async def require_event_in_room(self, room_id: str, event_id: str) -> None:
        if not isinstance(event_id, str) or not event_id.startswith("$"):
            raise InvalidParam("Invalid event ID")
        ev = await self.rooms.get_event(event_id)
        if ev is None or ev.room_id != room_id:
            raise NotFound("Event not found in this room")

    # --- receipts and read markers ----------------------------------------------------------
    async def send_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None = None,
    ) -> None:
        """``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` semantics."""
        if receipt_type not in ("m.read", "m.read.private", "m.fully_read"):
            raise InvalidParam(f"Unknown receipt type {receipt_type!r}")
        if thread_id is not None:
            if not isinstance(thread_id, str) or not thread_id:
                raise InvalidParam("thread_id field must be a non-empty string")
            if receipt_type == "m.fully_read":
                raise InvalidParam("thread_id is not allowed for m.fully_read")
            if thread_id != "main" and not thread_id.startswith("$"):
                raise InvalidParam("thread_id must be 'main' or an event ID")
        await self.require_joined(user_id, room_id)
        await self.require_event_in_room(room_id, event_id)
        if receipt_type == "m.fully_read":
            await self.account_data.set(user_id, room_id, "m.fully_read", {"event_id": event_id})
        else:
            await self.receipts.set_receipt(room_id, receipt_type, user_id, event_id, thread_id)

    async def set_read_markers(self, user_id: str, room_id: str, body: dict) -> None:
        """``POST /rooms/{roomId}/read_markers``: the fully read marker and/or receipts."""
        wanted = {}
        for key in ("m.fully_read", "m.read", "m.read.private"):
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise MatrixError(f"'{key}' must be an event ID", errcode="M_BAD_JSON")
            wanted[key] = value
        await self.require_joined(user_id, room_id)
        for event_id in set(wanted.values()):
            await self.require_event_in_room(room_id, event_id)
        if "m.fully_read" in wanted:
            await self.account_data.set(
                user_id, room_id, "m.fully_read", {"event_id": wanted["m.fully_read"]}
            )
        for rtype in ("m.read", "m.read.private"):
            if rtype in wanted:
                await self.receipts.set_receipt(room_id, rtype, user_id, wanted[rtype])
