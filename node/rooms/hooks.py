"""The rooms area's extension point for federation: ``RoomHooks``.

A node that federates does some room work through other servers: joins, knocks, invites
and leaves of rooms that live elsewhere (server-server API "Joining Rooms", "Knocking",
"Inviting", "Leaving Rooms"), the stripped state of a room known only from a remote
invite, older history fetched by backfill, the event nearest a time when our copy of the
history has a gap there (client-server API "GET /timestamp_to_event"), the children of a
space that only another server knows (client-server API "Spaces") and other servers'
aliases and published rooms (client-server API "Room aliases", "Listing rooms").  That
work lives in ``node.federation``, which sits above ``node.rooms`` in the layer order, so
rooms cannot import it.  Instead rooms declares here, as Protocols, exactly the calls it
makes, and holds one ``RoomHooks`` whose fields are ``None`` until the composition root
hands the federation's implementations over with ``RoomService.attach_federation``.  A
field left ``None`` means "this node does not federate that part": every caller then does
the local thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from federation.events.model import Event

    from .state_cache import RoomState


class RemoteMembership(Protocol):
    """Membership changes that may need another server (the federation's handshakes).

    Each call also covers the purely local case, so a caller that has this hook uses it
    for every such request."""

    async def join_room(
        self,
        user_id: str,
        room_id_or_alias: str,
        via: Sequence[str] = (),
        reason: str | None = None,
    ) -> str: ...

    async def knock_room(
        self,
        user_id: str,
        room_id_or_alias: str,
        via: Sequence[str] = (),
        reason: str | None = None,
    ) -> str: ...

    async def invite_user(
        self,
        sender: str,
        room_id: str,
        target: str,
        reason: str | None = None,
        *,
        is_direct: bool = False,
    ) -> None: ...

    async def leave_room(self, user_id: str, room_id: str, reason: str | None = None) -> None: ...

    def check_invitable(self, target: str) -> None:
        """Raise the error an invite of ``target`` would certainly meet before any room
        exists (403 for a server this node may not contact); createRoom asks first."""
        ...


class OutOfBandState(Protocol):
    """The stripped state of a room known only through a remote invite or knock (the
    inviting server's ``invite_room_state``), plus ``extra``; None when nothing is known."""

    async def __call__(self, room: RoomState, extra: list[Event]) -> list[dict] | None: ...


class Backfill(Protocol):
    """Fetch up to about ``limit`` older events of a room from a server in it; how many new
    events were stored (0: nothing more to read)."""

    async def __call__(self, room_id: str, limit: int) -> int: ...


class RemoteTimestamp(Protocol):
    """The event nearest to ``ts`` in direction ``dir`` (``"f"``/``"b"``) as the room's
    other servers know it (server-server API ``GET /timestamp_to_event``), fetched,
    checked and stored here; None when no server had one."""

    async def __call__(self, room_id: str, ts: int, direction: str) -> Event | None: ...


class RemoteSpaceRoom(Protocol):
    """A room known only from another server's ``/hierarchy`` answer, as the client
    ``/hierarchy`` walk reads it."""

    room_id: str
    room_type: str | None
    summary: dict

    def children(self, suggested_only: bool) -> list[dict]: ...

    def visible_to(self, joined_rooms: set[str]) -> bool: ...


class RemoteHierarchy(Protocol):
    """Space children this node does not know, asked of the ``via`` servers."""

    def cached(
        self, room_id: str, suggested_only: bool, parent: Any = None
    ) -> tuple[bool, RemoteSpaceRoom | None]:
        """(hit, room) without any request; ``parent`` is the remote room whose answer
        may already describe ``room_id``."""
        ...

    async def fetch(
        self, room_id: str, via: list[str], suggested_only: bool
    ) -> RemoteSpaceRoom | None:
        """Ask the ``via`` servers; never raises for network or remote errors."""
        ...


class RemoteDirectory(Protocol):
    """Another server's room directory, asked over federation: its aliases
    (``query/directory``) and its published rooms (``publicRooms``).  Both raise
    ``MatrixError`` for the client (404 unknown alias, 403 a server the node may not
    contact, 502 an unreachable or failing server)."""

    async def resolve_alias(self, alias: str) -> dict:
        """``{"room_id", "servers"}`` of a remote alias."""
        ...

    async def public_rooms(
        self,
        server: str,
        *,
        limit: int | None,
        since: str | None,
        search_term: str | None = None,
        room_types: Sequence[str | None] | None = None,
    ) -> dict:
        """One page of ``server``'s published room directory, as the client API answers."""
        ...


@dataclass(slots=True)
class RoomHooks:
    """What the rooms area may hand to the federation; ``None``: done locally or not at all."""

    membership: RemoteMembership | None = None
    out_of_band_state: OutOfBandState | None = None
    backfill: Backfill | None = None
    remote_hierarchy: RemoteHierarchy | None = None
    remote_directory: RemoteDirectory | None = None
    timestamp_to_event: RemoteTimestamp | None = None
