"""Server-side key backups (client-server API "Server-side key backups":
https://spec.matrix.org/v1.16/client-server-api/#server-side-key-backups;
``key_backup.yaml``): the 15 ``/room_keys`` operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.http.request import MissingParam

from ..backup import KeyBackups

if TYPE_CHECKING:
    from ..service import E2eeService

V3 = "/_matrix/client/v3/room_keys"


def _version(req: Any) -> str:
    version = req.query("version")
    if version is None:
        raise MissingParam("Missing 'version' query parameter")
    return version


def register(router: Any, e2ee: E2eeService) -> None:
    b = e2ee.backups

    # --- versions ---------------------------------------------------------------------------
    async def create_version(req: Any) -> tuple[int, dict]:
        return 200, await b.create(req.user_id, req.json())

    async def current_version(req: Any) -> tuple[int, dict]:
        return 200, await b.info(req.user_id, None)

    async def get_version(req: Any, version: str) -> tuple[int, dict]:
        return 200, await b.info(req.user_id, version)

    async def put_version(req: Any, version: str) -> tuple[int, dict]:
        return 200, await b.update(req.user_id, version, req.json())

    async def delete_version(req: Any, version: str) -> tuple[int, dict]:
        return 200, await b.delete(req.user_id, version)

    # --- all keys -------------------------------------------------------------------------
    async def put_all(req: Any) -> tuple[int, dict]:
        keys = KeyBackups.parse_rooms(req.json())
        return 200, await b.put(req.user_id, _version(req), keys)

    async def get_all(req: Any) -> tuple[int, dict]:
        return 200, await b.get(req.user_id, _version(req))

    async def delete_all(req: Any) -> tuple[int, dict]:
        return 200, await b.remove(req.user_id, _version(req))

    # --- one room -------------------------------------------------------------------------
    async def put_room(req: Any, roomId: str) -> tuple[int, dict]:
        keys = KeyBackups.parse_sessions(roomId, req.json())
        return 200, await b.put(req.user_id, _version(req), keys)

    async def get_room(req: Any, roomId: str) -> tuple[int, dict]:
        KeyBackups.check_ids(roomId)
        return 200, await b.get(req.user_id, _version(req), roomId)

    async def delete_room(req: Any, roomId: str) -> tuple[int, dict]:
        KeyBackups.check_ids(roomId)
        return 200, await b.remove(req.user_id, _version(req), roomId)

    # --- one session ----------------------------------------------------------------------
    async def put_session(req: Any, roomId: str, sessionId: str) -> tuple[int, dict]:
        keys = KeyBackups.parse_sessions(roomId, {"sessions": {sessionId: req.json()}})
        return 200, await b.put(req.user_id, _version(req), keys)

    async def get_session(req: Any, roomId: str, sessionId: str) -> tuple[int, dict]:
        KeyBackups.check_ids(roomId, sessionId)
        return 200, await b.get(req.user_id, _version(req), roomId, sessionId)

    async def delete_session(req: Any, roomId: str, sessionId: str) -> tuple[int, dict]:
        KeyBackups.check_ids(roomId, sessionId)
        return 200, await b.remove(req.user_id, _version(req), roomId, sessionId)

    router.add("POST", V3 + "/version", create_version, rate_limited=True)
    router.add("GET", V3 + "/version", current_version)
    router.add("GET", V3 + "/version/{version}", get_version)
    router.add("PUT", V3 + "/version/{version}", put_version)
    router.add("DELETE", V3 + "/version/{version}", delete_version)
    router.add("PUT", V3 + "/keys", put_all)
    router.add("GET", V3 + "/keys", get_all)
    router.add("DELETE", V3 + "/keys", delete_all)
    router.add("PUT", V3 + "/keys/{roomId}", put_room)
    router.add("GET", V3 + "/keys/{roomId}", get_room)
    router.add("DELETE", V3 + "/keys/{roomId}", delete_room)
    router.add("PUT", V3 + "/keys/{roomId}/{sessionId}", put_session)
    router.add("GET", V3 + "/keys/{roomId}/{sessionId}", get_session)
    router.add("DELETE", V3 + "/keys/{roomId}/{sessionId}", delete_session)
