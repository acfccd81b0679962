"""Spaces across servers (server-server API "Spaces", client-server API "Spaces" > "Server
behaviour"): the city office's space on city.test lists rooms of school.test; city's client
``/hierarchy`` fills them in over ``GET /_matrix/federation/v1/hierarchy/{roomId}``,
which school.test answers over signed in-process requests."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from federation.errors import MatrixError
from inprocess_federation_support import FedNode, Network
from node.federation.remote import hierarchy as remote_hierarchy
from node.rooms import hierarchy_ops
from node.rooms.hooks import RoomHooks

V1 = "/_matrix/federation/v1"
SPACE = {"type": "m.space"}


def _room(node, **body):
    body.setdefault("preset", "public_chat")
    return result_of(node.rooms.create_room(node.uid("alice"), body))


def _child(node, space, child, **content):
    content.setdefault("via", ["school.test"])
    result_of(
        node.rooms.send_event(node.uid("alice"), space, "m.space.child", content, state_key=child)
    )


def _setup():
    net = Network()
    city = FedNode(net, "city.test")
    school = FedNode(net, "school.test")
    city.rooms.attach_federation(RoomHooks(remote_hierarchy=remote_hierarchy.build(city.fed.fctx)))
    space = _room(city, name="City schools", creation_content=SPACE)
    local = _room(city, name="City news")
    maths = _room(school, name="Maths", topic="Fractions this week")
    staff = _room(school, name="Staff room", preset="private_chat")
    year5 = _room(school, name="Year 5", creation_content=SPACE)
    art = _room(school, name="Art")
    _child(school, year5, art)
    _child(city, space, local, via=["city.test"], order="a")
    _child(city, space, maths, order="b", suggested=True)
    _child(city, space, staff, order="c")
    _child(city, space, year5, order="d")
    return (
        net,
        city,
        school,
        dict(space=space, local=local, maths=maths, staff=staff, year5=year5, art=art),
    )


def _walk(node, space, **kw):
    kw.setdefault("suggested_only", False)
    kw.setdefault("limit", None)
    kw.setdefault("max_depth", None)
    kw.setdefault("from_token", None)
    return result_of(hierarchy_ops.hierarchy(node.rooms, node.uid("alice"), space, **kw))


def _ids(out):
    return [r["room_id"] for r in out["rooms"]]


def _fed_calls(net):
    return [e for e in net.log if "/hierarchy/" in e[3]]


def test_client_hierarchy_shows_rooms_of_another_server():
    net, city, school, r = _setup()
    out = _walk(city, r["space"])
    # staff (invite-only on school.test) is not leaked; year5's child comes from the same
    # answer about year5
    assert _ids(out) == [r["space"], r["local"], r["maths"], r["year5"], r["art"]]
    maths = out["rooms"][2]
    assert maths["name"] == "Maths" and maths["topic"] == "Fractions this week"
    assert maths["num_joined_members"] == 1  # school's alice
    assert maths["join_rule"] == "public" and maths["children_state"] == []
    year5 = out["rooms"][3]
    assert year5["room_type"] == "m.space"
    assert [c["state_key"] for c in year5["children_state"]] == [r["art"]]
    assert "next_batch" not in out
    # one request per remote child (maths, staff, year5); art came with year5's answer
    assert sorted(p for _, _, _, p in _fed_calls(net)) == sorted(
        f"{V1}/hierarchy/{quote(x, safe='')}" for x in (r["maths"], r["staff"], r["year5"])
    )


def test_remote_answers_are_cached_briefly():
    net, city, school, r = _setup()
    first = _walk(city, r["space"])
    n = len(_fed_calls(net))
    assert _walk(city, r["space"]) == first
    assert len(_fed_calls(net)) == n  # served from the cache
    city.reactor.advance(remote_hierarchy.TTL_MS / 1000 + 1)
    assert _walk(city, r["space"]) == first
    assert len(_fed_calls(net)) == 2 * n  # asked again after the TTL


def test_suggested_only_and_max_depth():
    net, city, school, r = _setup()
    assert _ids(_walk(city, r["space"], suggested_only=True)) == [r["space"], r["maths"]]
    assert _ids(_walk(city, r["space"], max_depth=1)) == [
        r["space"],
        r["local"],
        r["maths"],
        r["year5"],
    ]


def test_pagination_with_remote_children_mixed_in():
    net, city, school, r = _setup()
    full = _ids(_walk(city, r["space"]))
    pages, token = [], None
    while True:
        out = _walk(city, r["space"], limit=2, from_token=token)
        pages.append(_ids(out))
        token = out.get("next_batch")
        if token is None:
            break
    assert pages == [full[0:2], full[2:4], full[4:5]]


def test_a_page_ends_early_when_its_remote_budget_is_spent(monkeypatch):
    net, city, school, r = _setup()
    monkeypatch.setattr(hierarchy_ops, "MAX_REMOTE_FETCHES", 1)
    seen, token, pages = [], None, 0
    while True:
        out = _walk(city, r["space"], limit=50, from_token=token)
        seen += _ids(out)
        pages += 1
        token = out.get("next_batch")
        if token is None or pages > 10:
            break
    assert pages > 1
    assert seen == [r["space"], r["local"], r["maths"], r["year5"], r["art"]]


def test_unreachable_child_server_is_skipped():
    net, city, school, r = _setup()
    ghost = "!ghost:nowhere.test"
    _child(city, r["space"], ghost, via=["nowhere.test", "school.test"], order="0")
    net.cut("city.test", "school.test")
    out = _walk(city, r["space"])
    assert _ids(out) == [r["space"], r["local"]]
    assert out["rooms"][0]["children_state"][0]["state_key"] == ghost
    # the failure is remembered for a shorter while, then school is asked again
    net.heal()
    assert _ids(_walk(city, r["space"])) == [r["space"], r["local"]]
    city.reactor.advance(remote_hierarchy.FAILURE_TTL_MS / 1000 + 1)
    assert _ids(_walk(city, r["space"])) == [
        r["space"],
        r["local"],
        r["maths"],
        r["year5"],
        r["art"],
    ]


# --- the federation endpoint itself --------------------------------------------------------


def _get(src, dst, room_id, query=None):
    return result_of(
        src.client.request(
            dst.server_name, "GET", f"{V1}/hierarchy/{quote(room_id, safe='')}", query=query
        )
    )


def test_federation_endpoint_answers_and_hides_private_rooms():
    net, city, school, r = _setup()
    hidden = _room(school, name="Hidden", preset="private_chat")
    _child(school, r["year5"], r["staff"])
    _child(school, r["year5"], hidden, suggested=True)
    _child(school, r["year5"], "!unknown:elsewhere.test")
    status, body = _get(city, school, r["year5"])
    assert status == 200
    assert body["room"]["room_id"] == r["year5"] and body["room"]["name"] == "Year 5"
    assert [c["state_key"] for c in body["room"]["children_state"]] == [
        r["art"],
        r["staff"],
        hidden,
        "!unknown:elsewhere.test",
    ]
    assert all(
        c["type"] == "m.space.child" and isinstance(c["origin_server_ts"], int)
        for c in body["room"]["children_state"]
    )
    assert [c["room_id"] for c in body["children"]] == [r["art"]]
    assert body["children"][0]["name"] == "Art"
    assert sorted(body["inaccessible_children"]) == sorted([r["staff"], hidden])
    # suggested_only
    status, body = _get(city, school, r["year5"], {"suggested_only": "true"})
    assert status == 200 and [c["state_key"] for c in body["room"]["children_state"]] == [hidden]
    assert body["children"] == [] and body["inaccessible_children"] == [hidden]
    # a private room itself, an unknown room, a bad parameter
    status, body = _get(city, school, r["staff"])
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = _get(city, school, "!nope:school.test")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = _get(city, school, r["year5"], {"suggested_only": "maybe"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = _get(city, school, "not-a-room")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_server_acl_denied_server_gets_404_and_the_child_is_skipped():
    net, city, school, r = _setup()
    result_of(
        school.rooms.send_event(
            school.uid("alice"),
            r["maths"],
            "m.room.server_acl",
            {"allow": ["*"], "deny": ["city.test"]},
            state_key="",
        )
    )
    status, body = _get(city, school, r["maths"])
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert r["maths"] not in _ids(_walk(city, r["space"]))


def test_root_unknown_locally_is_still_forbidden_on_the_client_api():
    net, city, school, r = _setup()
    try:
        _walk(city, r["year5"])
    except MatrixError as exc:
        assert exc.errcode == "M_FORBIDDEN"
    else:
        raise AssertionError("expected 403")


def test_restricted_remote_room_shows_only_to_members_of_an_allowed_room():
    net, city, school, r = _setup()
    club = _room(
        school,
        name="Chess club",
        initial_state=[
            {
                "type": "m.room.join_rules",
                "state_key": "",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": r["local"]}],
                },
            }
        ],
    )
    _child(city, r["space"], club, order="e")
    # city's alice is in the allowed room (she created it); city's bob is not
    assert club in _ids(_walk(city, r["space"]))
    bob = result_of(
        hierarchy_ops.hierarchy(
            city.rooms,
            city.uid("bob"),
            r["space"],
            suggested_only=False,
            limit=None,
            max_depth=None,
            from_token=None,
        )
    )
    assert club not in _ids(bob) and r["maths"] in _ids(bob)
    assert [x for x in _walk(city, r["space"])["rooms"] if x["room_id"] == club][0][
        "allowed_room_ids"
    ] == [r["local"]]


def test_a_child_space_too_big_for_the_answer_is_left_for_its_own_request(monkeypatch):
    from node.federation.server import hierarchy as server_hierarchy

    net, city, school, r = _setup()
    top = _room(school, name="District", creation_content=SPACE)
    sub = _room(school, name="Sports", creation_content=SPACE)
    leaf = _room(school, name="Football")
    small = _room(school, name="Library")
    _child(school, sub, leaf)
    _child(school, top, sub, order="a")  # a space with 1 child
    _child(school, top, small, order="b")
    monkeypatch.setattr(server_hierarchy, "MAX_STATE_EVENTS", 2)
    status, body = _get(city, school, top)
    assert status == 200 and [c["room_id"] for c in body["children"]] == [small]
    # the client walk still reaches the sports space's child, asking that space itself
    _child(city, r["space"], top, order="z")
    assert _ids(_walk(city, r["space"]))[-4:] == [top, sub, leaf, small]
    asked = [p for _, _, _, p in _fed_calls(net)]
    assert f"{V1}/hierarchy/{quote(sub, safe='')}" in asked
    assert f"{V1}/hierarchy/{quote(small, safe='')}" not in asked
