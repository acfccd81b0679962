"""``PUT /rooms/{roomId}/typing/{userId}`` (client-server API "Typing Notifications",
``typing.yaml``).  Only the user themself, and only in a room they are joined to."""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def set_typing(req: Any, roomId: str, userId: str) -> tuple[int, dict]:
        service.require_self(req, userId, "set typing notifications")
        body = req.json()
        typing = body.get("typing")
        if not isinstance(typing, bool):
            raise BadJSON("'typing' must be a boolean")
        timeout = body.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
            raise BadJSON("'timeout' must be an integer (milliseconds)")
        await service.require_joined(userId, roomId)
        service.typing.set_typing(roomId, userId, typing, timeout)
        return 200, {}

    router.add("PUT", V3 + "/rooms/{roomId}/typing/{userId}", set_typing, rate_limited=True)
