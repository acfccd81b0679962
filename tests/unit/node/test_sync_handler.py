"""The ``/sync`` handler on a real ``RoomService`` (in-memory SQLite, synchronous DB)."""

from __future__ import annotations

import pytest
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import defer, task

import schema.sync  # noqa: F401 - registers the sync tables before InlineDB creates them
from node.clock import ReactorClock
from node.filtering import DEFAULT_FILTER, parse_filter
from node.http.request import Requester
from node.rooms.event_meta import EventMeta, meta
from node.stream_tokens import events_position, parse_sync_token
from node.sync.handler import SyncParams, WaitHandle
from node.sync.notifier import SyncNotifier
from node.sync.service import SyncService
from rooms_support import SERVER, FakeAccounts, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
USERS = ("alice", "bob", "carol", "dave", "u1", "u2", "u3", "u4", "u5", "u6")


class Node:
    def __init__(self, db: InlineDB | None = None) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.rclock = ReactorClock(self.clock)
        self.db = db or InlineDB()
        self.notifier = SyncNotifier(self.rclock)
        self.rooms = make_service(
            self.db, clock=self.rclock, notifier=self.notifier, accounts=FakeAccounts(USERS)
        )
        self.sync = SyncService(
            db=self.db,
            clock=self.rclock,
            server_name=SERVER,
            accounts=FakeAccounts(),
            rooms=self.rooms,
            notifier=self.notifier,
        )

    def params(self, user, since=None, flt=None, full_state=False, timeout=0, device="DEV"):
        f = flt if flt is not None else DEFAULT_FILTER
        if isinstance(f, dict):
            f = parse_filter(f)
        return SyncParams(
            requester=Requester(user, device),
            filter=f,
            since=parse_sync_token(since) if since else None,
            full_state=full_state,
            timeout_ms=timeout,
        )

    def do(self, user, since=None, **kw):
        return result_of(self.sync.handler.sync(self.params(user, since, **kw)))

    def start(self, user, since=None, **kw):
        waiting = WaitHandle()
        d = defer.ensureDeferred(self.sync.handler.sync(self.params(user, since, **kw), waiting))
        out: list = []
        d.addBoth(out.append)
        return out, waiting

    def room(self, user=ALICE, **body):
        self.clock.advance(0.01)  # v12 room IDs hash the create event (and its ts)
        return result_of(self.rooms.create_room(user, body))

    def send(self, user, room_id, body="hi", **content):
        return result_of(
            self.rooms.send_event(
                user, room_id, "m.room.message", {"msgtype": "m.text", "body": body, **content}
            )
        )

    def member(self, sender, room_id, target, membership):
        return result_of(self.rooms.update_membership(sender, room_id, target, membership))


def bodies(room_entry):
    return [
        e["content"].get("body")
        for e in room_entry["timeline"]["events"]
        if e["type"] == "m.room.message"
    ]


def types(events):
    return [(e["type"], e.get("state_key")) for e in events]


@pytest.fixture
def node():
    return Node()


