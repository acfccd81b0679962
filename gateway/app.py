"""The gateway process: a node (``node.app``) plus the city services as one extra area.

``gateway_area(config)`` returns the ``fn(ctx, services)`` that ``node.app.build_node``
runs after the node's own areas: it builds the ``Gateway`` (roster service, dashboard
sessions, status sources), adds the ``/_parta/v1`` API and the dashboard to the client
router and, once the reactor runs, creates the city rooms (first run) and starts the
periodic roster re-signing.  ``run(config)`` is ``parta gateway run``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import defer, task

from .config import GatewayConfig, gateway_config
from .dashboard.sessions import SessionStore
from .roster import RosterService
from .roster_key import load_roster_key
from .sources import NoPublicRoomsSource, NoStatusSource

if TYPE_CHECKING:
    from node.app import NodeServices

    from .directory.api import CityDirectory
    from .directory.directors import DirectorInviter
    from .directory.gatherer import DirectoryGatherer
    from .directory.staff import CityStaff
    from .roster_enforcement import GatewayRoster, RosterAcks
    from .status import ContactTracker

log = logging.getLogger("parta.gateway")


class Gateway:
    """The city services of one gateway and what they need from the node."""

    def __init__(
        self,
        *,
        config: Any,
        gw_config: GatewayConfig,
        roster: RosterService,
        accounts: Any,
        rooms: Any = None,
        clock: Any,
        reactor: Any = None,
        status_source: Any = None,
        public_rooms: Any = None,
    ) -> None:
        self.config = config
        self.gw_config = gw_config
        self.server_name: str = config.server_name
        self.roster = roster
        self.accounts = accounts
        self.rooms = rooms
        self.clock = clock
        self.reactor = reactor
        # Empty until the federation wiring binds the real ones (roster_enforcement).
        self.status_source = status_source or NoStatusSource()
        self.public_rooms = public_rooms or NoPublicRoomsSource()
        self.sessions = SessionStore(clock, gw_config.dashboard_session_hours * 3600 * 1000)
        self.city_rooms: dict[str, str] = {}
        self._roster_listeners: list[Callable[[dict], None]] = []
        self._refresh: Any = None
        # Set once by the wiring, None until then and when that part is not wired:
        # roster_enforcement.wire (the acknowledged roster versions; the enforcer only
        # when the node's federation enforces a roster this gateway signs) and
        # directory.wiring.wire (directory, status contacts, gathering, directors).
        self.roster_acks: RosterAcks | None = None
        self.roster_enforcer: GatewayRoster | None = None
        self.directory: CityDirectory | None = None
        self.contacts: ContactTracker | None = None
        self.gatherer: DirectoryGatherer | None = None
        self.director_inviter: DirectorInviter | None = None
        self.staff: CityStaff | None = None  # the city staff directory (directory.staff)

    @property
    def public_baseurl(self) -> str:
        return self.config.public_baseurl

    @property
    def token_ttl_ms(self) -> int:
        return self.gw_config.token_ttl_ms

    @property
    def secure_cookies(self) -> bool:
        return self.public_baseurl.startswith("https://") or bool(
            self.config.client_listener.tls_certificate_path
        )

    # --- roster change notification (push hints to nodes hook in here later) ------------
    def add_roster_listener(self, fn: Callable[[dict], None]) -> None:
        self._roster_listeners.append(fn)

    def roster_changed(self, doc: dict) -> None:
        for fn in list(self._roster_listeners):
            try:
                fn(doc)
            except Exception:  # a listener must not break the request
                log.exception("roster listener failed")

    async def is_office_request(self, req: Any) -> bool:
        """A city office user: an access token of an office account, or a dashboard
        session cookie."""
        if req.requester is not None:
            return await self.accounts.get_role(req.requester.user_id) == "office"
        from .dashboard.common import session_of

        return session_of(self, req)[1] is not None

    # --- background work ----------------------------------------------------------------
    async def start(self) -> None:
        if self.rooms is not None:
            try:
                self.city_rooms = await _ensure_rooms(self)
            except Exception:  # the gateway still serves the roster
                log.exception("event=city_rooms_failed")
        if self.roster.roster_key is None:
            log.warning("event=roster_key_offline: serving the roster, not re-signing it")
            return
        self._refresh = task.LoopingCall(self._refresh_once)
        if self.reactor is not None:
            self._refresh.clock = self.reactor
        self._refresh.start(self.gw_config.roster_refresh_check_seconds, now=True)

    def _refresh_once(self) -> defer.Deferred:
        async def go() -> None:
            try:
                doc = await self.roster.refresh_if_due()
            except Exception:  # try again next time
                log.exception("event=roster_refresh_failed")
                return
            if doc is not None:
                log.info(
                    "event=roster_refreshed version=%s valid_until_ts=%s",
                    doc["version"],
                    doc["valid_until_ts"],
                )
                self.roster_changed(doc)

        return defer.ensureDeferred(go())

    def stop(self) -> None:
        if self._refresh is not None and self._refresh.running:
            self._refresh.stop()


async def _ensure_rooms(gw: Gateway) -> dict[str, str]:
    from .city_rooms import ensure_city_rooms

    return await ensure_city_rooms(
        rooms=gw.rooms, accounts=gw.accounts, config=gw.config, gw_config=gw.gw_config
    )


def build_gateway(ctx: Any, services: NodeServices, gw_config: GatewayConfig) -> Gateway:
    """The ``Gateway`` on a built node context, with its routes added."""
    from . import api, dashboard

    roster_key, verify_key = load_roster_key(gw_config.roster_key_path)
    roster = RosterService(
        ctx.db,
        ctx.clock,
        ctx.server_name,
        roster_key,
        gw_config.roster_validity_ms,
        roster_verify_key=verify_key,
        token_ttl_ms=gw_config.token_ttl_ms,
    )
    gw = Gateway(
        config=ctx.config,
        gw_config=gw_config,
        roster=roster,
        accounts=services.accounts,
        rooms=services.rooms,
        clock=ctx.clock,
        reactor=ctx.reactor,
    )
    api.register(ctx.router, gw)
    from .roster_enforcement import wire as wire_roster

    wire_roster(gw, services.federation)  # own roster, hints, acks
    from .directory.wiring import wire as wire_directory

    wire_directory(gw, services, ctx.router, ctx.db)  # room directory, status, directors
    if gw_config.dashboard_enabled:
        dashboard.register(ctx.router, gw)
    return gw


def gateway_area(config: Any) -> Callable[[Any, NodeServices], Gateway]:
    gw_config = gateway_config(config)

    def area(ctx: Any, services: NodeServices) -> Gateway:
        gw = build_gateway(ctx, services, gw_config)
        reactor = ctx.reactor
        if hasattr(reactor, "callWhenRunning"):
            reactor.callWhenRunning(lambda: defer.ensureDeferred(gw.start()))
            reactor.addSystemEventTrigger("before", "shutdown", gw.stop)
        return gw

    return area


def run(config: Any) -> int:
    """``parta gateway run``: the node's runner with the gateway area."""
    from node.app import StartupError
    from node.app import run as run_node

    from .roster_key import RosterKeyError

    try:
        area = gateway_area(config)
        load_roster_key(gateway_config(config).roster_key_path)  # fail early, one line
    except RosterKeyError as exc:
        raise StartupError(str(exc)) from None
    return run_node(config, extra_areas=[area])
