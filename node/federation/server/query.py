"""``GET /_matrix/federation/v1/query/profile`` and ``/query/directory`` (spec:
server-server API "Querying for information", ``query.yaml``).

* profile: ``user_id`` must be local (400 ``M_INVALID_PARAM`` otherwise); unknown users
  and missing fields are 404 ``M_NOT_FOUND``; with ``field`` only that field is returned.
* directory: ``room_alias`` must be one of ours; the answer names the room and the servers
  likely to hold it (ours first, then the servers of the joined members).
* any other ``/query/{queryType}`` ("Query for information": "Known query types are
  specified as their own endpoints"): 404 ``M_UNRECOGNIZED``, after the signature check
  like every query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import InvalidParam, MatrixError, NotFound
from federation.transport import endpoints as E
from node.accounts.attestations import ROLE_FIELD
from node.rooms import store as rooms_store

from ..access import server_of
from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from ..context import FederationContext

PROFILE_FIELDS = ("displayname", "avatar_url", "m.tz")


def _required(req: Any, name: str) -> str:
    value = req.query(name)
    if not value:
        raise MatrixError(f"Missing query parameter {name!r}", errcode="M_MISSING_PARAM")
    return value


def register(routes: Any, fctx: FederationContext) -> None:
    async def profile(req: Any, origin: str) -> tuple[int, dict]:
        user_id = _required(req, "user_id")
        if not user_id.startswith("@") or server_of(user_id) != fctx.server_name:
            raise InvalidParam("User is not hosted on this server")
        field = req.query("field")
        accounts = fctx.accounts
        if accounts is None:
            raise NotFound("User does not exist")
        found = await accounts.get_profile_or_none(user_id)  # None: no such user
        if found is None:
            raise NotFound("User does not exist")
        public = {k: v for k, v in found.items() if k in PROFILE_FIELDS and v is not None}
        if field is None or field == ROLE_FIELD:  # a staff member's signed role (people.md)
            attestation = await accounts.attestations.local(user_id)
            if attestation is not None:
                public[ROLE_FIELD] = attestation
        if field is not None:
            if field not in public:
                raise NotFound(f"The user has no {field!r} profile field")
            return 200, {field: public[field]}
        return 200, public

    async def directory(req: Any, origin: str) -> tuple[int, dict]:
        alias = _required(req, "room_alias")
        if not alias.startswith("#") or server_of(alias) != fctx.server_name:
            raise NotFound("Room alias not found")
        room_id = await fctx.ctx.db.run(rooms_store.alias_room_id, alias)
        if room_id is None:
            raise NotFound("Room alias not found")
        servers = [fctx.server_name]
        try:
            room = await fctx.rooms.get_room(room_id)
            servers += sorted({server_of(u) for u in room.joined} - {fctx.server_name})
        except NotFound:
            pass
        return 200, {"room_id": room_id, "servers": servers}

    async def unknown_query(req: Any, origin: str, queryType: str) -> tuple[int, dict]:
        raise MatrixError(
            f"Unknown query type {queryType[:100]!r}", errcode="M_UNRECOGNIZED", http_status=404
        )

    serve(routes, E.QUERY_PROFILE, profile)
    serve(routes, E.QUERY_DIRECTORY, directory)
    # Last: the router takes the first match, so the known types above win.
    serve(routes, E.QUERY, unknown_query)
