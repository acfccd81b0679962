"""Membership endpoints: join/invite/leave/kick/ban/unban/forget transitions and errors,
joined_rooms, profile propagation."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from rooms_support import Api, FakeAccounts, make_service, uid

ALICE, BOB, CAROL, DAVE = uid("alice"), uid("bob"), uid("carol"), uid("dave")
V3 = "/_matrix/client/v3"


@pytest.fixture
def env():
    svc = make_service()
    api = Api(svc)
    return svc, api


def new_room(api, user=ALICE, **body):
    status, out = api.call("POST", V3 + "/createRoom", user, body)
    assert status == 200
    return out["room_id"]


def membership(svc, room_id, user):
    return result_of(svc.get_room(room_id)).membership(user)


def test_invite_then_join(env):
    svc, api = env
    room = new_room(api)
    assert api.status("POST", f"{V3}/rooms/{room}/join", BOB, {}) == (403, "M_FORBIDDEN")
    assert api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB}) == (200, {})
    # inviting again is fine ("or was already invited") and sends nothing
    before = svc.current_stream_ordering()
    assert api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB}) == (200, {})
    assert svc.current_stream_ordering() == before
    assert api.call("POST", f"{V3}/join/{room}", BOB, {}) == (200, {"room_id": room})
    ev = result_of(svc.get_room(room)).get("m.room.member", BOB)
    assert ev.content == {"membership": "join", "displayname": "Bob"}
    assert api.call("GET", V3 + "/joined_rooms", BOB) == (200, {"joined_rooms": [room]})
    # invitee already joined -> 403 with a clear message
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB})
    assert e.value.http_status == 403 and "already in the room" in e.value.message


def test_not_invited_message_and_unknown_room(env):
    svc, api = env
    room = new_room(api)
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    assert e.value.message == "You are not invited to this room."
    assert api.status("POST", f"{V3}/rooms/!unknown/join", BOB, {}) == (404, "M_NOT_FOUND")
    assert api.status("POST", f"{V3}/join/%23nope:school.test", BOB, {}) == (404, "M_NOT_FOUND")


def test_join_public_room_by_alias(env):
    svc, api = env
    room = new_room(api, preset="public_chat", room_alias_name="lobby")
    assert api.call(
        "POST", f"{V3}/join/%23lobby:school.test", BOB, {}, query={"server_name": "school.test"}
    ) == (200, {"room_id": room})
    assert membership(svc, room, BOB) == "join"


def test_non_member_cannot_invite_and_invite_power(env):
    svc, api = env
    room = new_room(api, preset="public_chat", power_level_content_override={"invite": 50})
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/invite", BOB, {"user_id": CAROL})
    assert e.value.http_status == 403 and "not in this room" in e.value.message
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/invite", BOB, {"user_id": CAROL})
    assert "power level" in e.value.message
    # unknown local user
    assert api.status("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": uid("ghost")}) == (
        404,
        "M_NOT_FOUND",
    )
    # missing user_id
    assert api.status("POST", f"{V3}/rooms/{room}/invite", ALICE, {}) == (400, "M_MISSING_PARAM")


def test_leave_and_reject_invite(env):
    svc, api = env
    room = new_room(api, invite=[BOB])
    assert membership(svc, room, BOB) == "invite"
    assert api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {"reason": "no thanks"}) == (200, {})
    ev = result_of(svc.get_room(room)).get("m.room.member", BOB)
    assert ev.content == {"membership": "leave", "reason": "no thanks"}
    assert ev.sender == BOB
    # leaving again is a no-op; never having been in the room is 403
    assert api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {}) == (200, {})
    assert api.status("POST", f"{V3}/rooms/{room}/leave", CAROL, {}) == (403, "M_FORBIDDEN")


def test_kick_ban_unban(env):
    svc, api = env
    room = new_room(api, preset="public_chat")
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    api.call("POST", f"{V3}/rooms/{room}/join", CAROL, {})
    # a plain member cannot kick
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/kick", BOB, {"user_id": CAROL})
    assert e.value.message == ("You do not have a high enough power level to kick from this room")
    assert api.call(
        "POST", f"{V3}/rooms/{room}/kick", ALICE, {"user_id": BOB, "reason": "noise"}
    ) == (200, {})
    ev = result_of(svc.get_room(room)).get("m.room.member", BOB)
    assert ev.content == {"membership": "leave", "reason": "noise"} and ev.sender == ALICE
    # kicking someone not in the room
    assert api.status("POST", f"{V3}/rooms/{room}/kick", ALICE, {"user_id": DAVE}) == (
        403,
        "M_FORBIDDEN",
    )
    # ban: the user cannot come back, nor be invited
    assert api.call("POST", f"{V3}/rooms/{room}/ban", ALICE, {"user_id": CAROL}) == (200, {})
    assert membership(svc, room, CAROL) == "ban"
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/join", CAROL, {})
    assert e.value.message == "You are banned from this room"
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": CAROL})
    assert "banned" in e.value.message
    # banning someone never in the room works too (pre-emptive ban)
    assert api.call("POST", f"{V3}/rooms/{room}/ban", ALICE, {"user_id": DAVE}) == (200, {})
    # unban -> leave; then the user may join the public room again
    assert api.status("POST", f"{V3}/rooms/{room}/unban", ALICE, {"user_id": BOB}) == (
        403,
        "M_FORBIDDEN",
    )  # bob is not banned
    assert api.call("POST", f"{V3}/rooms/{room}/unban", ALICE, {"user_id": CAROL}) == (200, {})
    assert membership(svc, room, CAROL) == "leave"
    api.call("POST", f"{V3}/rooms/{room}/join", CAROL, {})
    assert membership(svc, room, CAROL) == "join"


def test_membership_via_state_endpoint(env):
    svc, api = env
    room = new_room(api)
    status, out = api.call(
        "PUT", f"{V3}/rooms/{room}/state/m.room.member/{BOB}", ALICE, {"membership": "invite"}
    )
    assert status == 200 and membership(svc, room, BOB) == "invite"
    # bob cannot set alice's membership
    assert (
        api.status(
            "PUT", f"{V3}/rooms/{room}/state/m.room.member/{ALICE}", BOB, {"membership": "leave"}
        )[0]
        == 403
    )


def test_forget(env):
    svc, api = env
    room = new_room(api, preset="public_chat")
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    assert api.status("POST", f"{V3}/rooms/{room}/forget", BOB, {}) == (400, "M_UNKNOWN")
    api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {})
    assert [r for r, _, _ in result_of(svc.get_rooms_for_user(BOB))] == [room]
    assert api.call("POST", f"{V3}/rooms/{room}/forget", BOB, {}) == (200, {})
    assert result_of(svc.get_rooms_for_user(BOB)) == []
    assert result_of(svc.forgotten_room_ids(BOB)) == {room}
    # joining again un-forgets
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    assert result_of(svc.forgotten_room_ids(BOB)) == set()


def test_joined_rooms_and_shared_users():
    svc = make_service()
    api = Api(svc)
    r1 = new_room(api, preset="public_chat")
    r2 = new_room(api, user=CAROL)
    api.call("POST", f"{V3}/rooms/{r1}/join", BOB, {})
    assert result_of(svc.joined_room_ids(ALICE)) == sorted([r1])
    assert result_of(svc.rooms_shared_with(BOB)) == {ALICE, BOB}
    assert result_of(svc.rooms_shared_with(CAROL)) == {CAROL}
    api.call("POST", f"{V3}/rooms/{r1}/leave", BOB, {})
    assert result_of(svc.joined_room_ids(BOB)) == []
    assert r2 in result_of(svc.joined_room_ids(CAROL))


def test_memberships_changed_for_sync():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, preset="public_chat")
    since = svc.current_stream_ordering()
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {})
    changes = result_of(svc.user_memberships_changed(BOB, since))
    assert [(r, m) for r, m, _ in changes] == [(room, "leave")]
    assert changes[0][2].type == "m.room.member"
    assert result_of(svc.user_memberships_changed(BOB, svc.current_stream_ordering())) == []


def test_invite_notifies_invitee_and_stripped_state():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, name="Physics")
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB})
    assert BOB in svc.notifier.calls[-1][2]
    stripped = result_of(svc.stripped_state(room))
    assert {
        "type": "m.room.name",
        "state_key": "",
        "content": {"name": "Physics"},
        "sender": ALICE,
    } in stripped
    assert {s["type"] for s in stripped} >= {"m.room.create", "m.room.join_rules"}


def test_profile_change_updates_member_events():
    accounts = FakeAccounts()
    svc = make_service(accounts=accounts)
    api = Api(svc)
    r1 = new_room(api)
    r2 = new_room(api, name="two")
    result_of(
        svc.on_profile_changed(
            ALICE, {"displayname": "Ms Alice", "avatar_url": "mxc://school.test/a"}
        )
    )
    for room in (r1, r2):
        ev = result_of(svc.get_room(room)).get("m.room.member", ALICE)
        assert ev.content == {
            "membership": "join",
            "displayname": "Ms Alice",
            "avatar_url": "mxc://school.test/a",
        }
        fmt = svc.format_client_event(ev)
        assert fmt["unsigned"]["prev_content"]["displayname"] == "Alice"
    # the same profile again sends nothing
    before = svc.current_stream_ordering()
    result_of(
        svc.on_profile_changed(
            ALICE, {"displayname": "Ms Alice", "avatar_url": "mxc://school.test/a"}
        )
    )
    assert svc.current_stream_ordering() == before


def test_rooms_wiring_registers_profile_listener():
    from node.rooms import wiring

    class Ctx:
        pass

    svc0 = make_service()
    ctx = Ctx()
    ctx.db, ctx.clock, ctx.server_name = svc0.db, svc0.clock, svc0.server_name
    ctx.signing_key = svc0.signing_key

    from node.config import Config
    from node.http.router import Router

    ctx.config = Config(default_room_version="11")

    ctx.router = Router()
    accounts = FakeAccounts()
    svc = wiring.wire(ctx, accounts=accounts, notifier=None)
    assert accounts.listeners == [svc.on_profile_changed]
    assert any(r.template.endswith("/createRoom") and r.rate_limited for r in ctx.router.routes())
    room = result_of(svc.create_room(ALICE, {}))
    assert result_of(svc.get_room(room)).room_version.identifier == "11"


def test_restricted_room_join_through_space_membership(env):
    svc, api = env
    space = new_room(api, creation_content={"type": "m.space"}, preset="public_chat")
    inner = new_room(
        api,
        initial_state=[
            {
                "type": "m.room.join_rules",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": space}],
                },
            }
        ],
    )
    # not in the space yet: refused with a clear message
    with pytest.raises(MatrixError) as e:
        api.call("POST", f"{V3}/rooms/{inner}/join", BOB, {})
    assert e.value.http_status == 403 and "grants access" in e.value.message
    api.call("POST", f"{V3}/rooms/{space}/join", BOB, {})
    assert api.call("POST", f"{V3}/rooms/{inner}/join", BOB, {}) == (200, {"room_id": inner})
    ev = result_of(svc.get_room(inner)).get("m.room.member", BOB)
    assert ev.content["membership"] == "join"
    assert ev.content["join_authorised_via_users_server"] == ALICE
