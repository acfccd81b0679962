"""Where the dashboard's per-school live data comes from: interfaces with honest empty
defaults; a running gateway uses ``gateway.status.CityStatusSource`` and the directory
gatherer (``gateway.directory.gatherer``) wired by ``gateway.directory.wiring``.

``SchoolStatusSource``: what the gateway knows of each school from federation traffic — last
contact, outbound queue depth, roster version the school acknowledged, the users/rooms counts
it publishes.  ``PublicRoomsSource``: a school's public rooms (gathered over federation
``publicRooms``).  A ``None`` field means "no data source", shown as "—" on the dashboard,
never as a made-up zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol


@dataclass(frozen=True)
class SchoolStatus:
    last_contact_ts: int | None = None  # ms; last federation request from/to it
    outbound_queue_depth: int | None = None  # PDUs/EDUs waiting to be sent to it
    roster_version_acked: int | None = None  # roster version the school reported using
    user_count: int | None = None  # as published by the school
    room_count: int | None = None
    report_count: int | None = None  # content reports made by its users (moderation)


UNKNOWN = SchoolStatus()


class SchoolStatusSource(Protocol):
    async def status_of(self, server_names: Iterable[str]) -> dict[str, SchoolStatus]:
        """Status by server name; servers without data may be left out."""
        ...


class PublicRoomsSource(Protocol):
    async def public_rooms(self, server_name: str) -> list[dict] | None:
        """The school's public rooms in the client ``publicRooms`` chunk format
        (``room_id``, ``name``, ``topic``, ``canonical_alias``, ``num_joined_members``), or
        None when they have not been gathered."""
        ...


class NoStatusSource:
    """Until federation exists: no status for anyone."""

    async def status_of(self, server_names: Iterable[str]) -> dict[str, SchoolStatus]:
        return {}


class NoPublicRoomsSource:
    async def public_rooms(self, server_name: str) -> list[dict] | None:
        return None
