"""The deprecated sync API (client-server API ``old_sync.yaml``, ``room_initial_sync.yaml``,
``peeking_events.yaml``): ``GET /initialSync``, ``GET /events``, ``GET /events/{eventId}``
and ``GET /rooms/{roomId}/initialSync``.  Some clients and bots still call them.

Everything is built from the same parts as ``/sync``, so the same rules hold: history
visibility for every event (``node.rooms.pagination.paginate`` for message chunks,
``filter_events_for_user`` elsewhere), presence only where ``node/sync/presence.py``
allows it, and long polls on the notifier with a capped ``timeout`` (never blocking the
reactor).  Tokens are sync tokens, so ``end`` of ``/initialSync`` feeds ``/events``.

* ``/initialSync``: the user's joined and invited rooms (``archived=true``: left and
  banned ones as well, as they were when the user left), each with ``messages`` (the
  latest ``limit`` events, oldest first, ``start`` to page back with ``/messages``),
  ``state``, ``visibility`` and the room's ``account_data``; the global account data
  and presence.  At most ``MAX_ROOMS`` rooms.
* ``/events`` without ``room_id``: new events of the user's rooms after ``from`` (an
  incremental ``/sync`` flattened into one ``chunk``, each event with its ``room_id``;
  presence events too); without ``from``, from now on.
* ``/events?room_id=`` (peeking): the same for one room the user may read (a member, a
  past member, or a ``world_readable`` room; else 403 ``M_FORBIDDEN``).
"""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden, MatrixError, NotFound
from federation.events.model import Event
from node.filtering import parse_filter
from node.rooms.access import may_read_history, room_view
from node.rooms.event_meta import meta
from node.rooms.pagination import paginate
from node.stream_tokens import StreamToken, parse_sync_token

from .handler import SyncParams
from .ignored import hidden_invite

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ROOMS = 500
MAX_TIMEOUT_MS = 120_000
EVENTS_BATCH = 100
_EVENTS_FILTER = parse_filter({"room": {"timeline": {"limit": EVENTS_BATCH}}})


