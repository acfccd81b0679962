"""RoomService: room creation, sending, idempotent transactions, persistence, redaction."""

from __future__ import annotations

import pytest
from support.db import InlineDB
from support.deferreds import result_of

from federation.auth.errors import AuthError
from federation.errors import MatrixError, NotFound
from federation.room_versions import V10
from node.rooms.event_meta import meta
from rooms_support import Api, RecordingNotifier, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")


def create(svc, user=ALICE, **body):
    return result_of(svc.create_room(user, body))


def state_types(svc, room_id):
    return {k: ev for k, ev in result_of(svc.get_current_state(room_id)).items()}


# --- createRoom ------------------------------------------------------------------------


def test_private_chat_preset_and_event_order():
    svc = make_service()
    room_id = create(svc, name="Class 5b", topic="Maths")
    assert room_id.startswith("!") and ":" not in room_id  # v12: hash room ID
    evs = result_of(svc.get_events_in_range(room_id, None, None, 50, "f"))
    assert [(e.type, e.state_key) for e in evs] == [
        ("m.room.create", ""),
        ("m.room.member", ALICE),
        ("m.room.power_levels", ""),
        ("m.room.join_rules", ""),
        ("m.room.history_visibility", ""),
        ("m.room.guest_access", ""),
        ("m.room.name", ""),
        ("m.room.topic", ""),
    ]
    st = state_types(svc, room_id)
    assert st[("m.room.join_rules", "")].content == {"join_rule": "invite"}
    assert st[("m.room.history_visibility", "")].content["history_visibility"] == "shared"
    assert st[("m.room.guest_access", "")].content["guest_access"] == "can_join"
    assert st[("m.room.member", ALICE)].content == {"membership": "join", "displayname": "Alice"}
    assert st[("m.room.topic", "")].content["topic"] == "Maths"
    # v12: the creator is not listed in users; tombstone above state_default
    pl = st[("m.room.power_levels", "")].content
    assert ALICE not in pl["users"] and pl["events"]["m.room.tombstone"] == 150
    # prev_events chain and depths
    assert [e.depth for e in evs] == list(range(1, 9))
    for a, b in zip(evs, evs[1:], strict=False):
        assert b.prev_event_ids == [a.event_id]
    # v12: the create event is never an auth event
    assert all(evs[0].event_id not in e.auth_event_ids for e in evs[1:])


def test_public_chat_preset_visibility_and_alias():
    svc = make_service()
    room_id = create(svc, preset="public_chat", visibility="public", room_alias_name="hall")
    st = state_types(svc, room_id)
    assert st[("m.room.join_rules", "")].content["join_rule"] == "public"
    assert st[("m.room.guest_access", "")].content["guest_access"] == "forbidden"
    assert st[("m.room.canonical_alias", "")].content == {"alias": "#hall:school.test"}
    room = result_of(svc.get_room(room_id))
    assert room.is_public
    with pytest.raises(MatrixError) as e:
        create(svc, room_alias_name="hall")
    assert e.value.errcode == "M_ROOM_IN_USE"


def test_visibility_public_without_preset_means_public_chat():
    svc = make_service()
    room_id = create(svc, visibility="public")
    assert state_types(svc, room_id)[("m.room.join_rules", "")].content["join_rule"] == "public"


def test_power_level_override_and_initial_state():
    svc = make_service()
    room_id = create(
        svc,
        power_level_content_override={"events_default": 50, "users": {BOB: 50}},
        initial_state=[
            {"type": "m.room.join_rules", "content": {"join_rule": "public"}},
            {"type": "m.room.name", "content": {"name": "old"}},
            {"type": "org.school.info", "state_key": "x", "content": {"a": 1}},
        ],
        name="new",
    )
    st = state_types(svc, room_id)
    pl = st[("m.room.power_levels", "")].content
    assert pl["events_default"] == 50 and pl["users"] == {BOB: 50}
    assert st[("m.room.join_rules", "")].content["join_rule"] == "public"  # beats preset
    assert st[("m.room.name", "")].content == {"name": "new"}  # name wins
    assert st[("org.school.info", "x")].content == {"a": 1}
    evs = result_of(svc.get_events_in_range(room_id, None, None, 50, "f"))
    assert [e.type for e in evs].count("m.room.join_rules") == 1  # no preset dup