# --- initial sync -----------------------------------------------------------------------
def test_initial_sync_shape(node):
    room = node.room(name="Class 5b")
    node.send(ALICE, room, "hello")
    out = node.do(ALICE)
    tok = parse_sync_token(out["next_batch"])
    assert tok.events == node.rooms.current_stream_ordering()
    assert set(out["rooms"]) == {"join", "invite", "leave", "knock"}
    assert out["account_data"] == {"events": []} and out["presence"] == {"events": []}
    assert out["to_device"] == {"events": []}
    assert out["device_lists"] == {"changed": [], "left": []}
    entry = out["rooms"]["join"][room]
    # Small room: everything fits in the timeline, so the state before it is empty.
    assert entry["timeline"]["limited"] is False
    assert types(entry["timeline"]["events"])[0] == ("m.room.create", "")
    assert bodies(entry) == ["hello"]
    assert entry["state"]["events"] == []
    assert all("room_id" not in e for e in entry["timeline"]["events"])
    assert entry["summary"] == {
        "m.heroes": [],
        "m.joined_member_count": 1,
        "m.invited_member_count": 0,
    }
    assert entry["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}
    assert entry["ephemeral"] == {"events": []}
    assert entry["account_data"] == {"events": []}


def test_limited_timeline_state_at_start_and_prev_batch(node):
    room = node.room(name="Big")
    for i in range(15):
        node.send(ALICE, room, f"m{i}")
    out = node.do(ALICE, flt={"room": {"timeline": {"limit": 5}}})
    entry = out["rooms"]["join"][room]
    tl = entry["timeline"]
    assert tl["limited"] is True
    assert bodies(entry) == [f"m{i}" for i in range(10, 15)]
    state = {(e["type"], e["state_key"]): e for e in entry["state"]["events"]}
    assert ("m.room.create", "") in state and ("m.room.name", "") in state
    assert state[("m.room.member", ALICE)]["content"]["membership"] == "join"
    # prev_batch continues exactly before the first timeline event.
    first = result_of(node.rooms.get_event(tl["events"][0]["event_id"]))
    assert events_position(tl["prev_batch"]) == meta(first).stream_ordering - 1
    older = result_of(
        node.rooms.get_events_in_range(room, events_position(tl["prev_batch"]), None, 1, "b")
    )
    assert older[0].content["body"] == "m9"


def test_incremental_sync_only_changed_rooms(node):
    r1 = node.room(name="One")
    r2 = node.room(name="Two")
    node.member(ALICE, r1, BOB, "invite")
    node.member(BOB, r1, BOB, "join")
    since = node.do(ALICE)["next_batch"]
    assert node.do(ALICE, since)["rooms"]["join"] == {}
    node.send(BOB, r1, "news")
    out = node.do(ALICE, since)
    assert set(out["rooms"]["join"]) == {r1}
    entry = out["rooms"]["join"][r1]
    assert bodies(entry) == ["news"]
    assert entry["timeline"]["limited"] is False
    assert entry["state"]["events"] == []
    assert entry["unread_notifications"]["notification_count"] == 1
    assert parse_sync_token(out["next_batch"]).events > parse_sync_token(since).events
    assert r2 not in out["rooms"]["join"]


def test_incremental_limited_gives_state_delta(node):
    room = node.room(name="Old name")
    since = node.do(ALICE)["next_batch"]
    result_of(node.rooms.send_event(ALICE, room, "m.room.name", {"name": "New name"}, ""))
    for i in range(12):
        node.send(ALICE, room, f"m{i}")
    entry = node.do(ALICE, since)["rooms"]["join"][room]
    assert entry["timeline"]["limited"] is True
    assert len(entry["timeline"]["events"]) == 10
    assert [
        e["content"]["name"] for e in entry["state"]["events"] if e["type"] == "m.room.name"
    ] == ["New name"]


# --- memberships ------------------------------------------------------------------------
def test_invite_then_join_then_kick(node):
    room = node.room(name="Maths")
    node.send(ALICE, room, "before bob")
    since = node.do(BOB)["next_batch"]
    node.member(ALICE, room, BOB, "invite")
    out = node.do(BOB, since)
    invite = out["rooms"]["invite"][room]["invite_state"]["events"]
    assert {(e["type"], e["state_key"]) for e in invite} >= {
        ("m.room.create", ""),
        ("m.room.name", ""),
        ("m.room.member", BOB),
    }
    assert all(set(e) == {"type", "state_key", "sender", "content"} for e in invite)
    assert out["rooms"]["join"] == {}
    since = out["next_batch"]

    node.member(BOB, room, BOB, "join")
    out = node.do(BOB, since)
    assert out["rooms"]["invite"] == {}
    entry = out["rooms"]["join"][room]
    all_events = entry["state"]["events"] + entry["timeline"]["events"]
    assert ("m.room.create", "") in types(all_events)  # a new join gets full state
    assert types(entry["timeline"]["events"])[-1] == ("m.room.member", BOB)
    assert "before bob" in bodies(entry)  # history is "shared"
    assert entry["summary"]["m.joined_member_count"] == 2
    since = out["next_batch"]

    node.member(ALICE, room, BOB, "leave")  # a kick
    out = node.do(BOB, since)
    assert out["rooms"]["join"] == {}
    left = out["rooms"]["leave"][room]
    kick = left["timeline"]["events"][-1]
    assert (kick["type"], kick["state_key"], kick["sender"]) == ("m.room.member", BOB, ALICE)
    since = out["next_batch"]
    node.send(ALICE, room, "after kick")
    out = node.do(BOB, since)
    assert out["rooms"]["leave"] == {} and out["rooms"]["join"] == {}


def test_history_visibility_joined_hides_earlier_events(node):
    room = node.room(
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "joined"},
            }
        ]
    )
    node.send(ALICE, room, "secret")
    node.member(ALICE, room, BOB, "invite")
    node.member(BOB, room, BOB, "join")
    node.send(ALICE, room, "welcome")
    entry = node.do(BOB)["rooms"]["join"][room]
    assert bodies(entry) == ["welcome"]
    tl = types(entry["timeline"]["events"])
    assert ("m.room.member", BOB) in tl
    # The events before the history_visibility event were sent while history was "shared"
    # (the default), so Bob, who joined later, may see them (rule 3).
    assert tl[0] == ("m.room.create", "")


