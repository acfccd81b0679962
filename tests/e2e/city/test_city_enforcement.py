"""E2E: the closed federation: a real gateway, two enrolled schools (A, B),
one rogue node (a Parta node that is not enrolled), all real processes on loopback with TLS
from the test CA, plus in-process member-server doubles (``FakeServer``) enrolled through
the gateway's API -- one of class ``school`` (it relays what it is given), one ``external``
(a ministry).

* the rogue node's federation requests get 403 ``M_FORBIDDEN`` "server X is not in the city
  roster" (member servers' identical requests succeed);
* its users cannot be invited into or join school rooms (403 for the clients);
* an event it fabricates and a member server relays in a transaction is refused;
* an ``external`` server cannot join a school room, but joins a room whose
  ``org.parta.room.audience`` admits it;
* after enrolment it works (its user joins and chats); after revocation (``parta gateway
  school revoke``) it is cut off: its requests get 403 again and the schools stop sending
  to it;
* the gateway recorded the roster version each school acknowledged.
"""

from __future__ import annotations

import os
import time

import pytest

from city_fixtures import city, city_ca  # noqa: F401 - pytest fixtures
from city_harness import metric, signing_key_of, wait_until
from e2e_helpers import run
from fed_harness import (
    Account,
    client_api,
    close_all,
    join_via,
    joined_members,
    send_text,
    wait_for,
    wait_for_bodies,
)
from federation_env import FakeRoom, q

pytestmark = pytest.mark.timeout(900)

PROFILE = "/_matrix/federation/v1/query/profile?user_id={}"


@pytest.fixture(scope="module")
def world(city):  # noqa: F811 - the pytest fixture imported above
    gateway = city.start_gateway()
    a, a_id = city.school("a")
    b, b_id = city.school("b")
    rogue = city.new_node("rogue")
    rogue.start()  # never enrolled (yet)
    member = city.fake("fake-member")  # class school
    ministry = city.fake("ministry", server_class="external")
    version = gateway.roster_version()
    for node in (a, b):
        city.wait_version(node, version)
    return {
        "gateway": gateway,
        "a": a,
        "b": b,
        "rogue": rogue,
        "member": member,
        "ministry": ministry,
        "alice": Account(a, "alice"),
        "bob": Account(b, "bob"),
        "eve": Account(rogue, "eve"),
        "ids": {"a": a_id, "b": b_id},
        "city": city,
    }


def _api(account: Account, method: str, path: str, body=None, query=None):
    class _C:
        homeserver = account.node.base_url
        access_token = account.access_token

    return client_api(_C, method, path, body, query)


def rogue_request(world, destination: str, method: str, path: str, body=None):
    """A request signed by the rogue node's own server key (as the rogue would send it)."""
    rogue = world["rogue"]
    return world["member"].request(
        destination, method, path, body, signing_key=signing_key_of(rogue), origin=rogue.server_name
    )


def create_room(account: Account, **body) -> str:
    status, reply = _api(
        account, "POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat", **body}
    )
    assert status == 200, reply
    return reply["room_id"]


