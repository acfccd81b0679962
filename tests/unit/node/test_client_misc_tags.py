"""Room tags (client-server API "Room Tagging"): the endpoints, and that the tags reach the
room's ``account_data`` in ``/sync`` as one ``m.tag`` event, as clients read them."""

from __future__ import annotations

import orjson
import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.sync.api import tags
from test_sync_handler import ALICE, BOB, Node

V3 = "/_matrix/client/v3"


class Api:
    def __init__(self) -> None:
        self.node = Node()
        self.router = Router()
        tags.register(self.router, self.node.sync)

    def call(self, method, path, user=ALICE, body=None, raw=None):
        route, params, _ = self.router.match(method, path)
        assert route is not None, f"no route for {method} {path}"
        data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
        req = ApiRequest(method, path, {}, {}, data, "127.0.0.1")
        req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()


@pytest.fixture
def api():
    return Api()


def _path(room, user=ALICE, tag=None):
    base = V3 + f"/user/{user}/rooms/{room}/tags"
    return base if tag is None else f"{base}/{tag}"


def test_tags_round_trip_and_reach_sync_as_m_tag(api):
    room = api.node.room(name="R")
    first = api.node.do(ALICE)
    assert api.call("GET", _path(room)) == (200, {"tags": {}})
    assert api.call("PUT", _path(room, tag="m.favourite"), body={"order": 0.25}) == (200, {})
    assert api.call("PUT", _path(room, tag="u.Work"), body={}) == (200, {})
    expected = {"m.favourite": {"order": 0.25}, "u.Work": {}}
    assert api.call("GET", _path(room)) == (200, {"tags": expected})
    later = api.node.do(ALICE, since=first["next_batch"])
    events = later["rooms"]["join"][room]["account_data"]["events"]
    assert {"type": "m.tag", "content": {"tags": expected}} in events
    assert api.call("DELETE", _path(room, tag="u.Work")) == (200, {})
    assert api.call("DELETE", _path(room, tag="u.never-set")) == (200, {})
    assert api.call("GET", _path(room)) == (200, {"tags": {"m.favourite": {"order": 0.25}}})


def test_only_the_user_themself_reads_or_writes_their_tags(api):
    room = api.node.room()
    api.call("PUT", _path(room, tag="u.secret"), body={})
    for method, body in (("GET", None), ("PUT", {}), ("DELETE", None)):
        tag = None if method == "GET" else "u.secret"
        status, err = api.call(method, _path(room, user=ALICE, tag=tag), user=BOB, body=body)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    # Bob's own tags of the same room are his alone.
    assert api.call("GET", _path(room, user=BOB), user=BOB) == (200, {"tags": {}})


@pytest.mark.parametrize("order", [-0.1, 1.5, "0.5", True, None])
def test_order_must_be_a_number_between_0_and_1(api, order):
    room = api.node.room()
    status, err = api.call("PUT", _path(room, tag="u.x"), body={"order": order})
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    assert api.call("PUT", _path(room, tag="u.x"), body={"order": 1}) == (200, {})
    assert api.call("PUT", _path(room, tag="u.y"), body={"order": 0}) == (200, {})


def test_bad_input_gets_matrix_errors(api):
    room = api.node.room()
    status, err = api.call("PUT", _path(room, tag="u." + "x" * 300), body={})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = api.call("PUT", _path("not-a-room", tag="u.x"), body={})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = api.call("PUT", _path(room, tag="u.x"), raw=b"nope")
    assert (status, err["errcode"]) == (400, "M_NOT_JSON")
    status, err = api.call("PUT", _path(room, tag="u.x"), body={"note": "x" * 2000})
    assert (status, err["errcode"]) == (413, "M_TOO_LARGE")


def test_tags_per_room_are_capped(api):
    room = api.node.room()
    for i in range(tags.MAX_TAGS_PER_ROOM):
        assert api.call("PUT", _path(room, tag=f"u.t{i}"), body={})[0] == 200
    status, err = api.call("PUT", _path(room, tag="u.one-more"), body={})
    assert (status, err["errcode"]) == (413, "M_TOO_LARGE")
    # Changing an existing tag is still allowed.
    assert api.call("PUT", _path(room, tag="u.t0"), body={"order": 0.5}) == (200, {})


def test_malformed_m_tag_set_by_hand_counts_as_no_tags(api):
    room = api.node.room()
    result_of(api.node.sync.account_data.set(ALICE, room, "m.tag", {"tags": "nope"}))
    assert api.call("GET", _path(room)) == (200, {"tags": {}})
    assert api.call("PUT", _path(room, tag="u.x"), body={}) == (200, {})
    assert api.call("GET", _path(room)) == (200, {"tags": {"u.x": {}}})
