"""Room upgrades (client-server API "Room Upgrades") as the members see them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from support.deferreds import result_of

from node.sync import upgrade_follow
from node.sync.account_data import AccountDataStore
from rooms_support import Api, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V3 = "/_matrix/client/v3"


@pytest.fixture
def api():
    return Api(make_service())


def state(api, room, etype, user=ALICE, key=""):
    status, body = api.call("GET", f"{V3}/rooms/{room}/state/{etype}/{key}", user)
    assert status == 200, body
    return body


def full_state(api, room, user=ALICE):
    return {
        (e["type"], e["state_key"]): e for e in api.call("GET", f"{V3}/rooms/{room}/state", user)[1]
    }


def upgrade(api, room, user=ALICE, **body):
    return api.call("POST", f"{V3}/rooms/{room}/upgrade", user, body)


def test_upgrade_moves_state_aliases_and_directory(api):
    room = api.call(
        "POST",
        V3 + "/createRoom",
        ALICE,
        {
            "preset": "public_chat",
            "name": "Chess club",
            "topic": "Tuesdays",
            "room_alias_name": "chess",
            "visibility": "public",
        },
    )[1]["room_id"]
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    api.call(
        "PUT",
        f"{V3}/rooms/{room}/state/m.room.encryption/",
        ALICE,
        {"algorithm": "m.megolm.v1.aes-sha2"},
    )
    status, body = upgrade(api, room, new_version="12")
    assert status == 200
    new = body["replacement_room"]
    assert new != room and new.startswith("!")

    create = state(api, new, "m.room.create")
    assert create["predecessor"] == {"room_id": room}  # v12: the event ID may be left out
    assert create["room_version"] == "12"
    assert state(api, new, "m.room.name") == {"name": "Chess club"}
    assert state(api, new, "m.room.topic")["topic"] == "Tuesdays"
    assert state(api, new, "m.room.join_rules")["join_rule"] == "public"
    assert state(api, new, "m.room.encryption")["algorithm"] == "m.megolm.v1.aes-sha2"
    assert state(api, new, "m.room.canonical_alias") == {"alias": "#chess:school.test"}
    assert ALICE not in state(api, new, "m.room.power_levels").get("users", {})  # v12 creator

    # the alias and the directory entry moved
    assert api.call("GET", f"{V3}/directory/room/%23chess:school.test")[1]["room_id"] == new
    assert api.call("GET", f"{V3}/directory/list/room/{new}")[1] == {"visibility": "public"}
    assert api.call("GET", f"{V3}/directory/list/room/{room}")[1] == {"visibility": "private"}

    # the old room: tombstone, no canonical alias, ordinary members silenced
    tomb = state(api, room, "m.room.tombstone")
    assert tomb["replacement_room"] == new and tomb["body"]
    assert "alias" not in state(api, room, "m.room.canonical_alias")
    levels = state(api, room, "m.room.power_levels")
    assert levels["events_default"] >= 50 and levels["invite"] >= 50
    body = {"msgtype": "m.text", "body": "still here?"}
    assert api.status("PUT", f"{V3}/rooms/{room}/send/m.room.message/t1", BOB, body) == (
        403,
        "M_FORBIDDEN",
    )
    # members follow by joining the replacement room
    assert api.call("POST", f"{V3}/rooms/{new}/join", BOB, {})[0] == 200


def test_upgrade_to_an_older_version_restores_power_levels(api):
    room = api.call(
        "POST",
        V3 + "/createRoom",
        ALICE,
        {"room_version": "10", "preset": "private_chat", "invite": [BOB]},
    )[1]["room_id"]
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    levels = state(api, room, "m.room.power_levels")
    levels["users"][BOB] = 50
    levels["events"]["m.room.encryption"] = 100
    api.call("PUT", f"{V3}/rooms/{room}/state/m.room.power_levels/", ALICE, levels)
    status, body = upgrade(api, room, new_version="11")
    assert status == 200
    new = body["replacement_room"]
    create = state(api, new, "m.room.create")
    assert create["predecessor"]["room_id"] == room
    assert create["predecessor"]["event_id"].startswith("$")
    assert state(api, new, "m.room.power_levels")["users"] == {ALICE: 100, BOB: 50}
    assert state(api, new, "m.room.join_rules")["join_rule"] == "invite"


def test_additional_creators_in_v12(api):
    room = api.call("POST", V3 + "/createRoom", ALICE, {"preset": "public_chat"})[1]["room_id"]
    status, body = upgrade(api, room, new_version="12", additional_creators=[CAROL])
    assert status == 200
    create = state(api, body["replacement_room"], "m.room.create")
    assert create["additional_creators"] == [CAROL]


def test_who_may_upgrade_and_bad_requests(api):
    room = api.call("POST", V3 + "/createRoom", ALICE, {"preset": "public_chat"})[1]["room_id"]
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    assert api.status("POST", f"{V3}/rooms/{room}/upgrade", BOB, {"new_version": "12"}) == (
        403,
        "M_FORBIDDEN",
    )
    assert api.status("POST", f"{V3}/rooms/{room}/upgrade", CAROL, {"new_version": "12"}) == (
        403,
        "M_FORBIDDEN",
    )
    assert api.status(
        "POST", f"{V3}/rooms/!nowhere:school.test/upgrade", ALICE, {"new_version": "12"}
    ) == (403, "M_FORBIDDEN")
    assert api.status("POST", f"{V3}/rooms/{room}/upgrade", ALICE, {"new_version": "99"}) == (
        400,
        "M_UNSUPPORTED_ROOM_VERSION",
    )
    assert api.status("POST", f"{V3}/rooms/{room}/upgrade", ALICE, {}) == (400, "M_MISSING_PARAM")
    assert api.status("POST", f"{V3}/rooms/{room}/upgrade", ALICE, {"new_version": 12}) == (
        400,
        "M_BAD_JSON",
    )
    assert api.status(
        "POST",
        f"{V3}/rooms/{room}/upgrade",
        ALICE,
        {"new_version": "12", "additional_creators": ["nope"]},
    ) == (400, "M_INVALID_PARAM")
    # nothing was created or tombstoned by the refused requests
    assert ("m.room.tombstone", "") not in full_state(api, room)


class _QuietNotifier:
    def notify_users(self, *args, **kw):
        pass


def test_a_member_who_follows_keeps_their_tags():
    service = make_service()
    api = Api(service)
    sync = SimpleNamespace(
        rooms=service, account_data=AccountDataStore(service.db, _QuietNotifier())
    )
    upgrade_follow.attach(sync, service, "school.test")
    room = api.call("POST", V3 + "/createRoom", ALICE, {"preset": "public_chat"})[1]["room_id"]
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    tags = {"tags": {"u.maths": {"order": 0.5}}}
    result_of(sync.account_data.set(BOB, room, "m.tag", tags))
    new = upgrade(api, room, new_version="12")[1]["replacement_room"]
    api.call("POST", f"{V3}/rooms/{new}/join", BOB, {})
    assert result_of(sync.account_data.get(BOB, new, "m.tag")) == tags
    # alice had no tags: none are made up
    assert result_of(sync.account_data.get(ALICE, new, "m.tag")) is None


def test_members_of_an_invite_only_room_are_invited_to_follow(api):
    room = api.call("POST", V3 + "/createRoom", ALICE, {"preset": "private_chat", "invite": [BOB]})
    room = room[1]["room_id"]
    assert api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})[0] == 200
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": CAROL})  # invited only
    status, body = upgrade(api, room, new_version="11")
    assert status == 200, body
    new_room = body["replacement_room"]
    members = {
        e["state_key"]: e["content"]["membership"]
        for e in api.call("GET", f"{V3}/rooms/{new_room}/members", ALICE)[1]["chunk"]
    }
    assert members == {ALICE: "join", BOB: "invite"}  # joined members only
    assert api.call("POST", f"{V3}/rooms/{new_room}/join", BOB, {})[0] == 200
    assert api.status("POST", f"{V3}/rooms/{new_room}/join", CAROL, {}) == (403, "M_FORBIDDEN")


def test_public_rooms_need_no_invites_to_follow(api):
    room = api.call("POST", V3 + "/createRoom", ALICE, {"preset": "public_chat"})[1]["room_id"]
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    new_room = upgrade(api, room, new_version="11")[1]["replacement_room"]
    members = api.call("GET", f"{V3}/rooms/{new_room}/members", ALICE)[1]["chunk"]
    assert [e["state_key"] for e in members] == [ALICE]
    assert api.call("POST", f"{V3}/rooms/{new_room}/join", BOB, {})[0] == 200
