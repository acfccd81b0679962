"""The city's room directory over HTTP (client listener of the gateway).

GET  /_matrix/client/v3/publicRooms[?server=S]   client-server API
POST /_matrix/client/v3/publicRooms[?server=S]   ``list_public_rooms.yaml``
    Without ``server`` (or with the gateway's own name): the rooms of every enrolled
    school as gathered plus the gateway's own published rooms, filtered by
    ``filter.generic_search_term`` (name, topic, alias) and ``filter.room_types``,
    paged with ``limit``/``since``.  With ``server`` = a roster member: that school's
    rooms (gathered now if they never were; 502 when it cannot be reached).  Any
    other server: 400 ``M_UNRECOGNIZED`` (the gateway only federates with the roster).
    These routes take the place of the node's own (``Router.replace``).
GET  /_parta/v1/directory/rooms?q=&server=&limit=&since=
    The same rooms as JSON for the dashboard: each chunk entry plus ``server``,
    ``school_id``, ``school`` (name), ``district``, ``gathered_ts``; ``q`` also
    matches the school's name and district.  ``schools``: per server, when its rooms
    were gathered and the last error.  No access token needed (public rooms).
POST /_parta/v1/directory/refresh   {"server": S?}
    City office only (access token of an office account): gather now (one server,
    or all), answer per server what was gathered.
"""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, Forbidden, InvalidParam, MatrixError
from node.rooms import directory_ops

from . import rooms as city_rooms
from .schools import MAX_QUERY

V3 = "/_matrix/client/v3"


class NotInRoster(MatrixError):
    errcode = "M_UNRECOGNIZED"
    http_status = 400


class DirectoryUnreachable(MatrixError):
    errcode = "M_UNKNOWN"
    http_status = 502


class CityDirectory:
    """Answers the routes above from the roster, the gatherer and the node's rooms."""

    def __init__(self, gw: Any, gatherer: Any, rooms: Any) -> None:
        self.gw = gw
        self.gatherer = gatherer
        self.rooms = rooms

    async def members(self) -> dict[str, dict]:
        doc = await self.gw.roster.current()
        return dict(doc.get("servers", {})) if doc else {}

    async def own_rooms(self) -> list[dict]:
        if self.rooms is None:
            return []
        listing = await directory_ops.list_public_rooms(self.rooms, limit=None, since=None)
        return listing["chunk"]

    async def pairs(self, server: str | None = None) -> list[tuple[str, dict]]:
        """(server, room) for the whole city, or for one member server."""
        gw_name = self.gw.server_name
        if server is None or server == gw_name:
            members = await self.members()
            sources = [(gw_name, await self.own_rooms())]
            sources += [
                (s, g.rooms)
                for s, g in sorted(self.gatherer.cache.items())
                if g.rooms and s in members
            ]
            return city_rooms.combine(sources)
        if server not in await self.members():
            raise NotInRoster(f"server {server} is not in the city roster")
        entry = self.gatherer.get(server)
        if entry is None or entry.rooms is None:
            entry = await self.gatherer.gather(server)
        if entry.rooms is None:
            raise DirectoryUnreachable(
                f"The room directory of {server} could not be "
                f"reached ({entry.error or 'no answer'})"
            )
        return city_rooms.combine([(server, entry.rooms)])


def register(router: Any, gw: Any, directory: CityDirectory) -> None:
    gatherer = directory.gatherer

    async def get_public(req: Any) -> tuple[int, dict]:
        pairs = await directory.pairs(req.query("server"))
        return 200, city_rooms.page(
            [r for _, r in pairs],
            limit=req.query_int("limit", None, minimum=0),
            since=req.query("since"),
        )

    async def post_public(req: Any) -> tuple[int, dict]:
        parsed = directory_ops.parse_public_rooms_body(req.json(allow_empty=True))
        pairs = city_rooms.filter_rooms(
            await directory.pairs(req.query("server")),
            term=parsed.search_term,
            room_types=parsed.room_types,
        )
        return 200, city_rooms.page([r for _, r in pairs], limit=parsed.limit, since=parsed.since)

    async def dashboard_rooms(req: Any) -> tuple[int, dict]:
        q = req.query("q", "") or ""
        if len(q) > MAX_QUERY:
            raise InvalidParam(f"q must be at most {MAX_QUERY} characters")
        members = await directory.members()
        labels = {
            s: " ".join(str(e.get(k) or "") for k in ("name", "district", "school_id"))
            for s, e in members.items()
        }
        pairs = city_rooms.filter_rooms(
            await directory.pairs(req.query("server")), term=q, school_names=labels
        )
        listing = city_rooms.page(
            [_annotated(s, r, members, gatherer, gw.server_name) for s, r in pairs],
            limit=req.query_int("limit", None, minimum=0),
            since=req.query("since"),
        )
        rooms = listing.pop("chunk")
        schools = {
            s: {"name": members.get(s, {}).get("name"), "gathered_ts": g.rooms_ts, "error": g.error}
            for s, g in sorted(gatherer.cache.items())
            if s in members
        }
        return 200, {
            "rooms": rooms,
            "total": listing.pop("total_room_count_estimate"),
            **listing,
            "schools": schools,
        }

    async def refresh(req: Any) -> tuple[int, dict]:
        # An access token only (no cookie session: no cross-site POSTs to worry about).
        if req.requester is None or await gw.accounts.get_role(req.requester.user_id) != "office":
            raise Forbidden("Only the city office may refresh the directory")
        body = req.json(allow_empty=True)
        server = body.get("server")
        if server is not None:
            if not isinstance(server, str):
                raise BadJSON("'server' must be a string")
            if server not in await directory.members() or server == gw.server_name:
                raise NotInRoster(f"server {server} is not a school in the city roster")
            gathered = {server: await gatherer.gather(server)}
        else:
            gathered = dict(await gatherer.gather_all())
        return 200, {"gathered": {s: g.summary() for s, g in sorted(gathered.items())}}

    router.replace("GET", V3 + "/publicRooms", get_public, auth=False)
    router.replace("POST", V3 + "/publicRooms", post_public)
    router.add("GET", "/_parta/v1/directory/rooms", dashboard_rooms, auth=False)
    router.add("POST", "/_parta/v1/directory/refresh", refresh, auth=False, auth_optional=True)


def _annotated(server: str, room: dict, members: dict, gatherer: Any, gw_name: str) -> dict:
    entry = members.get(server, {})
    gathered = gatherer.get(server)
    return {
        **room,
        "server": server,
        "school_id": entry.get("school_id"),
        "school": entry.get("name"),
        "district": entry.get("district") or "",
        "gathered_ts": gathered.rooms_ts if gathered is not None and server != gw_name else None,
    }
