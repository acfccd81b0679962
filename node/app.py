"""Composition root: builds the node's services and routes from a ``Config``, and runs it.

Areas and who owns them (each exposes ``wire(ctx, ...) -> Service`` in ``node/<area>/wiring.py``):
- ``node.accounts``: users, devices, access tokens, login/register/logout, profile, capabilities,
  versions, well-known; returns ``AccountsService`` (its ``authenticate`` feeds the HTTP layer).
- ``node.rooms``: event creation/persistence, room endpoints; returns ``RoomService``.
- ``node.sync``: notifier, sync, filters, typing, receipts, read markers, account data, user
  directory; returns ``SyncService``.
- ``node.media``: upload/download/thumbnail/config; returns ``MediaService``.
- ``node.federation``: the server-server API (own HTTPS listener); returns
  ``FederationService``.

Wiring order (fixed): accounts, notifier, rooms, sync, media, federation.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from federation.errors import MatrixError
from federation.keys import SigningKey, read_signing_keys

from . import metrics
from .clock import ReactorClock
from .config import Config
from .context import NodeContext
from .http.router import Router
from .http.server import ApiResource
from .ratelimit import RateLimiter, make_rate_limit_hook
from .startup import StartupError
from .storage.database import Database

if TYPE_CHECKING:
    from .accounts.service import AccountsService
    from .federation.wiring import FederationService
    from .media.service import MediaService
    from .rooms.service import RoomService
    from .sync.notifier import SyncNotifier
    from .sync.service import SyncService

log = logging.getLogger("parta.node")


@dataclass(frozen=True)
class NodeServices:
    """The node's services as an extra area (``build_node(extra_areas=...)``, e.g. the
    gateway) receives them."""

    accounts: AccountsService
    notifier: SyncNotifier
    rooms: RoomService
    sync: SyncService
    media: MediaService
    federation: FederationService


@dataclass
class Node:
    """A built node: its context and the services the CLI, tests and gateway may call."""

    ctx: Any
    accounts: Any
    rooms: Any
    sync: Any
    media: Any
    resource: Any  # the client API twisted.web resource
    metrics_resource: Any
    notifier: Any = None
    limiter: Any = None  # the per-user limiter of rate_limited routes
    extras: list = field(default_factory=list)  # what each extra area returned
    federation: Any = None  # node.federation.wiring.FederationService


def load_signing_key(path: str) -> SigningKey:
    try:
        with open(path, encoding="utf-8") as fh:
            return read_signing_keys(fh.read())[0]
    except FileNotFoundError:
        raise StartupError(f"signing key not found: {path} (run 'parta node init')") from None
    except MatrixError as exc:  # KeyFormatError
        raise StartupError(f"signing key {path}: {exc.message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"cannot read signing key {path}: {exc}") from None


def _health_route(router: Router) -> None:
    async def health(req: Any) -> tuple[int, dict]:
        return 200, {"status": "ok"}

    router.add("GET", "/health", health, auth=False)


def build_node(
    config: Config,
    reactor: Any,
    *,
    signing_key: SigningKey | None = None,
    db: Database | None = None,
    extra_areas: Any = (),
) -> Node:
    """Wire every area onto one router; the database must already be at head.

    ``extra_areas``: callables ``fn(ctx, services)`` run after the node's own areas (e.g.
    the gateway's routes); ``services`` is the ``NodeServices``."""
    from .accounts import wiring as accounts_wiring
    from .accounts.deactivation import make_room_leaver
    from .e2ee import wiring as e2ee_wiring
    from .federation import wiring as federation_wiring
    from .media import wiring as media_wiring
    from .people import wiring as people_wiring
    from .push import wiring as push_wiring
    from .rooms import wiring as rooms_wiring
    from .search import wiring as search_wiring
    from .sync import wiring as sync_wiring
    from .sync.notifier import make_notifier

    if signing_key is None:
        signing_key = load_signing_key(config.signing_key_path)
    clock = ReactorClock(reactor)
    db = db or Database(config.database_url, reactor)
    router = Router()
    ctx = NodeContext(
        config=config, reactor=reactor, clock=clock, db=db, router=router, signing_key=signing_key
    )
    _health_route(router)

    accounts = accounts_wiring.wire(ctx)
    notifier = make_notifier(ctx)
    rooms = rooms_wiring.wire(ctx, accounts=accounts, notifier=notifier)
    accounts.room_leaver = make_room_leaver(rooms)  # deactivated users leave their rooms
    search_wiring.wire(ctx, rooms=rooms)  # POST /search and its index
    push = push_wiring.wire(ctx, rooms=rooms)
    e2ee = e2ee_wiring.wire(ctx, accounts=accounts, rooms=rooms, notifier=notifier)  # keys
    sync = sync_wiring.wire(
        ctx, accounts=accounts, rooms=rooms, notifier=notifier, push=push, e2ee=e2ee
    )
    media = media_wiring.wire(ctx, accounts=accounts)
    people_wiring.wire(ctx, accounts=accounts, rooms=rooms)  # imported roster's rooms, claims
    federation = federation_wiring.wire(
        ctx, accounts=accounts, rooms=rooms, notifier=notifier, sync=sync, media=media, e2ee=e2ee
    )
    services = NodeServices(
        accounts=accounts,
        notifier=notifier,
        rooms=rooms,
        sync=sync,
        media=media,
        federation=federation,
    )
    extras = [fn(ctx, services) for fn in extra_areas]

    limits = config.rate_limits
    limiter = RateLimiter(
        clock, per_second=limits.per_second, burst_count=limits.burst_count, enabled=limits.enabled
    )
    # Media uploads may be larger than the general JSON body limit.
    body_limits = dict(media.body_limits)
    resource = ApiResource(
        router,
        authenticate=accounts.authenticate,
        max_body_bytes=config.max_request_body_bytes,
        rate_limit=make_rate_limit_hook(limiter),
        observe=metrics.observe_request,
        body_limits=body_limits,
    )
    metrics.watch_db_pool(db)
    return Node(
        ctx=ctx,
        accounts=accounts,
        rooms=rooms,
        sync=sync,
        media=media,
        resource=resource,
        metrics_resource=metrics.MetricsResource(),
        notifier=notifier,
        limiter=limiter,
        extras=extras,
        federation=federation,
    )


