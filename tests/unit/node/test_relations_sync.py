"""Relations in the sync area: bundled aggregations on /sync timelines and threaded read
receipts (``thread_id`` must name the event's thread), through the real handlers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from support.deferreds import result_of

from test_sync_api import V3, Api
from test_sync_handler import ALICE, BOB, Node


@pytest.fixture
def api():
    return Api(Node())


def thread_reply(node, user, room, root, text):
    return node.send(
        user, room, text, **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    )


def timeline(body, room):
    return {e["event_id"]: e for e in body["rooms"]["join"][room]["timeline"]["events"]}


def test_sync_timeline_events_carry_aggregations(api):
    node = api.node
    room = node.room(preset="public_chat")
    node.member(BOB, room, BOB, "join")
    root = node.send(ALICE, room, "root")
    reply = thread_reply(node, BOB, room, root, "in thread")
    _, body = api.call("GET", V3 + "/sync", user=BOB)
    events = timeline(body, room)
    thread = events[root]["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 1 and thread["current_user_participated"] is True
    assert thread["latest_event"]["event_id"] == reply
    assert "room_id" not in thread["latest_event"]  # as the timeline's own events
    assert "m.relations" not in events[reply]["unsigned"]
    _, body = api.call("GET", V3 + "/sync", user=ALICE)
    assert timeline(body, room)[root]["unsigned"]["m.relations"]["m.thread"][
        "current_user_participated"
    ]  # alice sent the root
    # A filter that projects `unsigned` away gets no bundle and no error.
    _, body = api.call(
        "GET", V3 + "/sync", user=BOB, query={"filter": '{"event_fields":["event_id","type"]}'}
    )
    assert all(set(e) <= {"event_id", "type"} for e in timeline(body, room).values())


def test_incremental_sync_of_new_events_reads_no_aggregations(api):
    node = api.node
    room = node.room(preset="public_chat")
    _, body = api.call("GET", V3 + "/sync")
    reads = node.rooms.relations.reads
    node.send(ALICE, room, "new")
    _, body = api.call("GET", V3 + "/sync", query={"since": body["next_batch"]})
    assert len(timeline(body, room)) == 1
    assert node.rooms.relations.reads == reads


def test_threaded_receipts_name_the_events_thread(api):
    node = api.node
    room = node.room(preset="public_chat")
    node.member(BOB, room, BOB, "join")
    root = node.send(ALICE, room, "root")
    in_thread = thread_reply(node, BOB, room, root, "reply")
    reaction = node.rooms.send_event(
        ALICE,
        room,
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": in_thread, "key": "+1"}},
    )
    reaction = result_of(reaction)
    base = V3 + f"/rooms/{room}/receipt/m.read"
    ok = [(root, "main"), (root, root), (in_thread, root), (reaction, root)]
    for eid, thread_id in ok:
        assert api.call("POST", f"{base}/{eid}", body={"thread_id": thread_id}) == (200, {})
    bad = [(in_thread, "main"), (root, "$other"), (reaction, "main")]
    for eid, thread_id in bad:
        status, err = api.call("POST", f"{base}/{eid}", body={"thread_id": thread_id})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM"), (eid, thread_id)
    # Who is not in the room learns nothing about threads: 403 as without thread_id.
    assert (
        api.call("POST", f"{base}/{root}", user="@dave:school.test", body={"thread_id": "main"})[0]
        == 403
    )
    # Bob sees Alice's threaded receipt with its thread_id in the m.receipt EDU.
    _, body = api.call("GET", V3 + "/sync", user=BOB)
    ephemeral = body["rooms"]["join"][room]["ephemeral"]["events"]
    receipt = next(e for e in ephemeral if e["type"] == "m.receipt")
    assert receipt["content"][reaction]["m.read"][ALICE]["thread_id"] == root


def test_the_sender_is_answered_before_syncs_are_woken():
    # matrix-js-sdk fails a thread reply whose remote echo (/sync) arrives before the
    # answer to its send; the persister answers senders first.
    from twisted.internet import defer

    from rooms_support import StepClock, make_service

    order = []

    class Notifier:
        def notify_room_event(self, room_id, stream_ordering, extra_user_ids=()):
            order.append("sync woken")

        def notify_users(self, user_ids, stream):
            pass

    class Clock(StepClock):
        def call_later(self, seconds, fn, *args):
            return SimpleNamespace(active=lambda: False, cancel=lambda: None)

    svc = make_service(notifier=Notifier(), clock=Clock())
    room = result_of(svc.create_room(ALICE, {}))
    order.clear()
    svc.persister.hold()  # the write completes later, as on the database thread
    d = defer.ensureDeferred(svc.send_event(ALICE, room, "m.room.message", {"body": "x"}))
    d.addCallback(lambda _: order.append("sender answered"))
    assert order == []
    svc.persister.release()
    result_of(d)
    assert order == ["sender answered", "sync woken"]