def test_room_version_10_has_server_room_id_and_creator_power():
    svc = make_service()
    room_id = create(svc, room_version="10")
    assert room_id.endswith(":school.test")
    st = state_types(svc, room_id)
    assert st[("m.room.create", "")].content["creator"] == ALICE
    assert st[("m.room.power_levels", "")].content["users"] == {ALICE: 100}
    assert result_of(svc.get_room(room_id)).room_version is V10


def test_unsupported_room_version():
    svc = make_service()
    with pytest.raises(MatrixError) as e:
        create(svc, room_version="3")
    assert e.value.errcode == "M_UNSUPPORTED_ROOM_VERSION" and e.value.http_status == 400


def test_invalid_initial_state_leaves_no_room():
    svc = make_service()
    # power levels that leave the creator unable to... v10: set own level below name's
    with pytest.raises(MatrixError) as e:
        create(
            svc, room_version="10", power_level_content_override={"users": {ALICE: 10}}, name="x"
        )
    assert e.value.errcode == "M_INVALID_ROOM_STATE"
    assert (
        result_of(svc.db.run(lambda c: c.exec_driver_sql("select count(*) from events").scalar()))
        == 0
    )


def test_trusted_private_chat_invitees_become_creators_v12():
    svc = make_service()
    room_id = create(svc, preset="trusted_private_chat", invite=[BOB], is_direct=True)
    st = state_types(svc, room_id)
    assert st[("m.room.create", "")].content["additional_creators"] == [BOB]
    invite = st[("m.room.member", BOB)]
    assert invite.content == {"membership": "invite", "displayname": "Bob", "is_direct": True}


def test_space_creation_content_type():
    svc = make_service()
    room_id = create(svc, creation_content={"type": "m.space"}, name="School")
    assert result_of(svc.get_room(room_id)).room_type == "m.space"
    from sqlalchemy import select

    from schema.events import rooms

    row = result_of(svc.db.run(lambda c: c.execute(select(rooms)).first()))
    assert row.room_type == "m.space" and row.room_version == "12"


def test_invite_unknown_local_user_on_create():
    svc = make_service()
    with pytest.raises(MatrixError) as e:
        create(svc, invite=[uid("nobody")])
    assert e.value.http_status == 400


# --- sending -----------------------------------------------------------------------------


def test_send_and_idempotent_txn_also_after_restart():
    db = InlineDB()
    svc = make_service(db)
    room_id = create(svc)
    e1 = result_of(
        svc.send_event(
            ALICE, room_id, "m.room.message", {"msgtype": "m.text", "body": "hi"}, txn=("DEV", "t1")
        )
    )
    e2 = result_of(
        svc.send_event(
            ALICE, room_id, "m.room.message", {"msgtype": "m.text", "body": "hi"}, txn=("DEV", "t1")
        )
    )
    assert e1 == e2
    e3 = result_of(
        svc.send_event(
            ALICE,
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": "hi"},
            txn=("DEV2", "t1"),
        )
    )
    assert e3 != e1
    # a new service over the same database (restart) still knows the transaction
    svc2 = make_service(db)
    assert (
        result_of(
            svc2.send_event(
                ALICE,
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": "hi"},
                txn=("DEV", "t1"),
            )
        )
        == e1
    )
    ev = result_of(svc2.get_event(e1))
    fmt = svc2.format_client_event(ev, user_id=ALICE, device_id="DEV")
    assert fmt["unsigned"]["transaction_id"] == "t1"
    assert (
        "transaction_id"
        not in svc2.format_client_event(ev, user_id=ALICE, device_id="OTHER")["unsigned"]
    )
    # only two messages were stored
    evs = result_of(svc2.get_events_in_range(room_id, None, None, 100, "b"))
    assert sum(e.type == "m.room.message" for e in evs) == 2


def test_send_builds_on_forward_extremity_and_notifies():
    notifier = RecordingNotifier()
    svc = make_service(notifier=notifier)
    room_id = create(svc)
    before = svc.current_stream_ordering()
    eid = result_of(svc.send_event(ALICE, room_id, "m.room.message", {"body": "x"}))
    assert svc.current_stream_ordering() == before + 1
    assert notifier.calls[-1][:2] == (room_id, before + 1)
    ev = result_of(svc.get_event(eid))
    room = result_of(svc.get_room(room_id))
    assert room.extremities == [eid]
    fmt = svc.format_client_event(ev)
    assert fmt["room_id"] == room_id and fmt["content"] == {"body": "x"}
    assert fmt["sender"] == ALICE and "state_key" not in fmt and fmt["unsigned"]["age"] >= 0