# --- running ---------------------------------------------------------------------------------
class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d} "
            f"level={record.levelname} logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("twisted").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo(
        [STDLibLogObserver(name="twisted")], redirectStandardIO=False, discardBuffer=True
    )


def _site(resource: Any) -> Any:
    """Every listener's site: no access log, body/header limits and timeouts at the edge
    (``node.http.site``)."""
    from .http.site import make_site

    return make_site(resource)


def _listen(reactor: Any, listener: Any, site: Any) -> Any:
    if listener.tls_certificate_path:
        from twisted.internet import ssl

        if not listener.tls_private_key_path:
            raise StartupError("TLS needs both tls_certificate_path and tls_private_key_path")
        try:
            with open(listener.tls_certificate_path, "rb") as fh:
                cert = fh.read()
            with open(listener.tls_private_key_path, "rb") as fh:
                key = fh.read()
            options = ssl.PrivateCertificate.loadPEM(key + b"\n" + cert).options()
        except OSError as exc:
            raise StartupError(f"cannot read TLS files: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - bad PEM data
            raise StartupError(f"invalid TLS certificate or key: {exc}") from None
        return reactor.listenSSL(listener.port, site, options, interface=listener.bind_address)
    return reactor.listenTCP(listener.port, site, interface=listener.bind_address)


def _url(listener: Any, port: int) -> str:
    scheme = "https" if listener.tls_certificate_path else "http"
    host = listener.bind_address
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _url_tls(listener: Any, port: int) -> str:
    host = listener.bind_address
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _listen_federation(node: Node) -> Any:
    """The HTTPS federation listener (None when off or without a certificate)."""
    if node.federation is None:
        return None
    from federation.transport.tls import TLSConfigError

    try:
        return node.federation.listen(node.ctx.reactor, _site)
    except TLSConfigError as exc:
        raise StartupError(f"federation TLS: {exc}") from None


def upgrade_database(config: Config) -> str | None:
    """Bring the database to the head migration (blocking; before the reactor runs)."""
    from schema.migrations import upgrade

    from .storage.database import make_engine

    if config.database_url.startswith("sqlite:///"):
        os.makedirs(
            os.path.dirname(os.path.abspath(config.database_url[10:])) or ".", exist_ok=True
        )
    engine = make_engine(config.database_url)
    try:
        return upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        raise StartupError(f"database upgrade failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()


def _install_signal_handlers(reactor: Any) -> None:
    """SIGTERM/SIGINT stop the reactor cleanly (shutdown triggers close the DB pool)."""
    import signal

    def handler(signum: int, _frame: Any) -> None:
        log.info("event=signal signal=%s", signal.Signals(signum).name)
        reactor.callFromThread(_stop_once, reactor)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _stop_once(reactor: Any) -> None:
    if reactor.running:
        try:
            reactor.stop()
        except Exception:  # noqa: BLE001 - already stopping
            pass


def _install_profiler(reactor: Any) -> None:
    """Developer aid: with ``PARTA_CPROFILE=<file>`` the reactor thread is profiled with
    cProfile from ``PARTA_CPROFILE_DELAY`` seconds (default 0) after start until shutdown,
    and the stats are written to that file (read them with ``python -m pstats``)."""
    path = os.environ.get("PARTA_CPROFILE")
    if not path:
        return
    import cProfile

    profiler = cProfile.Profile()

    def stop() -> None:
        profiler.disable()
        profiler.dump_stats(path)

    reactor.callLater(float(os.environ.get("PARTA_CPROFILE_DELAY", "0")), profiler.enable)
    reactor.addSystemEventTrigger("before", "shutdown", stop)


def run(config: Config, *, out: TextIO | None = None, extra_areas: Any = ()) -> int:
    """Install the asyncio reactor, upgrade the DB, listen, and serve until SIGTERM/SIGINT."""
    import asyncio

    from twisted.internet import asyncioreactor

    if "twisted.internet.reactor" not in sys.modules:
        asyncioreactor.install(asyncio.new_event_loop())
    from twisted.internet import reactor
    from twisted.internet.error import CannotListenError

    from .memory import settle_after_startup, tune_allocator

    tune_allocator()  # before the DB and KDF threads start
    out = out or sys.stdout
    setup_logging(config.log_level)
    signing_key = load_signing_key(config.signing_key_path)
    upgrade_database(config)
    db = Database(config.database_url, reactor)
    try:
        node = build_node(config, reactor, signing_key=signing_key, db=db, extra_areas=extra_areas)
        client_port = _listen(reactor, config.client_listener, _site(node.resource))
        metrics_port = _listen(reactor, config.metrics_listener, _site(node.metrics_resource))
        federation_port = _listen_federation(node)
    except CannotListenError as exc:
        db.close()
        raise StartupError(
            f"cannot listen on {exc.interface}:{exc.port}: {exc.socketError}"
        ) from None
    except BaseException:
        db.close()  # the pool's threads would otherwise keep the process alive
        raise
    cport = client_port.getHost().port
    mport = metrics_port.getHost().port
    client = config.client_listener
    if (
        config.public_baseurl == f"{'https' if client.tls_certificate_path else 'http'}://"
        f"{client.bind_address}:0/"
    ):
        config.public_baseurl = _url(client, cport) + "/"  # port 0: advertise the real port

    def stopping() -> Any:
        log.info("event=stopping")
        return node.accounts.stop()  # writes pending device last-seen data first

    reactor.addSystemEventTrigger("before", "shutdown", stopping)
    _install_signal_handlers(reactor)
    log.info(
        "event=listening server_name=%s client=%s metrics=%s",
        config.server_name,
        _url(client, cport),
        _url(config.metrics_listener, mport),
    )
    fed = ""
    if federation_port is not None:
        fed_url = _url_tls(config.federation.listener, federation_port.getHost().port)
        fed = f" (federation on {fed_url})"
        log.info("event=federation_listening url=%s", fed_url)
    print(
        f"Parta node {config.server_name} listening on {_url(client, cport)} "
        f"(metrics on {_url(config.metrics_listener, mport)}/metrics){fed}",
        file=out,
        flush=True,
    )
    reactor.callWhenRunning(settle_after_startup)
    _install_profiler(reactor)
    # IReactorCore does not declare it, the installed (asyncio) reactor's run() takes it.
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]
    log.info("event=stopped")
    return 0
