"""Room tagging (client-server API "Room Tagging", ``tags.yaml``):
``GET /user/{userId}/rooms/{roomId}/tags`` and ``PUT/DELETE .../tags/{tag}``.

https://spec.matrix.org/v1.16/client-server-api/#room-tagging

The tags of a room are not a table of their own: they are the room account data event
``m.tag`` (``{"tags": {name: {"order": 0.2}}}``), which is what clients read from the
room's ``account_data`` in ``/sync``; so every change writes that event through the
account data store (a new stream position, the user's syncs wake up).  A change is a
read-modify-write of that one event, serialised per process by a lock so two devices
tagging at once do not lose a tag.

Bounds: a tag name is at most 255 bytes (the spec's limit), a room has at most
``MAX_TAGS_PER_ROOM`` tags and a tag's object encodes to at most ``MAX_TAG_BYTES``; ``order``
must be a number in [0, 1].  Only the user's own tags are reachable (403 ``M_FORBIDDEN``).
"""

from __future__ import annotations

from typing import Any

import orjson
from twisted.internet import defer

from federation.errors import BadJSON, InvalidParam, MatrixError

V3 = "/_matrix/client/v3"
TAG_EVENT = "m.tag"
MAX_TAG_NAME_BYTES = 255  # spec: "The name of a tag MUST NOT exceed 255 bytes."
MAX_TAGS_PER_ROOM = 64
MAX_TAG_BYTES = 1024  # the encoded object of one tag (``order`` and anything a client adds)


def check_room_id(room_id: str) -> None:
    # Room version 12 room IDs are "!" + a hash, without a server name.
    if not room_id.startswith("!") or len(room_id) < 2 or len(room_id.encode()) > 255:
        raise InvalidParam(f"{room_id!r} is not a valid room ID")


def check_tag_name(tag: str) -> None:
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_NAME_BYTES:
        raise InvalidParam(f"A tag name is 1 to {MAX_TAG_NAME_BYTES} bytes long")


def check_tag_body(body: dict) -> dict:
    """The tag's object as stored: ``order``, if present, a number in [0, 1]."""
    if "order" in body:
        order = body["order"]
        if isinstance(order, bool) or not isinstance(order, (int, float)):
            raise BadJSON("'order' must be a number")
        if not 0 <= order <= 1:
            raise BadJSON("'order' must be between 0 and 1")
    if len(orjson.dumps(body)) > MAX_TAG_BYTES:
        raise MatrixError(
            f"A tag's content may be at most {MAX_TAG_BYTES} bytes",
            errcode="M_TOO_LARGE",
            http_status=413,
        )
    return body


def tags_of(content: dict | None) -> dict[str, dict]:
    """The tags of a stored ``m.tag`` content; a malformed one (set through the generic
    account data endpoint) counts as no tags, and malformed entries are skipped."""
    tags = content.get("tags") if isinstance(content, dict) else None
    if not isinstance(tags, dict):
        return {}
    return {k: v for k, v in tags.items() if isinstance(k, str) and isinstance(v, dict)}


def register(router: Any, service: Any) -> None:
    store = service.account_data
    lock = defer.DeferredLock()

    async def get_tags(req: Any, userId: str, roomId: str) -> tuple[int, dict]:
        service.require_self(req, userId, "read tags")
        check_room_id(roomId)
        return 200, {"tags": tags_of(await store.get(userId, roomId, TAG_EVENT))}

    async def put_tag(req: Any, userId: str, roomId: str, tag: str) -> tuple[int, dict]:
        service.require_self(req, userId, "add tags")
        check_room_id(roomId)
        check_tag_name(tag)
        value = check_tag_body(req.json())
        await lock.acquire()
        try:
            tags = tags_of(await store.get(userId, roomId, TAG_EVENT))
            if tag not in tags and len(tags) >= MAX_TAGS_PER_ROOM:
                raise MatrixError(
                    f"A room may have at most {MAX_TAGS_PER_ROOM} tags",
                    errcode="M_TOO_LARGE",
                    http_status=413,
                )
            tags[tag] = value
            await store.set(userId, roomId, TAG_EVENT, {"tags": tags})
        finally:
            lock.release()
        return 200, {}

    async def delete_tag(req: Any, userId: str, roomId: str, tag: str) -> tuple[int, dict]:
        service.require_self(req, userId, "remove tags")
        check_room_id(roomId)
        check_tag_name(tag)
        await lock.acquire()
        try:
            tags = tags_of(await store.get(userId, roomId, TAG_EVENT))
            if tags.pop(tag, None) is not None:
                await store.set(userId, roomId, TAG_EVENT, {"tags": tags})
        finally:
            lock.release()
        return 200, {}

    router.add("GET", V3 + "/user/{userId}/rooms/{roomId}/tags", get_tags)
    router.add("PUT", V3 + "/user/{userId}/rooms/{roomId}/tags/{tag}", put_tag)
    router.add("DELETE", V3 + "/user/{userId}/rooms/{roomId}/tags/{tag}", delete_tag)
