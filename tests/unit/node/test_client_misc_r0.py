"""Legacy ``/_matrix/client/r0/`` paths: the r0 operations answer there, later ones do not."""

from __future__ import annotations

from node.http.router import Router


async def _handler(_req, **_kw):  # pragma: no cover - never awaited here
    return 200, {}


def _router() -> Router:
    router = Router()
    router.add("POST", "/_matrix/client/v3/login", _handler, auth=False)
    router.add("GET", "/_matrix/client/v3/rooms/{roomId}/state/{eventType}", _handler)
    router.add("POST", "/_matrix/client/v3/knock/{roomIdOrAlias}", _handler)
    router.add("POST", "/_matrix/client/v3/rooms/{roomId}/report", _handler)
    router.add("GET", "/_matrix/client/v1/rooms/{roomId}/hierarchy", _handler)
    router.add("PUT", "/_matrix/client/v3/profile/{userId}/{keyName}", _handler)
    router.add("GET", "/_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}", _handler)
    return router


def test_r0_paths_reach_the_v3_routes_with_their_parameters():
    router = _router()
    route, params, known = router.match("POST", "/_matrix/client/r0/login")
    assert route is not None and route.template == "/_matrix/client/v3/login" and known
    route, params, _ = router.match("GET", "/_matrix/client/r0/rooms/%21r%3Ax/state/m.room.name")
    assert route is not None
    assert params == {"roomId": "!r:x", "eventType": "m.room.name"}
    # displayname and avatar_url are r0 operations served by the generic profile route.
    route, params, _ = router.match("PUT", "/_matrix/client/r0/profile/@a:x/displayname")
    assert route is not None and params["keyName"] == "displayname"
    # Wrong method: 405 (path known), as under v3.
    route, _, known = router.match("DELETE", "/_matrix/client/r0/login")
    assert route is None and known


def test_operations_added_after_r0_are_not_answered_under_r0():
    router = _router()
    for method, path in (
        ("POST", "/_matrix/client/r0/knock/!r:x"),
        ("POST", "/_matrix/client/r0/rooms/!r:x/report"),
        ("GET", "/_matrix/client/r0/rooms/!r:x/hierarchy"),
        ("GET", "/_matrix/client/r0/room_keys/keys/!r:x/s1"),
    ):
        route, _, known = router.match(method, path)
        assert route is None and not known, path
    # ... while their own paths still are.
    assert router.match("POST", "/_matrix/client/v3/knock/!r:x")[0] is not None
    assert router.match("GET", "/_matrix/client/v1/rooms/!r:x/hierarchy")[0] is not None
