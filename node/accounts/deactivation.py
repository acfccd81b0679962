"""Account deactivation (client-server API "Account deactivation", account_deactivation.yaml).

What deactivating a user does, wherever it was asked for (``POST /account/deactivate`` or
``parta node user deactivate``):

1. In one transaction: the account is marked deactivated and every device and access token
   is deleted; with ``erase`` the profile (display name, avatar, other fields) is cleared.
   The account and its user ID stay: an ID is never handed out again.
2. The node's in-memory token cache forgets the user's tokens, so the next request with an
   old token is 401 ``M_UNKNOWN_TOKEN``; /login with the right password is 403
   ``M_USER_DEACTIVATED``, with a wrong one 403 ``M_FORBIDDEN``.
3. The user leaves every room they are joined to or knocking on and rejects every invite
   (the spec: the server should make the user leave rooms), through ``room_leaver`` which
   the composition root builds from the rooms service.  One room that fails is logged and
   the others still happen.

The CLI works on the database directly (step 1) while the node may be running, so the node
looks for newly deactivated accounts every ``SWEEP_SECONDS`` and does steps 2-3 for them;
at start-up it does step 3 for every deactivated account once (deactivations made while it
was stopped).

With ``erase`` the profile and account data are cleared and the erasure is recorded in the
same transaction (``erasure.py``); before leaving the rooms the leaver tells the rooms
service, which from then on serves the user's events redacted to those who could not see
them before (``node.rooms.erasure``).  The CLI's erasures are picked up by the sweep.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Protocol, Sequence

log = logging.getLogger("parta.accounts.deactivation")

SWEEP_SECONDS = 10.0
LEAVE_REASON = "Account deactivated"
RoomLeaver = Callable[[str], Awaitable[None]]


class RemoteLeaver(Protocol):
    """The federation's membership handshakes, as far as leaving goes."""

    async def leave_room(self, user_id: str, room_id: str, reason: str | None = None) -> None: ...


class LeaveHooks(Protocol):
    """The rooms service's federation hooks (``node.rooms.hooks.RoomHooks``): accounts may
    not import rooms, so it states the one field it reads."""

    @property
    def membership(self) -> RemoteLeaver | None: ...


class ErasureRegistry(Protocol):
    """The rooms service's erased senders (``node.rooms.erasure.ErasedSenders``)."""

    async def refresh(self, user_id: str) -> None: ...


class MemberRooms(Protocol):
    """What leaving every room needs of the rooms service (``node.rooms.RoomService``)."""

    @property
    def hooks(self) -> LeaveHooks: ...

    @property
    def erasure(self) -> ErasureRegistry: ...

    async def get_rooms_for_user(
        self, user_id: str, memberships: Sequence[str] | None = None
    ) -> list[tuple[str, str, Any]]: ...

    async def update_membership(
        self,
        sender: str,
        room_id: str,
        target: str,
        membership: str,
        reason: str | None = None,
    ) -> Any: ...


def make_room_leaver(rooms: MemberRooms) -> RoomLeaver:
    """``leave_all(user_id)`` over the rooms service: a leave for every joined, invited or
    knocked room (through the federation membership service when it is wired, as
    ``POST /rooms/{roomId}/leave`` does, so remote invites are rejected remotely)."""

    async def leave_all(user_id: str) -> None:
        # An erasure recorded with the deactivation takes effect before the leaves.
        await rooms.erasure.refresh(user_id)
        memberships = await rooms.get_rooms_for_user(user_id, ["join", "invite", "knock"])
        for room_id, _membership, _event in memberships:
            fed = rooms.hooks.membership
            try:
                if fed is not None:
                    await fed.leave_room(user_id, room_id, LEAVE_REASON)
                else:
                    await rooms.update_membership(user_id, room_id, user_id, "leave", LEAVE_REASON)
            except Exception:  # one room must not stop the others
                log.exception(
                    "event=deactivation_leave_failed user_id=%s room_id=%s", user_id, room_id
                )

    return leave_all


class DeactivationSweep:
    """Notices accounts deactivated behind the node's back (the CLI) and finishes them."""

    def __init__(self, accounts: Any) -> None:
        self._accounts = accounts
        self._known: set[str] | None = None  # None: not read yet (start-up catch-up)
        self._running = False

    async def run_once(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            from . import store

            current = await self._accounts.db.run(store.deactivated_user_ids)
            first = self._known is None
            new = current if first else current - self._known
            self._known = current
            for user_id in sorted(new):
                if not first:
                    log.info("event=user_deactivated_elsewhere user_id=%s", user_id)
                    self._accounts.forget_user_tokens(user_id)
                await self._accounts.leave_rooms(user_id)
        finally:
            self._running = False

    def note(self, user_id: str) -> None:
        """A deactivation done by this node: nothing left for the sweep to do."""
        if self._known is not None:
            self._known.add(user_id)