def test_rooms_of_others_are_invisible(node):
    room = node.room(name="Private")
    node.send(ALICE, room, "x")
    out = node.do(BOB)
    assert out["rooms"] == {"join": {}, "invite": {}, "leave": {}, "knock": {}}


def test_left_rooms_need_include_leave_on_initial_sync(node):
    room = node.room(preset="public_chat")
    node.member(BOB, room, BOB, "join")
    node.member(BOB, room, BOB, "leave")
    assert node.do(BOB)["rooms"]["leave"] == {}
    out = node.do(BOB, flt={"room": {"include_leave": True}})
    assert types(out["rooms"]["leave"][room]["timeline"]["events"])[-1] == ("m.room.member", BOB)


def test_initial_sync_reports_kicks_and_bans(node):
    r1 = node.room(preset="public_chat")
    r2 = node.room(preset="public_chat")
    for room in (r1, r2):
        node.member(BOB, room, BOB, "join")
    node.member(ALICE, r1, BOB, "leave")
    node.member(ALICE, r2, BOB, "ban")
    out = node.do(BOB)
    assert set(out["rooms"]["leave"]) == {r1, r2}
    last = out["rooms"]["leave"][r2]["timeline"]["events"][-1]
    assert (last["content"]["membership"], last["sender"]) == ("ban", ALICE)
    # The state before the timeline describes the room (no lazy loading here).
    st = types(
        out["rooms"]["leave"][r1]["state"]["events"]
        + out["rooms"]["leave"][r1]["timeline"]["events"]
    )
    assert ("m.room.create", "") in st


# --- long poll --------------------------------------------------------------------------
def test_long_poll_wakes_on_message_and_times_out(node):
    room = node.room()
    node.member(ALICE, room, BOB, "invite")
    node.member(BOB, room, BOB, "join")
    since = node.do(BOB)["next_batch"]
    out, _ = node.start(BOB, since, timeout=30_000)
    assert out == []
    node.send(ALICE, room, "ping")
    assert bodies(out[0]["rooms"]["join"][room]) == ["ping"]

    out2, _ = node.start(BOB, out[0]["next_batch"], timeout=30_000)
    node.clock.advance(29)
    assert out2 == []
    node.clock.advance(2)
    assert out2[0]["rooms"]["join"] == {}
    assert out2[0]["next_batch"] == out[0]["next_batch"]


