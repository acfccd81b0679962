"""``m.presence`` EDUs in and out (server-server API "Presence")."""

from __future__ import annotations

from types import SimpleNamespace

from support.clocks import fake_clock
from support.deferreds import result_of

from node.federation.edus import EduHandler
from node.federation.presence import attach_outbound
from node.sync.presence import PresenceManager

HERE = "school.test"
ALICE = "@alice:school.test"  # a teacher here
REMOTE = "@rita:other.test"  # joined to a room with alice
STRANGER = "@sam:other.test"  # in no room we know


class FakeRooms:
    async def joined_room_ids(self, user_id):
        return ["!r:school.test"] if user_id in (ALICE, REMOTE) else []

    async def rooms_shared_with(self, user_id):
        return {ALICE, REMOTE} if user_id in (ALICE, REMOTE) else {user_id}


class FakeNotifier:
    def __init__(self):
        self.calls = []

    def notify_users(self, user_ids, stream, position=None):
        self.calls.append((sorted(user_ids), stream, position))


def manager(enabled=True):
    return PresenceManager(
        clock=fake_clock(1_700_000_000_000),
        notifier=FakeNotifier(),
        rooms=FakeRooms(),
        server_name=HERE,
        role_of={ALICE: "teacher"}.get,
        enabled=enabled,
    )


def edus_for(mgr):
    sync = SimpleNamespace(handler=SimpleNamespace(presence=mgr))
    return EduHandler(rooms=FakeRooms(), sync=sync)


def push(*entries):
    return {"edu_type": "m.presence", "content": {"push": list(entries)}}


def test_inbound_presence_reaches_local_users_sharing_a_room():
    mgr = manager()
    edus = edus_for(mgr)
    entry = {"user_id": REMOTE, "presence": "online", "last_active_ago": 5000}
    result_of(edus.handle("other.test", push({**entry, "status_msg": "hi"})))
    assert result_of(mgr.may_see(ALICE, REMOTE))
    content = mgr.content(REMOTE)
    assert content["presence"] == "online" and content["status_msg"] == "hi"
    assert content["last_active_ago"] >= 5000
    assert mgr.notifier.calls[-1][0] == [ALICE, REMOTE]
    # another server's status message is cut to the local limit
    result_of(edus.handle("other.test", push({**entry, "status_msg": "x" * 10_000})))
    assert len(mgr.content(REMOTE)["status_msg"]) == 256


def test_inbound_presence_is_checked():
    mgr = manager()
    edus = edus_for(mgr)
    bad = [
        {"user_id": REMOTE, "presence": "online"},  # sent by another server (below)
        {"user_id": STRANGER, "presence": "online"},  # in no room we know
        {"user_id": "@rita:other.test", "presence": "dancing"},
        {"user_id": "not a user", "presence": "online"},
        "junk",
    ]
    result_of(edus.handle("third.test", push(bad[0])))
    result_of(edus.handle("other.test", push(*bad[1:])))
    result_of(edus.handle("other.test", {"edu_type": "m.presence", "content": {"push": 3}}))
    assert mgr.content(REMOTE)["presence"] == "offline"
    assert mgr.content(STRANGER)["presence"] == "offline"
    assert mgr.notifier.calls == []
    # presence off: ignored
    off = manager(enabled=False)
    ok = {"user_id": REMOTE, "presence": "online", "last_active_ago": 0}
    result_of(edus_for(off).handle("other.test", push(ok)))
    assert off.notifier.calls == []


class FakeSender:
    def __init__(self):
        self.sent = []

    async def destinations_for_room(self, room_id):
        return {"other.test"}

    async def send_edu(self, destinations, edu_type, content, coalesce_key=None):
        self.sent.append((sorted(destinations), edu_type, content, coalesce_key))


def test_outbound_presence_goes_to_servers_sharing_a_room():
    mgr = manager()
    sender = FakeSender()
    attach_outbound(
        sender, rooms=FakeRooms(), sync=SimpleNamespace(handler=SimpleNamespace(presence=mgr))
    )
    result_of(mgr.set_presence(ALICE, "online", "teaching"))
    assert len(sender.sent) == 1
    dests, edu_type, content, key = sender.sent[0]
    assert dests == ["other.test"] and edu_type == "m.presence"
    assert key == f"presence|{ALICE}"
    (entry,) = content["push"]
    assert entry["user_id"] == ALICE and entry["presence"] == "online"
    assert entry["status_msg"] == "teaching" and entry["currently_active"] is True
    assert entry["last_active_ago"] >= 0
    # the same state again sends nothing; a pupil's presence is never sent
    result_of(mgr.set_presence(ALICE, "online"))
    result_of(mgr.set_presence("@pupil:school.test", "online"))
    assert len(sender.sent) == 1