# --- a rogue node is outside -----------------------------------------------------------------
def test_rogue_federation_requests_get_403(world):
    a, rogue = world["a"], world["rogue"]
    path = PROFILE.format(q(world["alice"].user_id))
    for dest in (a, world["b"], world["gateway"]):
        status, body = rogue_request(world, dest.server_name, "GET", path)
        assert status == 403, (dest.label, status, body)
        assert body["errcode"] == "M_FORBIDDEN"
        assert body["error"] == f"server {rogue.server_name} is not in the city roster"
    # The same request from a member server is answered.
    status, body = world["member"].request(a.server_name, "GET", path)
    assert status == 200, body
    # And a transaction from the rogue is refused before anything is looked at.
    status, body = rogue_request(
        world,
        a.server_name,
        "PUT",
        "/_matrix/federation/v1/send/rogue-1",
        {"origin": rogue.server_name, "origin_server_ts": 1, "pdus": []},
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body


def test_rogue_users_cannot_be_invited_or_join(world):
    alice, bob, eve = world["alice"], world["bob"], world["eve"]
    room_id = create_room(alice, name="Klasse 7b")
    world["room_id"] = room_id
    status, body = _api(
        alice, "POST", f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": eve.user_id}
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    assert "not in the city roster" in body["error"], body
    # The rogue's user tries to join through A: A refuses the rogue's make_join.
    status, body = _api(
        eve,
        "POST",
        f"/_matrix/client/v3/join/{q(room_id)}",
        {},
        {"server_name": [world["a"].server_name]},
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    assert "not in the city roster" in body["error"], body
    # A member school's user joins the same room (control).

    async def scenario():
        wb = await bob.watcher()
        try:
            await join_via(wb.client, room_id, [world["a"].server_name])
            await wait_for(
                lambda: _members(alice, room_id, {alice.user_id, bob.user_id}),
                what="bob joined on A",
            )
        finally:
            await close_all(wb)

    run(scenario(), timeout=300)
    assert eve.user_id not in run(_joined(alice, room_id))
    # A school user cannot join a room on the rogue node either: A never contacts it.
    rogue_room = create_room(eve, name="Draussen")
    status, body = _api(
        alice,
        "POST",
        f"/_matrix/client/v3/join/{q(rogue_room)}",
        {},
        {"server_name": [world["rogue"].server_name]},
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    assert "not in the city roster" in body["error"], body


async def _joined(account, room_id):
    w = await account.watcher(initial_sync=False)
    try:
        return await joined_members(w.client, room_id)
    finally:
        await close_all(w)


async def _members(account, room_id, expected):
    return await _joined(account, room_id) == expected


def test_rogue_event_relayed_by_a_member_server_is_refused(world):
    member, rogue, room_id = world["member"], world["rogue"], world["room_id"]
    a = world["a"]
    mallory = f"@mallory:{member.server_name}"
    room = FakeRoom.join(member, a.server_name, room_id, mallory)
    world["member_room"] = room
    rogue_key = signing_key_of(rogue)
    eve = world["eve"].user_id
    # Fabricated by the rogue (its user, its signature): a message and a join.
    fabricated = room.build(
        type="m.room.message",
        sender=eve,
        content={"msgtype": "m.text", "body": "von draussen"},
        signing_key=rogue_key,
        server_name=rogue.server_name,
    )
    smuggled_join = room.build(
        type="m.room.member",
        sender=eve,
        state_key=eve,
        content={"membership": "join"},
        signing_key=rogue_key,
        server_name=rogue.server_name,
    )
    honest = room.build(
        type="m.room.message", sender=mallory, content={"msgtype": "m.text", "body": "von mallory"}
    )
    _txn, status, reply = room.send([fabricated.pdu, smuggled_join.pdu, honest.pdu])
    assert status == 200, reply
    results = reply["pdus"]
    assert results[honest.event_id] == {}, reply
    for ev in (fabricated, smuggled_join):
        assert "error" in results[ev.event_id], reply
        assert rogue.server_name in results[ev.event_id]["error"], reply
        status, body = _api(
            world["alice"], "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/event/{q(ev.event_id)}"
        )
        assert status == 404, (status, body)
    status, body = _api(
        world["alice"], "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/event/{q(honest.event_id)}"
    )
    assert status == 200 and body["content"]["body"] == "von mallory", body
    assert eve not in run(_joined(world["alice"], room_id))


def test_external_server_only_joins_rooms_that_admit_it(world):
    ministry, a, alice = world["ministry"], world["a"], world["alice"]
    official = f"@official:{ministry.server_name}"
    path = "/_matrix/federation/v1/make_join/{}/{}?ver=10&ver=11&ver=12"
    # A school room (no audience event: schools and the city only).
    status, body = ministry.request(
        a.server_name, "GET", path.format(q(world["room_id"]), q(official))
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    assert "external" in body["error"], body
    # Nor can it skip make_join: a join event built from the room's state (the member
    # double knows it) and sent straight to send_join is refused as well.
    room = world["member_room"]
    join = room.build(
        type="m.room.member",
        sender=official,
        state_key=official,
        content={"membership": "join"},
        signing_key=ministry.signing_key,
        server_name=ministry.server_name,
    )
    status, body = ministry.request(
        a.server_name,
        "PUT",
        f"/_matrix/federation/v2/send_join/{q(world['room_id'])}/{q(join.event_id)}",
        join.pdu,
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    assert "external" in body["error"], body
    # Inviting the ministry's user into that room is refused too.
    status, body = _api(
        alice,
        "POST",
        f"/_matrix/client/v3/rooms/{q(world['room_id'])}/invite",
        {"user_id": official},
    )
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    # A room that admits external servers.
    open_room = create_room(
        alice,
        name="Schulamt",
        initial_state=[
            {
                "type": "org.parta.room.audience",
                "state_key": "",
                "content": {"classes": ["school", "city", "external"]},
            }
        ],
    )
    joined = ministry.join_room(a.server_name, open_room, official)
    assert joined["event"].state_key == official
    wait_until(lambda: official in run(_joined(alice, open_room)), "the ministry joined")


# --- enrolment and revocation ----------------------------------------------------------------
def test_after_enrolment_the_rogue_node_works(world):
    city, rogue, gateway = world["city"], world["rogue"], world["gateway"]  # noqa: F811 - world's city is that fixture
    rogue.stop_checked()
    world["ids"]["rogue"] = city.enrol(rogue)
    rogue.start()
    version = gateway.roster_version()
    for node in (world["a"], world["b"], rogue):
        city.wait_version(node, version)
    status, body = rogue_request(
        world, world["a"].server_name, "GET", PROFILE.format(q(world["alice"].user_id))
    )
    assert status == 200, body
    alice, eve, room_id = world["alice"], world["eve"], world["room_id"]

    async def scenario():
        we, wa = await eve.watcher(), await alice.watcher()
        try:
            await join_via(we.client, room_id, [world["a"].server_name])
            await send_text(we, room_id, "Jetzt bin ich dabei")
            await wait_for_bodies(wa, room_id, ["Jetzt bin ich dabei"])
            await send_text(wa, room_id, "Willkommen")
            await wait_for_bodies(we, room_id, ["Willkommen"])
        finally:
            await close_all(we, wa)

    run(scenario(), timeout=300)


def test_after_revocation_the_rogue_node_is_cut_off(world):
    city, rogue, gateway, a = world["city"], world["rogue"], world["gateway"], world["a"]  # noqa: F811 - world's city is that fixture
    started = time.monotonic()
    version = gateway.revoke(world["ids"]["rogue"])
    for node in (a, world["b"]):
        city.wait_version(node, version)
    took = time.monotonic() - started
    print(f"revocation enforced by A and B {took:.1f}s after 'school revoke'")
    status, body = rogue_request(
        world, a.server_name, "GET", PROFILE.format(q(world["alice"].user_id))
    )
    assert status == 403, body
    assert body["error"] == f"server {rogue.server_name} is not in the city roster"
    # A stops sending the room's events to the revoked server (and says so in its log).
    alice, room_id = world["alice"], world["room_id"]

    async def scenario():
        wa = await alice.watcher()
        try:
            await send_text(wa, room_id, "Nach dem Widerruf")
        finally:
            await close_all(wa)

    run(scenario())
    wait_until(
        lambda: f"destination={rogue.server_name}" in _log(a) and "server_policy" in _log(a),
        "A logs that it no longer sends to the rogue",
    )


def _log(node) -> str:
    with open(node.log_path, encoding="utf-8", errors="replace") as fh:
        return "".join(line for line in fh if "server_policy" in line)


def test_gateway_recorded_acknowledged_versions(world):
    gateway = world["gateway"]
    version = gateway.roster_version()
    gateway.stop_checked()  # writes roster_acks.json on the way out
    import json

    with open(os.path.join(gateway.data_dir, "roster_acks.json")) as fh:
        acks = json.load(fh)
    for node in (world["a"], world["b"]):
        assert acks[node.server_name]["version"] == version, acks
    assert world["rogue"].server_name in acks  # it acked while enrolled
    assert (metric(world["a"], "parta_roster_stale") or 0) == 0