def test_long_poll_wakes_invitee(node):
    room = node.room()
    since = node.do(BOB)["next_batch"]
    out, _ = node.start(BOB, since, timeout=30_000)
    node.member(ALICE, room, BOB, "invite")
    assert room in out[0]["rooms"]["invite"]


def test_long_poll_ignores_filtered_events_and_disconnect_cancels(node):
    room = node.room()
    node.member(ALICE, room, BOB, "invite")
    node.member(BOB, room, BOB, "join")
    since = node.do(BOB)["next_batch"]
    flt = {"room": {"timeline": {"types": ["m.room.topic"]}, "ephemeral": {"not_types": ["*"]}}}
    out, waiting = node.start(BOB, since, flt=flt, timeout=30_000)
    node.send(ALICE, room, "filtered out")
    # The message was filtered out, but the unread count changed: the room is reported.
    entry = out[0]["rooms"]["join"][room]
    assert entry["timeline"]["events"] == []
    assert entry["unread_notifications"]["notification_count"] == 1
    out, waiting = node.start(BOB, out[0]["next_batch"], flt=flt, timeout=30_000)
    assert node.notifier.waiter_count() == 1
    waiting.cancel()
    assert isinstance(out[0].value, defer.CancelledError)
    assert node.notifier.waiter_count() == 0


def test_full_state_returns_at_once(node):
    room = node.room(name="N")
    since = node.do(ALICE)["next_batch"]
    out = node.do(ALICE, since, full_state=True, timeout=30_000)
    entry = out["rooms"]["join"][room]
    assert entry["timeline"]["events"] == []
    assert ("m.room.name", "") in types(entry["state"]["events"])


# --- ephemeral, account data, unread --------------------------------------------------
def test_typing_in_sync(node):
    room = node.room()
    node.member(ALICE, room, BOB, "invite")
    node.member(BOB, room, BOB, "join")
    since = node.do(BOB)["next_batch"]
    node.sync.typing.set_typing(room, ALICE, True, 5_000)
    out = node.do(BOB, since)
    assert out["rooms"]["join"][room]["ephemeral"]["events"] == [
        {"type": "m.typing", "content": {"user_ids": [ALICE]}}
    ]
    assert room in node.do(BOB)["rooms"]["join"]  # initial sync shows it too
    node.clock.advance(6)
    out2 = node.do(BOB, out["next_batch"])
    assert out2["rooms"]["join"][room]["ephemeral"]["events"] == [
        {"type": "m.typing", "content": {"user_ids": []}}
    ]
    # A token from before a restart (typing serial ahead of ours) is accepted.
    ahead = parse_sync_token(out2["next_batch"]).copy_with(typing=10**6)
    assert node.do(BOB, str(ahead))["next_batch"]


