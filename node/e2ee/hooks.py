"""What the E2EE area needs from the areas around it, stated as Protocols.

The federation area sits above ``node.e2ee`` (it serves our keys to other servers), so
the e2ee area may not import it: the federation wiring hands a ``RemoteKeys``
implementation over with ``E2eeService.attach_federation`` (remote ``user/keys/query``
and ``claim``, EDUs through the outbound queue).  Until then remote users are answered
as unreachable in ``failures``.  The rooms area is below: ``RoomsView`` names the part
of ``RoomService`` used here, so tests can hand in a small fake.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence


class RemoteKeys(Protocol):
    async def query_keys(
        self, destination: str, device_keys: dict[str, list[str]], timeout_s: float
    ) -> dict:
        """The remote ``user/keys/query`` answer; raises when the server is unreachable."""
        ...

    async def claim_keys(
        self, destination: str, one_time_keys: dict[str, dict[str, str]], timeout_s: float
    ) -> dict:
        """The remote ``user/keys/claim`` answer; raises when the server is unreachable."""
        ...

    def send_edu(self, destinations: Iterable[str], edu_type: str, content: dict) -> None:
        """Queue an EDU for each destination (best effort, never raises)."""
        ...


class RoomView(Protocol):
    joined: set[str]


class RoomsView(Protocol):
    async def get_rooms_for_user(
        self, user_id: str, memberships: Sequence[str] | None = None
    ) -> list[tuple[str, str, Any]]: ...

    async def get_room(self, room_id: str) -> Any: ...


class UsersNotifier(Protocol):
    def notify_users(
        self, user_ids: Iterable[str], stream: str, position: int | None = None
    ) -> None: ...

    def set_current(self, stream: str, position: int) -> None: ...