def test_non_member_cannot_send():
    svc = make_service()
    room_id = create(svc)
    with pytest.raises(AuthError) as e:
        result_of(svc.send_event(BOB, room_id, "m.room.message", {"body": "x"}))
    assert e.value.errcode == "M_FORBIDDEN" and e.value.http_status == 403


def test_unknown_room_send_is_403_join_is_404():
    svc = make_service()
    with pytest.raises(MatrixError) as e:
        result_of(svc.send_event(ALICE, "!nope", "m.room.message", {"body": "x"}))
    assert e.value.http_status == 403 and e.value.errcode == "M_FORBIDDEN"
    with pytest.raises(NotFound):
        result_of(svc.update_membership(ALICE, "!nope", ALICE, "join"))


def test_forbidden_state_change_for_plain_member():
    svc = make_service()
    room_id = create(svc, preset="public_chat")
    result_of(svc.update_membership(BOB, room_id, BOB, "join"))
    with pytest.raises(AuthError) as e:
        result_of(svc.send_event(BOB, room_id, "m.room.name", {"name": "hacked"}, state_key=""))
    assert e.value.http_status == 403 and "power level" in e.value.message
    assert state_types(svc, room_id).get(("m.room.name", "")) is None


def test_state_event_has_prev_content():
    svc = make_service()
    room_id = create(svc, name="one")
    eid = result_of(svc.send_event(ALICE, room_id, "m.room.name", {"name": "two"}, state_key=""))
    svc._events.clear()
    ev = result_of(svc.get_event(eid))
    unsigned = svc.format_client_event(ev)["unsigned"]
    assert unsigned["prev_content"] == {"name": "one"} and "replaces_state" in unsigned


def test_state_survives_restart():
    db = InlineDB()
    svc = make_service(db)
    room_id = create(svc, name="Kept")
    eid = result_of(svc.send_event(ALICE, room_id, "m.room.message", {"body": "x"}))
    svc2 = make_service(db)
    room = result_of(svc2.get_room(room_id))
    assert room.content("m.room.name") == {"name": "Kept"}
    assert room.extremities == [eid] and room.joined == {ALICE}
    assert svc2.current_stream_ordering() == svc.current_stream_ordering()
    eid2 = result_of(svc2.send_event(ALICE, room_id, "m.room.message", {"body": "y"}))
    assert result_of(svc2.get_event(eid2)).prev_event_ids == [eid]


def test_concurrent_sends_share_one_transaction():
    from twisted.internet import defer

    db = InlineDB()
    svc = make_service(db)
    room_id = create(svc)
    # Hold the DB so sends queue up behind one in-flight batch.
    gate: list = []
    real_run = db.run

    def slow_run(fn, *a, **k):
        if fn.__name__ == "write_events" and not gate:
            d = defer.Deferred()
            gate.append((d, fn, a, k))
            return d
        return real_run(fn, *a, **k)

    db.run = slow_run
    ds = [
        defer.ensureDeferred(svc.send_event(ALICE, room_id, "m.room.message", {"body": str(i)}))
        for i in range(5)
    ]
    assert not any(d.called for d in ds)
    batches_before = svc.persister.batches_written
    d, fn, a, k = gate[0]
    real_run(fn, *a, **k).chainDeferred(d)
    assert all(d.called for d in ds)
    # the first send was its own batch; the other four were written together
    assert svc.persister.batches_written - batches_before == 2
    evs = result_of(svc.get_events_in_range(room_id, None, None, 5, "b"))
    assert [e.content["body"] for e in evs] == ["4", "3", "2", "1", "0"]


def test_failed_write_reloads_room_from_db():
    db = InlineDB()
    svc = make_service(db)
    room_id = create(svc)
    db.fail_next = True
    with pytest.raises(RuntimeError):
        result_of(svc.send_event(ALICE, room_id, "m.room.message", {"body": "lost"}))
    eid = result_of(svc.send_event(ALICE, room_id, "m.room.message", {"body": "ok"}))
    evs = result_of(svc.get_events_in_range(room_id, None, None, 2, "b"))
    assert evs[0].event_id == eid and evs[1].type != "m.room.message"
    assert meta(evs[0]).stream_ordering == meta(evs[1]).stream_ordering + 1