def test_receipts_and_unread_counts(node):
    room = node.room()
    node.member(ALICE, room, BOB, "invite")
    node.member(BOB, room, BOB, "join")
    e1 = node.send(ALICE, room, "one")
    e2 = node.send(ALICE, room, "two", **{"m.mentions": {"user_ids": [BOB]}})
    entry = node.do(BOB)["rooms"]["join"][room]
    assert entry["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
    since_a = node.do(ALICE)["next_batch"]
    since_b = node.do(BOB)["next_batch"]
    result_of(node.sync.send_receipt(BOB, room, "m.read", e1))
    out_b = node.do(BOB, since_b)
    assert out_b["rooms"]["join"][room]["unread_notifications"] == {
        "notification_count": 1,
        "highlight_count": 1,
    }
    out_a = node.do(ALICE, since_a)
    receipt = out_a["rooms"]["join"][room]["ephemeral"]["events"][0]
    assert receipt["type"] == "m.receipt"
    assert BOB in receipt["content"][e1]["m.read"]
    # Private receipts clear counts but are not shown to others.
    since_a = out_a["next_batch"]
    result_of(node.sync.send_receipt(BOB, room, "m.read.private", e2))
    assert node.do(ALICE, since_a)["rooms"]["join"] == {}
    entry = node.do(BOB, out_b["next_batch"])["rooms"]["join"][room]
    assert entry["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}
    # Own messages reset the count too.
    node.send(ALICE, room, "three")
    node.send(BOB, room, "reply")
    assert node.do(BOB)["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 0


def test_account_data_and_read_markers_in_sync(node):
    room = node.room()
    eid = node.send(ALICE, room, "x")
    result_of(node.sync.account_data.set(ALICE, None, "org.example.a", {"v": 1}))
    out = node.do(ALICE)
    assert out["account_data"]["events"] == [{"type": "org.example.a", "content": {"v": 1}}]
    since = out["next_batch"]
    assert node.do(ALICE, since)["account_data"]["events"] == []
    result_of(node.sync.set_read_markers(ALICE, room, {"m.fully_read": eid}))
    out = node.do(ALICE, since)
    assert out["rooms"]["join"][room]["account_data"]["events"] == [
        {"type": "m.fully_read", "content": {"event_id": eid}}
    ]
    assert out["account_data"]["events"] == []


# --- filters ----------------------------------------------------------------------------
def test_lazy_loading_members(node):
    room = node.room(preset="public_chat")
    for who in (BOB, CAROL):
        node.member(who, room, who, "join")
    for i in range(12):
        node.send(BOB, room, f"b{i}")
    flt = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 3}}}
    entry = node.do(CAROL, flt=flt)["rooms"]["join"][room]
    members = {e["state_key"] for e in entry["state"]["events"] if e["type"] == "m.room.member"}
    # Timeline senders and the user themself; ALICE is a hero (summary), so she is there too.
    assert members == {BOB, CAROL, ALICE}
    plain = node.do(CAROL, flt={"room": {"timeline": {"limit": 3}}})["rooms"]["join"][room]
    assert {e["state_key"] for e in plain["state"]["events"] if e["type"] == "m.room.member"} == {
        ALICE,
        BOB,
        CAROL,
    }


def test_room_and_type_filters(node):
    r1 = node.room(name="keep")
    r2 = node.room(name="drop")
    node.send(ALICE, r1, "m")
    out = node.do(
        ALICE,
        flt={
            "room": {"not_rooms": [r2], "timeline": {"types": ["m.room.message"]}},
            "event_fields": ["type", "content.body"],
        },
    )
    assert set(out["rooms"]["join"]) == {r1}
    assert out["rooms"]["join"][r1]["timeline"]["events"] == [
        {"type": "m.room.message", "content": {"body": "m"}}
    ]


def test_federation_event_format(node):
    room = node.room()
    node.send(ALICE, room, "raw")
    out = node.do(ALICE, flt={"event_format": "federation"})
    ev = out["rooms"]["join"][room]["timeline"]["events"][-1]
    assert "auth_events" in ev and "prev_events" in ev and ev["content"]["body"] == "raw"


# --- restart ----------------------------------------------------------------------------
def test_incremental_after_restart_from_old_token(node):
    room = node.room()
    since = node.do(BOB)["next_batch"]
    node.member(ALICE, room, BOB, "invite")
    node.send(ALICE, room, "x")
    restarted = Node(node.db)
    out = restarted.do(BOB, since)
    assert room in out["rooms"]["invite"]
    alice_since = node.do(ALICE)["next_batch"]
    restarted.send(ALICE, room, "after restart")
    assert bodies(restarted.do(ALICE, alice_since)["rooms"]["join"][room]) == ["after restart"]


def test_lazy_loading_incremental_skips_members_already_sent(node):
    room = node.room(preset="public_chat")
    for who in (BOB, CAROL):
        node.member(who, room, who, "join")
    flt = {"room": {"state": {"lazy_load_members": True}}}
    since = node.do(CAROL, flt=flt)["next_batch"]
    node.send(BOB, room, "1")
    out = node.do(CAROL, since, flt=flt)
    # Bob's member event was in the initial answer (timeline) and is not sent again...
    assert out["rooms"]["join"][room]["state"]["events"] == []
    # ...except when the client asks for redundant members.
    redundant = {"room": {"state": {"lazy_load_members": True, "include_redundant_members": True}}}
    out = node.do(CAROL, since, flt=redundant)
    assert [e["state_key"] for e in out["rooms"]["join"][room]["state"]["events"]] == [BOB]


