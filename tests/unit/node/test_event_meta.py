"""The node's typed event metadata (``node.rooms.event_meta``) on the core's ``Event``."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from federation.events.model import Event
from federation.room_versions import V11
from node.rooms.event_meta import EventMeta, committed_stream, meta
from rooms_support import make_service, uid

ALICE = uid("alice")


def _event() -> Event:
    pdu = {"type": "m.room.message", "sender": ALICE, "room_id": "!r:a", "content": {}}
    return Event(pdu, V11, event_id="$e")


def test_event_carries_no_metadata_object_until_the_node_needs_one():
    ev = _event()
    assert not hasattr(ev, "__dict__")  # slotted: no per-event dict
    assert ev.meta is None and ev.content_hash_mismatch is False
    m = meta(ev)
    assert isinstance(m, EventMeta) and meta(ev) is m
    # Defaults are what an absent fact meant: unknown position, no flags, no new groups.
    assert m.stream_ordering is None and not m.outlier and not m.backfilled and m.sg_new == ()


def test_committed_stream_refuses_an_uncommitted_event():
    ev = _event()
    with pytest.raises(KeyError):
        committed_stream(ev)
    meta(ev).stream_ordering = 7
    assert committed_stream(ev) == 7


def test_redacted_state_event_keeps_its_bookkeeping_but_not_prev_content():
    svc = make_service()
    room_id = result_of(svc.create_room(ALICE, {}))
    result_of(svc.send_event(ALICE, room_id, "m.room.topic", {"topic": "a"}, state_key=""))
    topic_id = result_of(
        svc.send_event(
            ALICE, room_id, "m.room.topic", {"topic": "b"}, state_key="", txn=("DEV", "t1")
        )
    )
    original = result_of(svc.get_event(topic_id))
    assert svc.format_client_event(original)["unsigned"]["prev_content"] == {"topic": "a"}
    red_id = result_of(svc.redact_event(ALICE, room_id, topic_id, {})).event_id

    in_memory = result_of(svc.get_event(topic_id))
    svc._events.clear()
    from_db = result_of(svc.get_event(topic_id))
    for served in (in_memory, from_db):
        fmt = svc.format_client_event(served, user_id=ALICE, device_id="DEV")
        assert fmt["content"] == {}
        assert fmt["unsigned"]["redacted_because"]["event_id"] == red_id
        assert fmt["unsigned"]["transaction_id"] == "t1"
        assert "prev_content" not in fmt["unsigned"]
        assert committed_stream(served) == committed_stream(original)
    # The event as first served is not changed by its redacted copy.
    assert meta(original).redacted_by is None
