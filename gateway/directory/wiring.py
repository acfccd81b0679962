"""Composition of the city directory services on a built gateway (``gateway.app``).

``wire(gw, services)`` builds the ``DirectoryGatherer`` on the node's outbound federation
client (``services.federation.fctx.client``: X-Matrix signed, behind the roster policy),
the ``CityStatusSource`` (dashboard status columns) and the ``DirectorInviter``; sets
``gw.directory``, ``gw.gatherer``, ``gw.status_source`` and ``gw.public_rooms``; registers
the routes of ``directory.api``; and starts the periodic gathering
(``gateway.directory_refresh_seconds``) once the reactor runs.  Without federation (it is
disabled in the config) the room directory still lists the gateway's own rooms and the
status shows what the roster acknowledgements give.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..status import CityStatusSource, ContactTracker
from .api import CityDirectory, register
from .directors import DirectorInviter
from .gatherer import DirectoryGatherer
from .staff import CityStaff, register_route

if TYPE_CHECKING:
    from node.app import NodeServices

log = logging.getLogger("parta.gateway.directory")


class _NoClient:
    """Federation is off: every gathering fails with a clear reason."""

    async def request(self, destination: str, *args: Any, **kw: Any) -> Any:
        raise RuntimeError("federation is disabled on this gateway")

    request_ok = request


def wire(gw: Any, services: NodeServices, router: Any, db: Any = None) -> DirectoryGatherer:
    federation = services.federation
    fctx = federation.fctx
    client = fctx.client if fctx is not None and fctx.config.enabled else _NoClient()

    async def members() -> list[str]:
        doc = await gw.roster.current()
        return list((doc or {}).get("servers", {}))

    gatherer = DirectoryGatherer(
        client=client,
        clock=gw.clock,
        server_name=gw.server_name,
        members=members,
        interval_s=gw.gw_config.directory_refresh_seconds,
    )
    contacts = ContactTracker(gw.clock)
    if fctx is not None:
        fctx.routes.authenticator.observers.append(contacts)
    gw.contacts = contacts
    gw.gatherer = gatherer
    gw.public_rooms = gatherer
    gw.status_source = CityStatusSource(
        db=db if fctx is not None else None,
        contacts=contacts,
        acks=gw.roster_acks,
        gatherer=gatherer,
        own_server=gw.server_name,
    )
    gw.directory = CityDirectory(gw, gatherer, services.rooms)
    register(router, gw, gw.directory)

    # The city staff directory: verified attestations from the schools' stats answers.
    gw.staff = staff = CityStaff(roster=services.accounts.attestations.roster, clock=gw.clock)
    gatherer.on_stats.append(staff.on_stats)
    if fctx is not None:
        register_route(fctx.routes, staff)

    membership = federation.membership
    if membership is not None:
        gw.director_inviter = inviter = _inviter(gw, membership, services.rooms)
        gatherer.on_stats.append(inviter.on_stats)

    reactor = gw.reactor
    if (
        reactor is not None
        and hasattr(reactor, "callWhenRunning")
        and fctx is not None
        and fctx.config.enabled
    ):
        reactor.callWhenRunning(gatherer.start, reactor)
        reactor.addSystemEventTrigger("before", "shutdown", gatherer.stop)
    return gatherer


def _inviter(gw: Any, membership: Any, rooms: Any) -> DirectorInviter:
    cfg = gw.gw_config

    def city_rooms() -> list[str]:
        return [
            gw.city_rooms.get(f"#{alias}:{gw.server_name}", "")
            for alias in (cfg.directors_alias, cfg.announcements_alias)
        ]

    async def server_class(server: str) -> str | None:
        doc = await gw.roster.current()
        return ((doc or {}).get("servers", {}).get(server) or {}).get("class")

    return DirectorInviter(
        membership=membership,
        rooms=rooms,
        inviter=lambda: gw.accounts.user_id_for(cfg.admin_localpart),
        city_rooms=city_rooms,
        server_class=server_class,
    )