def test_lazy_loading_incremental_sends_unknown_sender_once(node):
    room = node.room(preset="public_chat")
    others = [uid(f"u{i}") for i in range(1, 7)]
    for who in others:  # more members than heroes (5)
        node.member(who, room, who, "join")
    for i in range(12):
        node.send(ALICE, room, f"a{i}")
    node.member(CAROL, room, CAROL, "join")
    flt = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 2}}}
    first = node.do(CAROL, flt=flt)
    entry = first["rooms"]["join"][room]
    members = {e["state_key"] for e in entry["state"]["events"] if e["type"] == "m.room.member"}
    late = others[-1]  # joined last: not a hero, sent nothing yet
    assert late not in entry["summary"]["m.heroes"] and late not in members
    assert CAROL in members or any(e.get("state_key") == CAROL for e in entry["timeline"]["events"])
    since = first["next_batch"]
    node.send(late, room, "hello carol")
    out = node.do(CAROL, since, flt=flt)["rooms"]["join"][room]
    assert [e["state_key"] for e in out["state"]["events"]] == [late]
    since = node.do(CAROL, since, flt=flt)["next_batch"]
    node.send(late, room, "again")
    out = node.do(CAROL, since, flt=flt)["rooms"]["join"][room]
    assert out["state"]["events"] == []


def test_summary_heroes_and_counts(node):
    room = node.room(preset="public_chat")
    node.member(BOB, room, BOB, "join")
    node.member(ALICE, room, CAROL, "invite")
    entry = node.do(BOB)["rooms"]["join"][room]
    assert entry["summary"] == {
        "m.heroes": [ALICE, CAROL],
        "m.joined_member_count": 2,
        "m.invited_member_count": 1,
    }
    named = node.room(name="Named")
    since = node.do(ALICE)["next_batch"]
    node.member(ALICE, named, BOB, "invite")
    summ = node.do(ALICE, since)["rooms"]["join"][named]["summary"]
    # A named room's incremental summary carries only the counts.
    assert summ == {"m.joined_member_count": 1, "m.invited_member_count": 1}


def test_left_room_incremental_limited(node):
    room = node.room(preset="public_chat")
    node.member(BOB, room, BOB, "join")
    since = node.do(BOB)["next_batch"]
    result_of(node.rooms.send_event(ALICE, room, "m.room.topic", {"topic": "T"}, ""))
    for i in range(12):
        node.send(ALICE, room, f"m{i}")
    node.member(ALICE, room, BOB, "ban")
    node.send(ALICE, room, "after ban")
    left = node.do(BOB, since)["rooms"]["leave"][room]
    assert left["timeline"]["limited"] is True
    assert left["timeline"]["events"][-1]["content"]["membership"] == "ban"
    assert "after ban" not in bodies(left)
    assert [
        e["content"]["topic"] for e in left["state"]["events"] if e["type"] == "m.room.topic"
    ] == ["T"]


def test_state_at_rewinds_current_state(node):
    room = node.room(name="v1")
    pos1 = node.rooms.current_stream_ordering()
    result_of(node.rooms.send_event(ALICE, room, "m.room.name", {"name": "v2"}, ""))
    pos2 = node.rooms.current_stream_ordering()
    result_of(node.rooms.send_event(ALICE, room, "m.room.name", {"name": "v3"}, ""))
    reader = node.sync.handler.state

    def name_at(pos: int) -> str:
        return result_of(reader.state_at(room, pos))[("m.room.name", "")].content["name"]

    assert [name_at(pos1), name_at(pos2), name_at(10**9)] == ["v1", "v2", "v3"]
    assert ("m.room.name", "") not in result_of(reader.state_at(room, 1))
    only = result_of(reader.state_at(room, pos2, [("m.room.name", ""), ("m.none", "")]))
    assert list(only) == [("m.room.name", "")]


