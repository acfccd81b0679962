"""Other servers' room directories for the client API: aliases and published rooms.

Spec: client-server API "Room aliases" (``GET /directory/room/{roomAlias}``: "Servers may
contact the server named in the alias to find the room ID"), server-server API
"Querying for information" (``GET /_matrix/federation/v1/query/directory``: "Homeservers
should only query room aliases that belong to the target server"; "Servers may wish to
cache the response"), client-server API "Listing rooms" with ``server=`` and server-server
API "Public Room Directory" (``public_rooms.py``).

``RemoteDirectoryClient`` is the rooms area's ``RemoteDirectory`` hook (node/rooms/hooks.py).
Only servers the node's federation policy allows are asked (the city roster): any other
is 403 ``M_FORBIDDEN`` before a request is made.  What a client sees of a remote failure
(https://spec.matrix.org/v1.16/server-server-api/#querying-for-information):

* the remote's own 403 or 404 with its ``errcode`` (``M_NOT_FOUND`` for an unknown alias,
  ``M_FORBIDDEN`` for a directory it does not share);
* any other error status (a 400 or 401 would blame the client for our request, an
  ``M_UNRECOGNIZED`` would read as "this node lacks the endpoint"), a non-JSON or
  malformed answer, an unreachable server: 502 ``M_UNKNOWN`` with
  one text whatever failed (the node's log has the detail: a client must not learn
  which ports answer); a timeout: 504 ``M_UNKNOWN``.

Alias answers (including "not found") are cached ``ALIAS_TTL_MS`` (at most
``ALIAS_CACHE_SIZE`` aliases) and concurrent look-ups of one alias or one directory page
share a request: ``GET /directory/room`` and ``GET /publicRooms`` need no access token.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Sequence

from federation.errors import InvalidParam, MatrixError, NotFound
from federation.identifiers import is_valid_server_name
from federation.transport import endpoints as E
from federation.transport.coalesce import Coalescer
from federation.transport.errors import FederationRequestError, RequestTimedOut

from ..roster_policy import refusal
from . import public_rooms as pr

log = logging.getLogger("parta.federation.directory")

ALIAS_TTL_MS = 60_000
ALIAS_CACHE_SIZE = 5_000
MAX_SERVERS = 50  # servers kept from an alias answer
TIMEOUT_S = 15.0


class RemoteDirectoryClient:
    def __init__(
        self,
        *,
        client: Any,
        clock: Any,
        server_name: str,
        policy: Any = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.policy = policy
        self.timeout = timeout
        self._aliases: OrderedDict[str, tuple[int, dict | None]] = OrderedDict()
        self._pages = pr.PageCache(clock)
        self._coalescer = Coalescer()

    # --- errors ----------------------------------------------------------------------------
    def _check_server(self, server: str) -> None:
        if not is_valid_server_name(server):
            raise InvalidParam(f"{server!r} is not a valid server name")
        if self.policy is not None and not self.policy.allow_outbound(server):
            raise refusal(self.policy, server)

    async def _request(
        self,
        server: str,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: dict | None = None,
    ) -> tuple[int, Any]:
        try:
            return await self.client.request(
                server, method, path, json_body=body, query=query, timeout=self.timeout
            )
        except FederationRequestError as exc:
            log.warning(
                "event=remote_directory_failed server=%s path=%s detail=%s: %s",
                server,
                path,
                type(exc).__name__,
                exc.message,
            )
            if isinstance(exc, RequestTimedOut):
                raise MatrixError(
                    f"{server} did not answer in time", errcode="M_UNKNOWN", http_status=504
                ) from None
            raise MatrixError(
                f"Could not reach {server}", errcode="M_UNKNOWN", http_status=502
            ) from None

    @staticmethod
    def _remote_error(server: str, status: int, body: Any) -> MatrixError:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        message = f"{server}: {error}" if isinstance(error, str) else f"{server}: HTTP {status}"
        if (
            status in (403, 404)
            and isinstance(errcode, str)
            and errcode.startswith("M_")
            and errcode != "M_UNRECOGNIZED"
        ):
            return MatrixError(message[:500], errcode=errcode, http_status=status)
        return MatrixError(message[:500], errcode="M_UNKNOWN", http_status=502)

    # --- aliases ---------------------------------------------------------------------------
    async def resolve_alias(self, alias: str) -> dict:
        """``{"room_id", "servers"}`` from the alias' own server."""
        server = alias.partition(":")[2]
        self._check_server(server)
        now = self.clock.time_ms()
        hit = self._aliases.get(alias)
        if hit is None or hit[0] <= now:
            answer = await self._coalescer.run(("alias", alias), lambda: self._fetch_alias(alias))
        else:
            answer = hit[1]
        if answer is None:
            raise NotFound(f"Room alias {alias} not found.")
        return {"room_id": answer["room_id"], "servers": list(answer["servers"])}

    async def _fetch_alias(self, alias: str) -> dict | None:
        server = alias.partition(":")[2]
        status, body = await self._request(
            server, E.QUERY_DIRECTORY.method, E.QUERY_DIRECTORY.path(), query={"room_alias": alias}
        )
        answer: dict | None
        if status == 404:
            answer = None
        elif not 200 <= status < 300:
            raise self._remote_error(server, status, body)
        else:
            room_id = body.get("room_id")
            if not isinstance(room_id, str) or not room_id.startswith("!") or len(room_id) > 255:
                raise MatrixError(
                    f"{server} gave no room ID for {alias}", errcode="M_UNKNOWN", http_status=502
                )
            servers = body.get("servers")
            kept = [
                s for s in (servers if isinstance(servers, list) else []) if is_valid_server_name(s)
            ]
            kept = list(dict.fromkeys(kept))[:MAX_SERVERS]
            if server not in kept:
                kept.insert(0, server)  # it just answered for the room
            answer = {"room_id": room_id, "servers": kept}
        self._aliases[alias] = (self.clock.time_ms() + ALIAS_TTL_MS, answer)
        self._aliases.move_to_end(alias)
        while len(self._aliases) > ALIAS_CACHE_SIZE:
            self._aliases.popitem(last=False)
        return answer

    # --- published rooms -------------------------------------------------------------------
    async def public_rooms(
        self,
        server: str,
        *,
        limit: int | None,
        since: str | None,
        search_term: str | None = None,
        room_types: Sequence[str | None] | None = None,
    ) -> dict:
        self._check_server(server)
        page_size = pr.effective_limit(limit)
        method, query, body = pr.request_for(
            limit=page_size, since=since, search_term=search_term, room_types=room_types
        )
        key = (
            server,
            page_size,
            since,
            search_term,
            None if room_types is None else tuple(room_types),
        )
        cached = self._pages.get(key)
        if cached is None:
            cached = await self._coalescer.run(
                ("rooms", key),
                lambda: self._fetch_page(server, method, query, body, page_size, key),
            )
        return {**cached, "chunk": [dict(r) for r in cached["chunk"]]}

    async def _fetch_page(
        self,
        server: str,
        method: str,
        query: dict | None,
        body: dict | None,
        page_size: int,
        key: Any,
    ) -> dict:
        endpoint = E.PUBLIC_ROOMS if method == "GET" else E.PUBLIC_ROOMS_POST
        status, answer = await self._request(
            server, endpoint.method, endpoint.path(), query=query, body=body
        )
        if not 200 <= status < 300:
            raise self._remote_error(server, status, answer)
        page = pr.clean_page(answer, page_size)
        self._pages.put(key, page)
        return page
