"""Erasing a deactivated account (client-server API "Account deactivation", ``erase``):
"users ... which join the room after the erasure request are served redacted copies of the
events sent by this account.  Users which had visibility on those events prior to the
erasure are still able to see unredacted copies."

The accounts area's endpoint and the rooms area's endpoints on one router and database, as
clients call them.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from accounts_support import PASSWORD, SERVER, V3, Node
from federation.events.model import Event
from federation.room_versions import get_room_version
from node.accounts import admin
from node.accounts.deactivation import make_room_leaver
from node.rooms.api import register_all
from node.rooms.erasure import saw_before_erasure
from node.rooms.event_meta import meta
from rooms_support import StepClock, make_service


@pytest.fixture
def node(monkeypatch):
    n = Node(monkeypatch)
    n.rooms = make_service(db=n.db, accounts=n.accounts, clock=StepClock())
    n.accounts.room_leaver = make_room_leaver(n.rooms)
    register_all(n.router, n.rooms)
    for name in ("teacher", "pupil", "early", "late"):
        n.add_user(name, display_name=name.capitalize())
    return n


def uid(name):
    return f"@{name}:{SERVER}"


def _deactivate(node, user, **extra):
    status, body = node.call("POST", V3 + "/account/deactivate", extra)
    assert status == 401, body
    auth = {
        "type": "m.login.password",
        "session": body["session"],
        "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": user},
    }
    return node.call("POST", V3 + "/account/deactivate", {**extra, "auth": auth})


def _room_with_message(node):
    rooms = node.rooms
    room_id = node.run(rooms.create_room(uid("teacher"), {"preset": "public_chat"}))
    for name in ("pupil", "early"):
        node.run(rooms.update_membership(uid(name), room_id, uid(name), "join"))
    event_id = node.run(
        rooms.send_event(
            uid("pupil"), room_id, "m.room.message", {"msgtype": "m.text", "body": "hi"}
        )
    )
    return room_id, event_id


def _seen(node, token, room_id, event_id):
    """The message as ``/messages``, ``/event`` and ``/context`` give it to the token."""
    r = quote(room_id)
    status, page = node.call("GET", f"{V3}/rooms/{r}/messages?dir=b&limit=50", token=token)
    assert status == 200, page
    [from_messages] = [e for e in page["chunk"] if e["event_id"] == event_id]
    status, single = node.call("GET", f"{V3}/rooms/{r}/event/{quote(event_id)}", token=token)
    assert status == 200, single
    status, ctx = node.call("GET", f"{V3}/rooms/{r}/context/{quote(event_id)}", token=token)
    assert status == 200, ctx
    assert from_messages["content"] == single["content"] == ctx["event"]["content"]
    assert single["sender"] == uid("pupil") and single["type"] == "m.room.message"
    return single["content"]


def _join(node, name, room_id):
    node.run(node.rooms.update_membership(uid(name), room_id, uid(name), "join"))
    return node.token_for(name)


def test_later_joiners_see_the_erased_users_messages_redacted(node):
    room_id, event_id = _room_with_message(node)
    early = node.token_for("early")
    assert _seen(node, early, room_id, event_id) == {"msgtype": "m.text", "body": "hi"}
    status, body = _deactivate(node, "pupil", erase=True)
    assert status == 200, body
    late = _join(node, "late", room_id)
    assert _seen(node, late, room_id, event_id) == {}  # redacted: no content keys survive
    # The members who could see it before the erasure still can; no redaction was sent.
    assert _seen(node, early, room_id, event_id) == {"msgtype": "m.text", "body": "hi"}
    teacher = node.token_for("teacher")
    assert _seen(node, teacher, room_id, event_id)["body"] == "hi"
    status, page = node.call("GET", f"{V3}/rooms/{quote(room_id)}/messages?dir=b", token=late)
    assert all(e["type"] != "m.room.redaction" for e in page["chunk"])
    # The stored event is untouched (it is signed; other servers may need it).
    stored = node.run(node.rooms.get_event(event_id))
    assert stored.content["body"] == "hi"


def test_deactivation_without_erase_redacts_nothing(node):
    room_id, event_id = _room_with_message(node)
    assert _deactivate(node, "pupil")[0] == 200
    late = _join(node, "late", room_id)
    assert _seen(node, late, room_id, event_id)["body"] == "hi"


def test_a_member_who_rejoins_after_the_erasure_keeps_what_they_saw(node):
    room_id, event_id = _room_with_message(node)
    node.run(node.rooms.update_membership(uid("early"), room_id, uid("early"), "leave"))
    assert _deactivate(node, "pupil", erase=True)[0] == 200
    early = _join(node, "early", room_id)
    assert _seen(node, early, room_id, event_id)["body"] == "hi"


def test_cli_erasure_reaches_the_running_node(node):
    room_id, event_id = _room_with_message(node)
    node.reactor.advance(11)  # the start-up sweep has run
    with node.db.engine.begin() as conn:  # what `parta node user deactivate --erase` does
        admin.deactivate_user(conn, server_name=SERVER, user="pupil", erase=True)
    node.reactor.advance(11)
    late = _join(node, "late", room_id)
    assert _seen(node, late, room_id, event_id) == {}
    # A restarted node reads the erasures back.
    fresh = make_service(db=node.db, accounts=node.accounts, clock=StepClock())
    fresh.erasure.load_sync()
    assert uid("pupil") in fresh.erasure.erased


def test_erase_clears_the_account_data(node):
    from node.sync.account_data import AccountDataStore

    class _Quiet:
        def notify_users(self, *_a):
            pass

    store = AccountDataStore(node.db, _Quiet())
    node.run(store.set(uid("pupil"), None, "org.example.notes", {"secret": 1}))
    assert _deactivate(node, "pupil", erase=True)[0] == 200
    assert node.run(store.get(uid("pupil"), None, "org.example.notes")) is None


def _event(stream, sender="@p:s"):
    ev = Event(
        {
            "type": "m.room.message",
            "sender": sender,
            "room_id": "!r:s",
            "content": {"body": "x"},
            "origin_server_ts": 1,
            "depth": 1,
            "prev_events": [],
            "auth_events": [],
        },
        get_room_version("11"),
        event_id=f"$e{stream}",
    )
    meta(ev).stream_ordering = stream
    return ev


def test_saw_before_erasure_rules():
    me = "@me:s"
    # joined at 5, event at 10, erasure at 20: seen.
    assert saw_before_erasure(_event(10), me, 20, [(5, "join")], [])
    # an event after the erasure (a late federated one): nobody saw it.
    assert not saw_before_erasure(_event(30), me, 20, [(5, "join")], [])
    # joined only after the erasure: not seen, even with shared history.
    assert not saw_before_erasure(_event(10), me, 20, [(25, "join")], [])
    # shared history, joined after the event but before the erasure: seen (rule 3).
    assert saw_before_erasure(_event(10), me, 20, [(15, "join")], [])
    # "joined" history: joining after the event never showed it.
    assert not saw_before_erasure(_event(10), me, 20, [(15, "join")], [(1, "joined")])


def test_sync_and_notifications_after_a_restart_keep_what_old_members_saw():
    """After a restart nothing is cached: /notifications and an incremental /sync spanning
    the erasure still give a member who was there (and changed their name since) the
    message as it was, and a newcomer's initial sync the redacted form."""
    from support.deferreds import result_of

    from node.accounts.erasure import record_erasure
    from test_ignored_users import ALICE, BOB, CAROL
    from test_ignored_users import Node as SyncNode

    node = SyncNode()
    room = node.room()
    token = node.sync_as(CAROL)["next_batch"]
    secret = node.send(BOB, room, "secret", **{"m.mentions": {"user_ids": [CAROL]}})
    result_of(node.db.run(record_erasure, BOB))
    result_of(node.rooms.erasure.refresh(BOB))
    node.member(CAROL, room, CAROL, "join")  # a display name change after the erasure
    restarted = SyncNode(node.db)
    restarted.rooms.erasure.load_sync()
    status, notes = restarted.call("GET", "/_matrix/client/v3/notifications", CAROL)
    assert status == 200
    assert [n["event"]["content"].get("body") for n in notes["notifications"]] == ["secret"]
    timeline = restarted.sync_as(CAROL, token)["rooms"]["join"][room]["timeline"]["events"]
    [msg] = [e for e in timeline if e["event_id"] == secret]
    assert msg["content"]["body"] == "secret"
    dave = uid("dave")
    restarted.member(dave, room, dave, "join")
    timeline = restarted.sync_as(dave)["rooms"]["join"][room]["timeline"]["events"]
    [msg] = [e for e in timeline if e["event_id"] == secret]
    assert msg["content"] == {}
    assert ALICE  # the room's creator, unaffected


def test_the_federation_event_format_of_sync_is_redacted_too():
    from support.deferreds import result_of

    from test_ignored_users import BOB, CAROL
    from test_ignored_users import Node as SyncNode

    node = SyncNode()
    room = node.room(members=(BOB,))
    secret = node.send(BOB, room, "secret")
    node.rooms.erasure.erased[BOB] = node.rooms.current_stream_ordering()
    node.member(CAROL, room, CAROL, "join")
    flt = '{"event_format":"federation"}'
    status, body = node.call("GET", f"/_matrix/client/v3/sync?filter={flt}", CAROL)
    assert status == 200
    [pdu] = [
        e
        for e in body["rooms"]["join"][room]["timeline"]["events"]
        if e["type"] == "m.room.message"
    ]
    assert pdu["content"] == {}
    assert result_of(node.rooms.get_event(secret)).content["body"] == "secret"