def test_sync_api_disconnect_cancels_long_poll(node):
    from node.http.request import ApiRequest
    from node.http.router import Router
    from node.sync.api import register_all

    room = node.room()
    since = node.do(ALICE)["next_batch"]
    router = Router()
    register_all(router, node.sync)
    route, params, _ = router.match("GET", "/_matrix/client/v3/sync")
    finished = defer.Deferred()
    raw = type("Raw", (), {"notifyFinish": lambda self: finished, "_disconnected": False})()
    req = ApiRequest(
        "GET",
        "/_matrix/client/v3/sync",
        {"since": [since], "timeout": ["60000"]},
        {},
        b"",
        "127.0.0.1",
        raw=raw,
    )
    req.requester = Requester(ALICE, "DEV")
    out: list = []
    defer.ensureDeferred(route.handler(req, **params)).addBoth(out.append)
    assert out == [] and node.notifier.waiter_count() == 1
    from node.metrics import ACTIVE_SYNCS

    assert ACTIVE_SYNCS._value.get() >= 1
    finished.errback(ConnectionError("client went away"))
    assert out == [(200, {})]
    assert node.notifier.waiter_count() == 0
    assert room


def test_recent_events_serve_woken_syncs_without_database(node):
    room = node.room()
    since = node.do(ALICE)["next_batch"]
    node.send(ALICE, room, "fresh")
    runs = node.db.runs
    out = node.do(ALICE, since)
    assert bodies(out["rooms"]["join"][room]) == ["fresh"]
    assert node.db.runs == runs  # timeline and unread counts from memory


def test_redaction_inside_the_window_is_served_redacted(node):
    room = node.room()
    since = node.do(ALICE)["next_batch"]
    eid = node.send(ALICE, room, "oops")
    red = result_of(node.rooms.redact_event(ALICE, room, eid, {"reason": "typo"}))
    events = node.do(ALICE, since)["rooms"]["join"][room]["timeline"]["events"]
    original = next(e for e in events if e["event_id"] == eid)
    assert original["content"] == {}
    assert original["unsigned"]["redacted_because"]["event_id"] == red.event_id
    assert events[-1]["type"] == "m.room.redaction"


def test_recent_events_cache_bounds():
    from types import SimpleNamespace

    from node.sync.room_state import RecentEvents

    def ev(room, so, etype="m.room.message"):
        return SimpleNamespace(
            room_id=room, type=etype, rejected_reason=None, meta=EventMeta(stream_ordering=so)
        )

    cache = RecentEvents(per_room=3, max_rooms=2)
    cache.on_persisted([ev("!a", 5), ev("!a", 6), ev("!b", 7)])
    assert [meta(e).stream_ordering for e in cache.newest_first("!a", 4, 10)] == [6, 5]
    assert cache.newest_first("!a", 3, 10) is None  # event 4 may exist: unknown
    cache.on_persisted([ev("!a", 8), ev("!a", 9)])  # 5 falls out
    assert cache.newest_first("!a", 4, 10) is None
    assert [meta(e).stream_ordering for e in cache.newest_first("!a", 5, 8)] == [8, 6]
    cache.on_persisted([ev("!c", 10)])  # "!b" is least recently used
    assert cache.newest_first("!b", 6, 10) is None
    cache.on_persisted([ev("!a", 11, "m.room.redaction")])
    assert cache.newest_first("!a", 9, 20) is None


def test_leaving_stops_typing(node):
    room = node.room(preset="public_chat")
    node.member(BOB, room, BOB, "join")
    node.sync.typing.set_typing(room, BOB, True, 30_000)
    node.member(BOB, room, BOB, "leave")
    assert node.sync.typing.typing_users(room) == []
    assert node.clock.getDelayedCalls() == []