# --- redaction ---------------------------------------------------------------------------


def test_redaction_by_sender_and_served_redacted():
    svc = make_service()
    room_id = create(svc)
    eid = result_of(
        svc.send_event(ALICE, room_id, "m.room.message", {"msgtype": "m.text", "body": "oops"})
    )
    red_id = result_of(
        svc.send_event(
            ALICE, room_id, "m.room.redaction", {"redacts": eid, "reason": "typo"}, txn=("D", "r1")
        )
    )
    ev = result_of(svc.get_event(eid))
    fmt = svc.format_client_event(ev)
    assert fmt["content"] == {}
    assert fmt["unsigned"]["redacted_because"]["event_id"] == red_id
    assert fmt["unsigned"]["redacted_because"]["redacts"] == eid
    # from the database too
    svc._events.clear()
    fmt2 = svc.format_client_event(result_of(svc.get_event(eid)))
    assert fmt2["content"] == {} and fmt2["unsigned"]["redacted_because"]["content"] == {
        "redacts": eid,
        "reason": "typo",
    }


def test_only_sender_or_redact_power_may_redact():
    svc = make_service()
    room_id = create(svc, preset="public_chat")
    result_of(svc.update_membership(BOB, room_id, BOB, "join"))
    alice_msg = result_of(svc.send_event(ALICE, room_id, "m.room.message", {"body": "a"}))
    bob_msg = result_of(svc.send_event(BOB, room_id, "m.room.message", {"body": "b"}))
    with pytest.raises(MatrixError) as e:
        result_of(svc.redact_event(BOB, room_id, alice_msg, {}))
    assert e.value.http_status == 403
    result_of(svc.redact_event(ALICE, room_id, bob_msg, {}))  # alice is a creator
    assert result_of(svc.get_event(bob_msg)).content == {}
    with pytest.raises(NotFound):
        result_of(svc.redact_event(ALICE, room_id, "$missing", {}))


def test_redacted_state_event_is_redacted_in_current_state():
    svc = make_service()
    room_id = create(svc, name="secret")
    name_ev = result_of(svc.get_current_state(room_id))[("m.room.name", "")]
    result_of(svc.redact_event(ALICE, room_id, name_ev.event_id, {}))
    assert result_of(svc.get_current_state(room_id))[("m.room.name", "")].content == {}


def test_txn_memory_is_bounded(monkeypatch):
    import node.rooms.service as service_module

    monkeypatch.setattr(service_module, "TXN_MAX", 3)
    svc = make_service()
    room_id = create(svc)
    ids = [
        result_of(
            svc.send_event(ALICE, room_id, "m.room.message", {"body": str(i)}, txn=("D", f"t{i}"))
        )
        for i in range(5)
    ]
    assert len(svc.txn_ids) == 3
    # recent transactions are still recognised
    assert (
        result_of(svc.send_event(ALICE, room_id, "m.room.message", {"body": "4"}, txn=("D", "t4")))
        == ids[4]
    )


# --- a join_rule that is not a string ------------------------------------------------------


@pytest.mark.parametrize("version", ["10", "11", "12"])
@pytest.mark.parametrize("join_rule", [5, None, ["invite"]], ids=["number", "null", "list"])
def test_non_string_join_rule_lets_nobody_join_even_invited(version, join_rule):
    # Auth rules, membership join: no named join rule matches, so "Otherwise, reject".
    v3 = "/_matrix/client/v3"
    svc = make_service()
    api = Api(svc)
    room_id = create(svc, room_version=version)
    status, _ = api.call(
        "PUT", f"{v3}/rooms/{room_id}/state/m.room.join_rules/", ALICE, {"join_rule": join_rule}
    )
    assert status == 200
    assert api.call("POST", f"{v3}/rooms/{room_id}/invite", ALICE, {"user_id": BOB}) == (200, {})
    assert api.status("POST", f"{v3}/rooms/{room_id}/join", BOB, {}) == (403, "M_FORBIDDEN")
    assert api.status("POST", f"{v3}/rooms/{room_id}/join", CAROL, {}) == (403, "M_FORBIDDEN")
    room = result_of(svc.get_room(room_id))
    assert room.membership(BOB) == "invite" and room.membership(CAROL) is None
    assert room.membership(ALICE) == "join"
