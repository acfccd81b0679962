"""Account data endpoints (client-server API "Client Config", ``account-data.yaml``):
``GET/PUT /user/{userId}/account_data/{type}`` and
``GET/PUT /user/{userId}/rooms/{roomId}/account_data/{type}``.

Server behaviour: types the server manages (``m.fully_read``, ``m.push_rules``) cannot be set
here (405 ``M_BAD_JSON``) but can be read; only the user's own data is reachable (403).
"""

from __future__ import annotations

from typing import Any

from federation.errors import InvalidParam, MatrixError, NotFound

from ..account_data import SERVER_MANAGED_TYPES

V3 = "/_matrix/client/v3"


def _check_type(type_: str) -> None:
    if not type_ or len(type_) > 255:
        raise InvalidParam("Invalid account data type")


def _check_room(room_id: str) -> None:
    # Room version 12 room IDs are "!" + a hash, without a server name.
    if not room_id.startswith("!") or len(room_id) < 2 or len(room_id) > 255:
        raise InvalidParam(f"{room_id} is not a valid room ID")


def register(router: Any, service: Any) -> None:
    store = service.account_data

    async def put_global(req: Any, userId: str, type: str) -> tuple[int, dict]:  # noqa: A002 - the spec's {type}
        service.require_self(req, userId, "add account data")
        _check_type(type)
        content = req.json()
        if type in SERVER_MANAGED_TYPES:
            raise MatrixError(
                f"Cannot set {type} through this API", errcode="M_BAD_JSON", http_status=405
            )
        await store.set(userId, None, type, content)
        return 200, {}

    async def get_global(req: Any, userId: str, type: str) -> tuple[int, dict]:  # noqa: A002 - the spec's {type}
        service.require_self(req, userId, "read account data")
        reader = store.readers.get(type)
        content = reader(userId) if reader is not None else await store.get(userId, None, type)
        if content is None:
            raise NotFound("Account data not found")
        return 200, content

    async def put_room(req: Any, userId: str, roomId: str, type: str) -> tuple[int, dict]:  # noqa: A002 - the spec's {type}
        service.require_self(req, userId, "add account data")
        _check_room(roomId)
        _check_type(type)
        content = req.json()
        if type in SERVER_MANAGED_TYPES:
            raise MatrixError(
                f"Cannot set {type} through this API", errcode="M_BAD_JSON", http_status=405
            )
        await store.set(userId, roomId, type, content)
        return 200, {}

    async def get_room(req: Any, userId: str, roomId: str, type: str) -> tuple[int, dict]:  # noqa: A002 - the spec's {type}
        service.require_self(req, userId, "read account data")
        _check_room(roomId)
        content = await store.get(userId, roomId, type)
        if content is None:
            raise NotFound("Room account data not found")
        return 200, content

    router.add("PUT", V3 + "/user/{userId}/account_data/{type}", put_global)
    router.add("GET", V3 + "/user/{userId}/account_data/{type}", get_global)
    router.add("PUT", V3 + "/user/{userId}/rooms/{roomId}/account_data/{type}", put_room)
    router.add("GET", V3 + "/user/{userId}/rooms/{roomId}/account_data/{type}", get_room)
