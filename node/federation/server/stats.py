"""``GET /_parta/v1/stats`` on the federation listener: what a school publishes to its city
gateway (Parta's own endpoint, docs/architecture.md "City services on the gateway": the
dashboard shows the users and rooms counts each school publishes, and the directors listed
here are invited to the city rooms).

X-Matrix authenticated like every federation request, and answered only for the server
that signs this node's roster (its city gateway); anyone else, and every server while the
node has not enrolled, gets 403 ``M_FORBIDDEN``.  Response::

    {"users": 123,            # active (not deactivated) accounts on this server
     "rooms": 45,             # rooms created on this server
     "public_rooms": 3,       # of those, published in the room directory
     "reports": 2,            # content reports made by this school's users (moderation)
     "directors": ["@director:school42.example", ...],   # accounts with role director
     "staff": [<role attestation>, ...]}  # directors, deputies, opted-in teachers (people.md)

Counts only: no names, no memberships, nothing about pupils beyond a number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from federation.errors import Forbidden
from federation.transport import endpoints as E

from ..policy import EnforcesRoster
from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext

MAX_DIRECTORS = 50


def collect_stats(conn: Connection, server_name: str) -> dict:
    from schema.accounts import users
    from schema.client_misc import content_reports
    from schema.events import rooms

    n_users = (
        conn.execute(
            select(func.count()).select_from(users).where(users.c.deactivated.is_(False))
        ).scalar()
        or 0
    )
    ours = rooms.c.creator.endswith(":" + server_name, autoescape=True)
    n_rooms = conn.execute(select(func.count()).select_from(rooms).where(ours)).scalar() or 0
    n_public = (
        conn.execute(
            select(func.count()).select_from(rooms).where(ours, rooms.c.is_public.is_(True))
        ).scalar()
        or 0
    )
    n_reports = conn.execute(select(func.count()).select_from(content_reports)).scalar() or 0
    directors = [
        r[0]
        for r in conn.execute(
            select(users.c.user_id)
            .where(users.c.role == "director", users.c.deactivated.is_(False))
            .order_by(users.c.user_id)
            .limit(MAX_DIRECTORS)
        )
    ]
    return {
        "users": int(n_users),
        "rooms": int(n_rooms),
        "public_rooms": int(n_public),
        "reports": int(n_reports),
        "directors": directors,
    }


def gateway_of(policy: object) -> str | None:
    """The server that signs the roster this node enforces (None: not enrolled)."""
    if not isinstance(policy, EnforcesRoster) or policy.state is None:
        return None
    return policy.state.signer_name


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_stats(req: Any, origin: str) -> tuple[int, dict]:
        gateway = gateway_of(fctx.policy)
        if gateway is None or origin != gateway:
            raise Forbidden("Only this server's city gateway may read its statistics")
        stats = await fctx.ctx.db.run(collect_stats, fctx.server_name)
        if fctx.accounts is not None:  # the city staff directory (docs/people.md)
            stats["staff"] = await fctx.accounts.attestations.directory()
        return 200, stats

    serve(routes, E.PARTA_STATS, get_stats)
