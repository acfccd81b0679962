"""User directory search (client-server API "User Directory", ``users.yaml``).

The spec's minimum: users sharing a room with the requester, and users joined to rooms with a
``public`` join rule or ``world_readable`` history.  A school node also lists its own users
(the school directory, from the accounts area), and, in a city, the city staff directory:
other schools' directors, deputies and opted-in teachers whose role attestations verify
(``CityStaffSource``, attached by the federation area; docs/people.md).  Matching is
case-insensitive on the user ID and display name.  Results are ranked: prefix matches first,
then users with a display name.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import queries

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_REMOTE_SCAN = 2000
_OPEN_ROOMS_TTL_MS = 10_000


def _matches(term: str, user_id: str, display_name: str | None) -> bool:
    if term in user_id.lower():
        return True
    if not display_name:
        return False
    return term in display_name.lower()


def _rank(term: str, item: dict) -> tuple:
    localpart = item["user_id"][1:].split(":", 1)[0].lower()
    name = (item.get("display_name") or "").lower()
    words = name.split()
    if localpart == term or name == term:
        prefix = 0
    elif (
        localpart.startswith(term)
        or name.startswith(term)
        or any(w.startswith(term) for w in words)
    ):
        prefix = 1
    else:
        prefix = 2
    return (prefix, 0 if item.get("display_name") else 1, item["user_id"])


class CityStaffSource(Protocol):
    """Other schools' verified staff matching a search term (the federation area asks the
    city gateway; bounded and cached there)."""

    async def search(self, term: str, limit: int) -> list[dict]:
        """User directory items (``user_id``, ``display_name``); empty when unavailable."""
        ...


class UserDirectory:
    def __init__(
        self, db: Any, accounts: Any, rooms: Any, server_name: str, clock: Any = None
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.rooms = rooms
        self.server_name = server_name
        self.clock = clock
        self._open_rooms: tuple[int, set[str]] | None = None  # (expiry ms, room IDs)
        self.city: CityStaffSource | None = None

    def attach_city(self, source: CityStaffSource) -> None:
        """Called once by the federation's wiring of an enrolled node."""
        self.city = source

    async def _rooms_open_to_all(self) -> set[str]:
        """Rooms with a ``public`` join rule or ``world_readable`` history (cached briefly:
        clients search as the user types)."""
        now = self.clock.time_ms() if self.clock is not None else None
        if self._open_rooms is not None and now is not None and now < self._open_rooms[0]:
            return self._open_rooms[1]
        join_rules = await self.db.run(queries.room_state_contents, "m.room.join_rules")
        out = {r for r, c in join_rules.items() if c.get("join_rule") == "public"}
        history = await self.db.run(queries.room_state_contents, "m.room.history_visibility")
        out.update(r for r, c in history.items() if c.get("history_visibility") == "world_readable")
        if now is not None:
            self._open_rooms = (now + _OPEN_ROOMS_TTL_MS, out)
        return out

    async def _visible_rooms(self, user_id: str) -> set[str]:
        visible = set(await self.rooms.joined_room_ids(user_id))
        visible |= await self._rooms_open_to_all()
        return visible

    async def search(self, user_id: str, term: str, limit: int = DEFAULT_LIMIT) -> dict:
        limit = max(1, min(limit, MAX_LIMIT))
        needle = term.strip().lower()
        found: dict[str, dict] = {}
        if self.accounts is not None:
            for item in await self.accounts.search_users(term.strip(), limit + 1):
                found[item["user_id"]] = item
        # Users of other servers met in shared or public rooms (federation, later issues).
        rooms = await self._visible_rooms(user_id)
        if rooms and needle:
            for uid, content in await self.db.run(
                queries.joined_members_not_on, sorted(rooms), self.server_name, _REMOTE_SCAN
            ):
                name = content.get("displayname")
                name = name if isinstance(name, str) else None
                if uid in found or not _matches(needle, uid, name):
                    continue
                item = {"user_id": uid}
                if name:
                    item["display_name"] = name
                avatar = content.get("avatar_url")
                if isinstance(avatar, str) and avatar.startswith("mxc://"):
                    item["avatar_url"] = avatar
                found[uid] = item
        if self.city is not None and needle:
            for item in await self.city.search(term.strip(), limit):
                found.setdefault(item["user_id"], item)
        ranked = sorted(found.values(), key=lambda it: _rank(needle, it))
        return {"results": ranked[:limit], "limited": len(ranked) > limit}
