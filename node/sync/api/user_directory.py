"""``POST /_matrix/client/v3/user_directory/search`` (client-server API "User Directory",
``users.yaml``)."""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, InvalidParam
from node.http.request import MissingParam

from ..user_directory import DEFAULT_LIMIT

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def search(req: Any) -> tuple[int, dict]:
        body = req.json()
        term = body.get("search_term")
        if term is None:
            raise MissingParam("Missing 'search_term'")
        if not isinstance(term, str):
            raise BadJSON("'search_term' must be a string")
        if "\x00" in term:  # no user ID or display name holds NUL; PostgreSQL refuses it
            raise InvalidParam("'search_term' may not contain NUL")
        limit = body.get("limit", DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise BadJSON("'limit' must be an integer")
        return 200, await service.directory.search(req.user_id, term, limit)

    router.add("POST", V3 + "/user_directory/search", search, rate_limited=True)
