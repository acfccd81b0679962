"""The rooms area's federation hooks (``node/rooms/hooks.py``): a node without federation
does everything locally; once ``attach_federation`` hands over the hooks, the client
membership endpoints, ``/messages`` past the start of a room's copy and the deactivation
leaver go through them -- including a leaver built before the hooks were attached, as the
composition root does."""

from __future__ import annotations

from urllib.parse import quote

from support.deferreds import result_of

from node.accounts.deactivation import make_room_leaver
from node.rooms.hooks import RoomHooks
from rooms_support import Api, make_service, uid

V3 = "/_matrix/client/v3"
REMOTE_ROOM = "!elsewhere:other.test"


class RecordingMembership:
    """A stand-in for the federation's membership handshakes."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def join_room(self, user_id, room_id_or_alias, via=(), reason=None):
        self.calls.append(("join", user_id, room_id_or_alias, list(via)))
        return REMOTE_ROOM

    async def knock_room(self, user_id, room_id_or_alias, via=(), reason=None):
        self.calls.append(("knock", user_id, room_id_or_alias, list(via)))
        return REMOTE_ROOM

    async def invite_user(self, sender, room_id, target, reason=None):
        self.calls.append(("invite", sender, room_id, target))

    async def leave_room(self, user_id, room_id, reason=None):
        self.calls.append(("leave", user_id, room_id))


def _room(svc, preset="public_chat"):
    return result_of(svc.create_room(uid("alice"), {"preset": preset}))


def test_without_federation_no_hook_is_set_and_membership_is_local():
    svc = make_service()
    assert svc.hooks == RoomHooks()
    api = Api(svc)
    room = _room(svc)
    assert api.call("POST", f"{V3}/join/{quote(room)}", uid("bob"), {}) == (
        200,
        {"room_id": room},
    )
    assert result_of(svc.get_room(room)).membership(uid("bob")) == "join"


def test_attached_membership_hook_takes_joins_knocks_invites_and_leaves():
    svc = make_service()
    api = Api(svc)
    room = _room(svc)
    fed = RecordingMembership()
    svc.attach_federation(RoomHooks(membership=fed))
    query = {"via": ["other.test"]}
    path = f"{V3}/join/{quote(REMOTE_ROOM)}"
    assert api.call("POST", path, uid("bob"), {}, query) == (200, {"room_id": REMOTE_ROOM})
    path = f"{V3}/knock/{quote(REMOTE_ROOM)}"
    assert api.call("POST", path, uid("bob"), {}, query) == (200, {"room_id": REMOTE_ROOM})
    path = f"{V3}/rooms/{quote(room)}/invite"
    assert api.call("POST", path, uid("alice"), {"user_id": "@carol:other.test"}) == (200, {})
    assert api.call("POST", f"{V3}/rooms/{quote(room)}/leave", uid("alice"), {}) == (200, {})
    assert fed.calls == [
        ("join", uid("bob"), REMOTE_ROOM, ["other.test"]),
        ("knock", uid("bob"), REMOTE_ROOM, ["other.test"]),
        ("invite", uid("alice"), room, "@carol:other.test"),
        ("leave", uid("alice"), room),
    ]
    # The hook decides: the local room saw none of these changes.
    assert result_of(svc.get_room(room)).membership(uid("alice")) == "join"


def test_backfill_hook_is_asked_past_the_start_of_a_room():
    svc = make_service()
    api = Api(svc)
    room = _room(svc)
    asked: list[tuple[str, int]] = []

    async def backfill(room_id: str, limit: int) -> int:
        asked.append((room_id, limit))
        return 0  # the other servers have nothing older

    svc.attach_federation(RoomHooks(backfill=backfill))
    query = {"dir": "b", "limit": "50"}
    status, page = api.call("GET", f"{V3}/rooms/{quote(room)}/messages", uid("alice"), None, query)
    assert status == 200
    assert page["chunk"][-1]["type"] == "m.room.create"
    assert [r for r, _ in asked] == [room]


def test_deactivation_leaves_through_hooks_attached_after_the_leaver_was_built():
    svc = make_service()
    room = _room(svc)
    result_of(svc.update_membership(uid("bob"), room, uid("bob"), "join"))
    leave_all = make_room_leaver(svc)  # built before federation is wired, as in node/app.py
    fed = RecordingMembership()
    svc.attach_federation(RoomHooks(membership=fed))
    result_of(leave_all(uid("bob")))
    assert fed.calls == [("leave", uid("bob"), room)]