class OldSync:
    def __init__(self, service: Any) -> None:
        self.sync = service
        self.rooms = service.rooms

    # --- helpers ----------------------------------------------------------------------
    def _fmt(self, ev: Event, requester: Any) -> dict:
        return self.rooms.format_client_event(ev, requester=requester)

    def current_token(self) -> StreamToken:
        presence = self.sync.handler.presence
        return self.sync.notifier.current_token().copy_with(
            events=self.rooms.current_stream_ordering(),
            presence=presence.serial if presence is not None else 0,
        )

    async def _presence(self, user_id: str) -> list[dict]:
        presence = self.sync.handler.presence
        if presence is None:
            return []
        return await presence.sync_events(user_id, None, presence.serial)

    async def _messages(self, requester: Any, room_id: str, limit: int) -> dict[str, Any]:
        page = await paginate(
            self.rooms,
            requester.user_id,
            room_id,
            from_token=None,
            to_token=None,
            direction="b",
            limit=limit,
        )
        out: dict[str, Any] = {
            "chunk": [self._fmt(ev, requester) for ev in reversed(page.chunk)],
            "end": page.start,
        }
        if page.end is not None:
            out["start"] = page.end
        return out

    async def _room_info(
        self, requester: Any, room_id: str, membership: str, member_ev: Event, limit: int
    ) -> dict[str, Any]:
        info: dict[str, Any] = {"room_id": room_id, "membership": membership}
        if membership == "invite":
            info["invite"] = self._fmt(member_ev, requester)
            return info
        view = await room_view(self.rooms, requester.user_id, room_id)
        state = await view.state(self.rooms)
        info["state"] = [self._fmt(ev, requester) for ev in state.values()]
        info["messages"] = await self._messages(requester, room_id, limit)
        info["visibility"] = "public" if view.room.is_public else "private"
        return info

    # --- GET /initialSync -------------------------------------------------------------
    async def initial_sync(self, requester: Any, limit: int, archived: bool) -> dict[str, Any]:
        user_id = requester.user_id
        end = self.current_token()
        wanted = ["join", "invite"] + (["leave", "ban"] if archived else [])
        rows = await self.rooms.get_rooms_for_user(user_id, wanted)
        global_ad, room_ad = await self.sync.account_data.changes_since(user_id, 0)
        rooms = []
        ignored = self.rooms.ignored.of(user_id)
        for room_id, membership, ev in rows[:MAX_ROOMS]:
            if membership == "invite" and hidden_invite(ev, ignored):  # sync/ignored.py
                continue
            try:
                info = await self._room_info(requester, room_id, membership, ev, limit)
            except MatrixError:
                continue  # e.g. a room known only from a remote invite
            if membership != "invite":
                info["account_data"] = room_ad.get(room_id, [])
            rooms.append(info)
        return {
            "end": str(end),
            "rooms": rooms,
            "presence": await self._presence(user_id),
            "account_data": global_ad,
        }

    # --- GET /rooms/{roomId}/initialSync ----------------------------------------------
    async def room_initial_sync(self, requester: Any, room_id: str, limit: int) -> dict:
        user_id = requester.user_id
        view = await room_view(self.rooms, user_id, room_id)  # 403 for outsiders
        membership = view.room.membership(user_id)
        state = await view.state(self.rooms)
        _global, room_ad = await self.sync.account_data.changes_since(user_id, 0)
        members = {k[1] for k, ev in state.items() if k[0] == "m.room.member"}
        presence = [e for e in await self._presence(user_id) if e["sender"] in members]
        out: dict[str, Any] = {
            "room_id": room_id,
            "state": [self._fmt(ev, requester) for ev in state.values()],
            "messages": await self._messages(requester, room_id, limit),
            "presence": presence,
            "account_data": room_ad.get(room_id, []),
            "visibility": "public" if view.room.is_public else "private",
        }
        if membership is not None:
            out["membership"] = membership
        return out

    # --- GET /events/{eventId} --------------------------------------------------------
    async def get_event(self, requester: Any, event_id: str) -> dict:
        not_found = NotFound("Event not found.")
        ev = await self.rooms.get_event(event_id)
        if ev is None or ev.rejected_reason is not None or meta(ev).outlier:
            raise not_found
        try:
            await may_read_history(self.rooms, requester.user_id, ev.room_id)
        except MatrixError:
            raise not_found from None
        if not await self.rooms.filter_events_for_user(requester.user_id, ev.room_id, [ev]):
            raise not_found
        return self._fmt(ev, requester)

    # --- GET /events ------------------------------------------------------------------
    async def events(
        self, requester: Any, from_token: str | None, timeout_ms: int, room_id: str | None
    ) -> dict:
        since = parse_sync_token(from_token) if from_token else self.current_token()
        start = from_token or str(since)
        timeout_ms = max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        if room_id is not None:
            return await self._peek(requester, room_id, since, start, timeout_ms)
        params = SyncParams(
            requester=requester, filter=_EVENTS_FILTER, since=since, timeout_ms=timeout_ms
        )
        body = await self.sync.handler.sync(params)
        chunk: list[dict] = []
        for section in ("join", "leave"):
            for rid, entry in body["rooms"][section].items():
                for ev in entry.get("timeline", {}).get("events", []):
                    chunk.append({**ev, "room_id": rid})
        for rid, entry in body["rooms"]["join"].items():
            for ev in entry.get("ephemeral", {}).get("events", []):
                chunk.append({**ev, "room_id": rid})
        chunk.extend(body["presence"]["events"])
        return {"start": start, "end": body["next_batch"], "chunk": chunk}

    async def _peek(
        self, requester: Any, room_id: str, since: StreamToken, start: str, timeout_ms: int
    ) -> dict:
        user_id = requester.user_id
        try:
            await may_read_history(self.rooms, user_id, room_id)
        except MatrixError:
            raise Forbidden("You may not peek into this room") from None
        upper = self.current_token()
        evs, end = await self._room_events(user_id, room_id, since, upper)
        if not evs and timeout_ms > 0:
            woken = await self.sync.notifier.wait(user_id, [room_id], upper, timeout_ms)
            if woken:
                upper = self.current_token()
                evs, end = await self._room_events(user_id, room_id, since, upper)
        chunk = [self._fmt(ev, requester) for ev in evs]
        return {"start": start, "end": str(end), "chunk": chunk}

    async def _room_events(
        self, user_id: str, room_id: str, since: StreamToken, upper: StreamToken
    ) -> tuple[list[Event], StreamToken]:
        """The visible events in (since, upper] (at most a batch) and the token after them."""
        if upper.events <= since.events:
            return [], since
        evs = await self.rooms.get_events_in_range(
            room_id, since.events, upper.events, EVENTS_BATCH, "f"
        )
        end = upper
        if len(evs) >= EVENTS_BATCH:  # more to come: continue after the last one
            end = upper.copy_with(events=meta(evs[-1]).stream_ordering or since.events)
        visible = await self.rooms.filter_events_for_user(user_id, room_id, evs)
        return self.rooms.ignored.visible_to(user_id, visible), end  # sync/ignored.py
