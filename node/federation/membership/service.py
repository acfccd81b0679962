"""``MembershipService``: the membership handshakes in both roles, and the client-API
operations that need them.

Resident side (federation endpoints, ``wiring.register``): ``on_make_join``,
``on_send_join``, ``on_invite``, ``on_make_leave``, ``on_send_leave``.

Client side (``node/rooms/api/membership.py`` calls these when federation is on):
``join_room`` (a room we are in: a normal join; otherwise the remote handshake,
``joining.py``), ``invite_user`` (a remote invitee: ``remote_invite.py``), ``leave_room``
(a room we are in: a normal leave; an out-of-band invite/knock: ``leaving.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

from federation.errors import InvalidParam, NotFound
from node.rooms import store as rooms_store

from ..roster_policy import refusal
from . import invite as invite_endpoint
from . import joining, knock, leaving, make_join, make_leave, remote_invite, send_join, send_leave
from .common import MEMBER, domain_of, local_members_joined
from .out_of_band import remote_invite_for

if TYPE_CHECKING:
    from federation.keys import SigningKey

    from ..ingest import Ingest

log = logging.getLogger("parta.federation.membership")


class MembershipService:
    def __init__(
        self,
        *,
        rooms: Any,
        accounts: Any,
        sender: Any,
        client: Any,
        keyring: Any,
        ingest: Ingest,
        state_store: Any,
        policy: Any,
        db: Any,
        clock: Any,
        server_name: str,
        signing_key: Callable[[], SigningKey],
    ) -> None:
        self.rooms = rooms
        self.accounts = accounts
        self.sender = sender
        self.client = client
        self.keyring = keyring
        self.ingest = ingest  # the inbound pipeline, for events other servers hand us
        self.state_store = state_store
        self.policy = policy
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self._signing_key = signing_key  # the current key: it changes when rotated

    @property
    def signing_key(self) -> SigningKey:
        """Our signing key now (``parta node keys rotate`` replaces it while running)."""
        return self._signing_key()

    # --- resident side --------------------------------------------------------------------
    async def on_make_join(
        self, origin: str, room_id: str, user_id: str, versions: Sequence[str]
    ) -> dict:
        return await make_join.make_join(self, origin, room_id, user_id, versions)

    async def on_send_join(self, origin: str, room_id: str, event_id: str, body: Any) -> dict:
        return await send_join.send_join(self, origin, room_id, event_id, body)

    async def on_invite(self, origin: str, room_id: str, event_id: str, body: Any) -> dict:
        return await invite_endpoint.invite(self, origin, room_id, event_id, body)

    async def on_make_leave(self, origin: str, room_id: str, user_id: str) -> dict:
        return await make_leave.make_leave(self, origin, room_id, user_id)

    async def on_send_leave(self, origin: str, room_id: str, event_id: str, body: Any) -> dict:
        return await send_leave.send_leave(self, origin, room_id, event_id, body)

    async def on_make_knock(
        self, origin: str, room_id: str, user_id: str, versions: Sequence[str]
    ) -> dict:
        return await knock.make_knock(self, origin, room_id, user_id, versions)

    async def on_send_knock(self, origin: str, room_id: str, event_id: str, body: Any) -> dict:
        return await knock.send_knock(self, origin, room_id, event_id, body)

    # --- client side ----------------------------------------------------------------------
    async def _room_or_none(self, room_id: str) -> Any:
        try:
            return await self.rooms.get_room(room_id)
        except NotFound:
            return None

    def _participating(self, room: Any) -> bool:
        return (
            room is not None
            and ("m.room.create", "") in room.state
            and local_members_joined(room, self.server_name)
        )

    async def _resolve(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """(room ID, servers from the alias lookup)."""
        if room_id_or_alias.startswith("#"):
            if domain_of(room_id_or_alias) == self.server_name:
                room_id = await self.db.run(rooms_store.alias_room_id, room_id_or_alias)
                if room_id is None:
                    raise NotFound(f"Room alias {room_id_or_alias} not found")
                return room_id, []
            return await joining.resolve_remote_alias(self, room_id_or_alias)
        if room_id_or_alias.startswith("!"):
            return room_id_or_alias, []
        raise InvalidParam(f"{room_id_or_alias!r} is neither a room ID nor a room alias")

    async def join_room(
        self,
        user_id: str,
        room_id_or_alias: str,
        via: Sequence[str] = (),
        reason: str | None = None,
    ) -> str:
        """``POST /join/{roomIdOrAlias}`` and ``/rooms/{roomId}/join``."""
        room_id, alias_servers = await self._resolve(room_id_or_alias)
        room = await self._room_or_none(room_id)
        # A room we are in, or one of ours nobody else is in: a normal join.
        if (
            room is not None
            and ("m.room.create", "") in room.state
            and (
                self._participating(room)
                or not any(domain_of(u) != self.server_name for u in room.joined)
            )
        ):
            await self.rooms.update_membership(user_id, room_id, user_id, "join", reason)
            return room_id
        inviter: list[str] = []
        row = await remote_invite_for(self.db, room_id, user_id)
        if row is not None:
            inviter.append(row["origin"])
        known = sorted({domain_of(u) for u in room.joined}) if room is not None else []
        room_server = [domain_of(room_id)] if ":" in room_id else []
        candidates = joining.ordered_candidates(
            self.server_name, self.policy, via, alias_servers, inviter, room_server, known
        )
        if not candidates and self.policy is not None:
            refused = [
                s
                for s in (*via, *alias_servers, *inviter, *room_server)
                if isinstance(s, str)
                and s
                and s != self.server_name
                and not self.policy.allow_outbound(s)
            ]
            if refused:
                raise refusal(self.policy, refused[0])
        content: dict = {}
        if self.accounts is not None:
            from node.rooms.create_ops import member_profile

            content.update(await member_profile(self.rooms, user_id))
        if reason:
            content["reason"] = reason
        return await joining.join_remote(self, user_id, room_id, candidates, content)

    async def knock_room(
        self,
        user_id: str,
        room_id_or_alias: str,
        via: Sequence[str] = (),
        reason: str | None = None,
    ) -> str:
        """``POST /knock/{roomIdOrAlias}``."""
        room_id, alias_servers = await self._resolve(room_id_or_alias)
        room = await self._room_or_none(room_id)
        if (
            room is not None
            and ("m.room.create", "") in room.state
            and (
                self._participating(room)
                or not any(domain_of(u) != self.server_name for u in room.joined)
            )
        ):
            await self.rooms.update_membership(user_id, room_id, user_id, "knock", reason)
            return room_id
        room_server = [domain_of(room_id)] if ":" in room_id else []
        known = sorted({domain_of(u) for u in room.joined}) if room is not None else []
        candidates = joining.ordered_candidates(
            self.server_name, self.policy, via, alias_servers, room_server, known
        )
        return await knock.knock_remote(self, user_id, room_id, candidates, reason)

    async def invite_user(
        self,
        sender: str,
        room_id: str,
        target: str,
        reason: str | None = None,
        *,
        is_direct: bool = False,
    ) -> None:
        """``POST /rooms/{roomId}/invite``, and ``POST /createRoom``'s invites of users on
        other servers (``is_direct``: the flag createRoom sets on its invites)."""
        if domain_of(target) == self.server_name:
            extra = {"is_direct": True} if is_direct else None
            await self.rooms.update_membership(
                sender, room_id, target, "invite", reason, extra_content=extra
            )
            return
        await remote_invite.invite_remote(
            self, sender, room_id, target, reason, is_direct=is_direct
        )

    def check_invitable(self, target: str) -> None:
        """createRoom's early check: a user of a server the policy refuses (the city
        roster) is refused before the room is created, not after."""
        server = domain_of(target)
        if (
            server != self.server_name
            and self.policy is not None
            and not self.policy.allow_outbound(server)
        ):
            raise refusal(self.policy, server)

    async def leave_room(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        """``POST /rooms/{roomId}/leave``."""
        room = await self._room_or_none(room_id)
        if room is None:
            await self.rooms.update_membership(user_id, room_id, user_id, "leave", reason)
            return
        current = room.state.get((MEMBER, user_id))
        membership = current.content.get("membership") if current is not None else None
        if ("m.room.create", "") in room.state or membership not in ("invite", "knock"):
            await self.rooms.update_membership(user_id, room_id, user_id, "leave", reason)
            return
        row = await remote_invite_for(self.db, room_id, user_id)
        candidates = joining.ordered_candidates(
            self.server_name,
            self.policy,
            [row["origin"]] if row else [],
            [domain_of(current.sender)],
            [domain_of(room_id)] if ":" in room_id else [],
        )
        await leaving.leave_out_of_band(self, user_id, room_id, current, candidates, reason)
