"""Inviting each enrolled school's directors to the city rooms.

A school announces its directors in its ``/_parta/v1/stats`` answer (accounts with role
``director`` on its own server; ``gatherer.clean_stats`` drops anything else).  After each
answer ``DirectorInviter.on_stats`` invites every announced director who has no membership
yet in the directors' room and in the announcements room (read-only for them: its
``events_default`` is above a director's level), as the city office admin, through the
federation invite handshake (``MembershipService.invite_user``: ``PUT /invite`` v2 on the
school, countersigned).  The room state is the record: a director who is already invited,
joined, or who left or declined is not invited again; a failed invite is tried again at
the next gathering.  Only servers of class ``school`` in the current roster qualify.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger("parta.gateway.directory")

MEMBER = "m.room.member"


class DirectorInviter:
    def __init__(
        self,
        *,
        membership: Any,
        rooms: Any,
        inviter: Callable[[], str],
        city_rooms: Callable[[], list[str]],
        server_class: Callable[[str], Awaitable[str | None]],
    ) -> None:
        self.membership = membership
        self.rooms = rooms
        self.inviter = inviter
        self.city_rooms = city_rooms
        self.server_class = server_class
        self.invited: list[tuple[str, str]] = []  # (room_id, user_id), this process
        self._busy: set[tuple[str, str]] = set()

    async def _membership_of(self, room_id: str, user_id: str) -> str | None:
        state = await self.rooms.get_current_state(room_id)
        ev = state.get((MEMBER, user_id))
        return ev.content.get("membership") if ev is not None else None

    async def on_stats(self, server: str, stats: dict) -> None:
        directors = stats.get("directors") or []
        room_ids = [r for r in self.city_rooms() if r]
        if not directors or not room_ids:
            return
        if await self.server_class(server) != "school":
            return
        sender = self.inviter()
        for room_id in room_ids:
            for user_id in directors:
                key = (room_id, user_id)
                if key in self._busy:
                    continue
                self._busy.add(key)
                try:
                    if await self._membership_of(room_id, user_id) is not None:
                        continue
                    await self.membership.invite_user(sender, room_id, user_id)
                    self.invited.append(key)
                    log.info("event=director_invited room_id=%s user_id=%s", room_id, user_id)
                except Exception as exc:  # noqa: BLE001 - tried again at the next gathering
                    log.warning(
                        "event=director_invite_failed room_id=%s user_id=%s error=%s",
                        room_id,
                        user_id,
                        getattr(exc, "message", None) or exc,
                    )
                finally:
                    self._busy.discard(key)
