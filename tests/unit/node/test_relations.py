"""Event relationships: which events relate, /relations, /threads and the bundled
aggregations (``unsigned.m.relations``) as a client sees them, in-process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from node.rooms.relations_extract import Original, relation_of, replaces
from rooms_support import Api, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


# --- which events relate ---------------------------------------------------------------
def _ev(content, etype="m.room.message", state_key=None, event_id="$child"):
    pdu = {"type": etype, "content": content, "sender": ALICE, "room_id": "!r:school.test"}
    if state_key is not None:
        pdu["state_key"] = state_key

    # relation_of reads only ``pdu`` and ``event_id`` of an Event.
    return SimpleNamespace(pdu=pdu, event_id=event_id)


def rel(content, **kw):
    return relation_of(_ev(content, **kw))


def test_relation_needs_rel_type_and_event_id_strings():
    assert rel({"body": "x"}) is None
    # A rich reply is no relation.
    assert rel({"m.relates_to": {"m.in_reply_to": {"event_id": "$p"}}}) is None
    assert rel({"m.relates_to": {"rel_type": "m.thread"}}) is None
    assert rel({"m.relates_to": {"rel_type": 5, "event_id": "$p"}}) is None
    assert rel({"m.relates_to": {"rel_type": "m.thread", "event_id": ["$p"]}}) is None
    assert rel({"m.relates_to": {"rel_type": "m.thread", "event_id": "not-an-id"}}) is None
    assert rel({"m.relates_to": "m.thread"}) is None
    assert rel({"m.relates_to": {"rel_type": "m.thread", "event_id": "$child"}}) is None
    assert rel({"m.relates_to": {"rel_type": "x" * 300, "event_id": "$p"}}) is None
    r = rel({"m.relates_to": {"rel_type": "m.thread", "event_id": "$p", "is_falling_back": True}})
    assert r is not None and (r.parent_id, r.rel_type, r.replace_ok) == ("$p", "m.thread", False)


def test_replacement_rules_of_the_child_alone():
    edit = {"m.relates_to": {"rel_type": "m.replace", "event_id": "$p"}}
    assert rel(dict(edit, **{"m.new_content": {"body": "b"}})).replace_ok
    assert not rel(dict(edit)).replace_ok  # no m.new_content
    assert not rel(dict(edit, **{"m.new_content": "b"})).replace_ok
    # Encrypted: m.new_content is inside the ciphertext.
    assert rel(dict(edit, ciphertext="..."), etype="m.room.encrypted").replace_ok
    # A state event never replaces anything.
    assert not rel(dict(edit, **{"m.new_content": {}}), state_key="").replace_ok


def test_replacement_rules_against_the_original():
    orig = Original("!r", ALICE, "m.room.message", False, False, False)
    assert replaces(orig, "!r", ALICE, "m.room.message", True)
    assert not replaces(orig, "!r", ALICE, "m.room.message", False)
    assert not replaces(orig, "!other", ALICE, "m.room.message", True)
    assert not replaces(orig, "!r", BOB, "m.room.message", True)
    assert not replaces(orig, "!r", ALICE, "m.sticker", True)
    for flags in ((True, False, False), (False, True, False), (False, False, True)):
        changed = Original("!r", ALICE, "m.room.message", *flags)
        assert not replaces(changed, "!r", ALICE, "m.room.message", True)


# --- in-process API ----------------------------------------------------------------------
def new_room(api, user=ALICE, **body):
    return api.call("POST", V3 + "/createRoom", user, body)[1]["room_id"]


_txn = [0]


def send(api, room, user, content, etype="m.room.message"):
    _txn[0] += 1
    return api.call("PUT", f"{V3}/rooms/{room}/send/{etype}/t{_txn[0]}", user, content)[1][
        "event_id"
    ]


def say(api, room, user, text, **relates):
    content = {"msgtype": "m.text", "body": text}
    if relates:
        content["m.relates_to"] = relates
    return send(api, room, user, content)


def reply(api, room, user, root, text):
    return say(api, room, user, text, rel_type="m.thread", event_id=root)


def edit(api, room, user, target, text):
    return send(
        api,
        room,
        user,
        {
            "msgtype": "m.text",
            "body": "* " + text,
            "m.new_content": {"msgtype": "m.text", "body": text},
            "m.relates_to": {"rel_type": "m.replace", "event_id": target},
        },
    )


def redact(api, room, user, target):
    _txn[0] += 1
    return api.call("PUT", f"{V3}/rooms/{room}/redact/{target}/r{_txn[0]}", user, {})


def join(api, room, user):
    api.call("POST", f"{V3}/rooms/{room}/join", user, {})


def get(api, path, user, **query):
    return api.call("GET", path, user, query=query)[1]


def relations(api, room, parent, user=ALICE, *parts, **query):
    path = "/".join([f"{V1}/rooms/{room}/relations/{parent}", *parts])
    return get(api, path, user, **query)


def event(api, room, eid, user=ALICE):
    return get(api, f"{V3}/rooms/{room}/event/{eid}", user)


def bodies(chunk):
    return [e["content"].get("body") for e in chunk]


@pytest.fixture
def env():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, preset="public_chat")
    join(api, room, BOB)
    join(api, room, CAROL)
    return svc, api, room


def test_relations_lists_children_newest_first_with_filters(env):
    _svc, api, room = env
    root = say(api, room, ALICE, "root")
    r1 = reply(api, room, BOB, root, "r1")
    ref = say(api, room, CAROL, "ref", rel_type="m.reference", event_id=root)
    r2 = reply(api, room, ALICE, root, "r2")
    say(api, room, BOB, "unrelated")
    out = relations(api, room, root)
    assert [e["event_id"] for e in out["chunk"]] == [r2, ref, r1]
    assert "next_batch" not in out and "prev_batch" not in out
    assert "recursion_depth" not in out
    out = relations(api, room, root, ALICE, "m.thread")
    assert [e["event_id"] for e in out["chunk"]] == [r2, r1]
    assert relations(api, room, root, ALICE, "m.thread", "m.sticker")["chunk"] == []
    out = relations(api, room, root, ALICE, "m.reference", "m.room.message")
    assert [e["event_id"] for e in out["chunk"]] == [ref]
    # dir=f: oldest first
    out = relations(api, room, root, ALICE, "m.thread", dir="f")
    assert [e["event_id"] for e in out["chunk"]] == [r1, r2]
    # An event without children, an unknown event.
    assert relations(api, room, r1)["chunk"] == []
    assert api.status("GET", f"{V1}/rooms/{room}/relations/$nope", ALICE) == (404, "M_NOT_FOUND")


def test_relations_pagination_tokens(env):
    _svc, api, room = env
    root = say(api, room, ALICE, "root")
    replies = [reply(api, room, BOB, root, f"r{i}") for i in range(7)]
    page1 = relations(api, room, root, limit="3")
    assert bodies(page1["chunk"]) == ["r6", "r5", "r4"]
    page2 = relations(api, room, root, limit="3", **{"from": page1["next_batch"]})
    assert bodies(page2["chunk"]) == ["r3", "r2", "r1"]
    assert page2["prev_batch"] == page1["next_batch"]
    page3 = relations(api, room, root, limit="3", **{"from": page2["next_batch"]})
    assert bodies(page3["chunk"]) == ["r0"] and "next_batch" not in page3
    # from page 1, to page 2: the range between (page 2's events)
    between = relations(
        api, room, root, limit="10", **{"from": page1["next_batch"], "to": page2["next_batch"]}
    )
    assert bodies(between["chunk"]) == ["r3", "r2", "r1"]
    # forwards
    fwd1 = relations(api, room, root, dir="f", limit="4")
    assert bodies(fwd1["chunk"]) == ["r0", "r1", "r2", "r3"]
    fwd2 = relations(api, room, root, dir="f", limit="4", **{"from": fwd1["next_batch"]})
    assert bodies(fwd2["chunk"]) == ["r4", "r5", "r6"] and "next_batch" not in fwd2
    # A /messages token is a valid `from`.
    start = get(api, f"{V3}/rooms/{room}/messages", ALICE, dir="b", limit="1")["start"]
    assert len(relations(api, room, root, **{"from": start})["chunk"]) == len(replies)


def test_relations_bad_parameters(env):
    _svc, api, room = env
    root = say(api, room, ALICE, "root")
    base = f"{V1}/rooms/{room}/relations/{root}"
    assert api.status("GET", base, ALICE, query={"dir": "x"}) == (400, "M_INVALID_PARAM")
    assert api.status("GET", base, ALICE, query={"from": "zzz"}) == (400, "M_INVALID_PARAM")
    assert api.status("GET", base, ALICE, query={"limit": "many"}) == (400, "M_INVALID_PARAM")
    assert api.status("GET", base, ALICE, query={"recurse": "maybe"})[0] == 400
    # A huge limit is capped, a zero limit still answers.
    assert relations(api, room, root, limit="100000")["chunk"] == []
    assert relations(api, room, root, limit="0")["chunk"] == []


def test_recurse_follows_matching_events_three_levels_deep(env):
    _svc, api, room = env
    root = say(api, room, ALICE, "root")
    r1 = reply(api, room, BOB, root, "r1")
    react = send(
        api,
        room,
        CAROL,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": r1, "key": "👍"}},
        "m.reaction",
    )
    e1 = edit(api, room, BOB, r1, "r1 edited")
    lvl3 = say(api, room, ALICE, "l3", rel_type="m.reference", event_id=e1)
    lvl4 = say(api, room, ALICE, "l4", rel_type="m.reference", event_id=lvl3)
    out = relations(api, room, root, recurse="true")
    ids = [e["event_id"] for e in out["chunk"]]
    assert ids == [lvl3, e1, react, r1] and lvl4 not in ids
    assert out["recursion_depth"] == 3
    out = relations(api, room, root, recurse="false")
    assert [e["event_id"] for e in out["chunk"]] == [r1] and out["recursion_depth"] == 1
    # The filter applies to every level: the reaction hangs off a matching thread event,
    # the edit too, but with rel_type m.thread only the thread event itself matches.
    out = relations(api, room, root, ALICE, "m.thread", recurse="true")
    assert [e["event_id"] for e in out["chunk"]] == [r1]


def test_relations_need_the_parent_to_be_visible():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, preset="private_chat")
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB})
    join(api, room, BOB)
    before = say(api, room, ALICE, "before bob left")
    reply(api, room, ALICE, before, "thread reply")
    api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {})
    after = say(api, room, ALICE, "after bob left")
    reply(api, room, ALICE, after, "hidden reply")
    # Bob saw `before` (shared history while he was in) but not `after`.
    assert bodies(relations(api, room, before, BOB)["chunk"]) == ["thread reply"]
    path = f"{V1}/rooms/{room}/relations/{after}"
    assert api.status("GET", path, BOB) == (404, "M_NOT_FOUND")
    # Carol never joined: the same 404 as for an unknown event.
    assert api.status("GET", f"{V1}/rooms/{room}/relations/{before}", CAROL) == (
        404,
        "M_NOT_FOUND",
    )
    assert api.status("GET", f"{V1}/rooms/{room}/threads", CAROL) == (403, "M_FORBIDDEN")


# --- bundled aggregations ----------------------------------------------------------------
def test_thread_aggregation(env):
    _svc, api, room = env
    root = say(api, room, ALICE, "root")
    reply(api, room, BOB, root, "first")
    last = reply(api, room, BOB, root, "second")
    edit(api, room, BOB, last, "second, edited")
    for user, participated in ((ALICE, True), (BOB, True), (CAROL, False)):
        thread = event(api, room, root, user)["unsigned"]["m.relations"]["m.thread"]
        assert thread["count"] == 2
        assert thread["current_user_participated"] is participated
        latest = thread["latest_event"]
        assert latest["event_id"] == last and latest["content"]["body"] == "second"
        assert latest["room_id"] == room
        # The latest event carries its own bundle: its edit.
        assert latest["unsigned"]["m.relations"]["m.replace"]["content"]["m.new_content"] == {
            "msgtype": "m.text",
            "body": "second, edited",
        }
    # Redacting the latest reply makes the one before it the latest.
    redact(api, room, BOB, last)
    thread = event(api, room, root)["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 1 and thread["latest_event"]["content"]["body"] == "first"


def test_replace_aggregation_takes_the_latest_valid_edit(env):
    _svc, api, room = env
    orig = say(api, room, ALICE, "original")
    assert "m.relations" not in event(api, room, orig)["unsigned"]
    e1 = edit(api, room, ALICE, orig, "one")
    e2 = edit(api, room, ALICE, orig, "two")
    edit(api, room, BOB, orig, "bob may not edit alice")  # another sender
    send(  # no m.new_content
        api,
        room,
        ALICE,
        {"body": "x", "m.relates_to": {"rel_type": "m.replace", "event_id": orig}},
    )
    send(  # another type
        api,
        room,
        ALICE,
        {
            "body": "x",
            "m.new_content": {"body": "x"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": orig},
        },
        "m.sticker",
    )
    got = event(api, room, orig)["unsigned"]["m.relations"]["m.replace"]
    assert got["event_id"] == e2 and got["sender"] == ALICE and got["room_id"] == room
    # The original's content is left intact.
    assert event(api, room, orig)["content"]["body"] == "original"
    # Redacting the latest edit reverts to the one before.
    redact(api, room, ALICE, e2)
    assert event(api, room, orig)["unsigned"]["m.relations"]["m.replace"]["event_id"] == e1
    # An edit of an edit is not an edit.
    edit(api, room, ALICE, e1, "edit of edit")
    assert "m.relations" not in event(api, room, e1)["unsigned"]
    # A redacted original gets no m.replace.
    redact(api, room, ALICE, orig)
    assert "m.relations" not in event(api, room, orig)["unsigned"]


def test_state_events_are_neither_edited_nor_bundled(env):
    _svc, api, room = env
    state_id = api.call("PUT", f"{V3}/rooms/{room}/state/m.room.topic/", ALICE, {"topic": "maths"})[
        1
    ]["event_id"]
    send(
        api,
        room,
        ALICE,
        {
            "topic": "x",
            "m.new_content": {"topic": "x"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": state_id},
        },
        "m.room.topic",
    )
    say(api, room, ALICE, "ref", rel_type="m.reference", event_id=state_id)
    assert "m.relations" not in event(api, room, state_id)["unsigned"]


def test_reference_aggregation_and_messages_context(env):
    _svc, api, room = env
    target = say(api, room, ALICE, "poll")
    one = say(api, room, BOB, "vote 1", rel_type="m.reference", event_id=target)
    two = say(api, room, CAROL, "vote 2", rel_type="m.reference", event_id=target)
    want = {"chunk": [{"event_id": one}, {"event_id": two}]}
    assert event(api, room, target)["unsigned"]["m.relations"]["m.reference"] == want
    chunk = get(api, f"{V3}/rooms/{room}/messages", BOB, dir="b", limit="10")["chunk"]
    served = {e["event_id"]: e for e in chunk}
    assert served[target]["unsigned"]["m.relations"]["m.reference"] == want
    assert "m.relations" not in served[one]["unsigned"]
    ctx = get(api, f"{V3}/rooms/{room}/context/{one}", BOB, limit="4")
    assert ctx["events_before"][0]["unsigned"]["m.relations"]["m.reference"] == want


def test_relation_to_an_event_in_another_room_is_ignored(env):
    _svc, api, room = env
    other = new_room(api, preset="public_chat")
    parent = say(api, room, ALICE, "parent")
    say(api, other, ALICE, "elsewhere", rel_type="m.reference", event_id=parent)
    assert "m.relations" not in event(api, room, parent)["unsigned"]
    assert relations(api, room, parent)["chunk"] == []


def test_aggregations_are_cached_and_new_events_cost_no_read(env):
    svc, api, room = env
    root = say(api, room, ALICE, "root")
    reads = svc.relations.reads
    event(api, room, root)  # just persisted: known to have no children
    assert svc.relations.reads == reads
    reply(api, room, BOB, root, "r")
    assert event(api, room, root)["unsigned"]["m.relations"]["m.thread"]["count"] == 1
    reads = svc.relations.reads
    event(api, room, root)
    assert svc.relations.reads == reads
    reply(api, room, BOB, root, "r2")  # drops the cached answer
    assert event(api, room, root)["unsigned"]["m.relations"]["m.thread"]["count"] == 2


# --- /threads ------------------------------------------------------------------------------
def test_threads_list_by_latest_activity(env):
    _svc, api, room = env
    t1 = say(api, room, ALICE, "t1")
    t2 = say(api, room, BOB, "t2")
    t3 = say(api, room, CAROL, "t3")
    reply(api, room, BOB, t1, "a")
    reply(api, room, CAROL, t3, "b")
    reply(api, room, ALICE, t2, "c")
    reply(api, room, CAROL, t1, "d")
    out = get(api, f"{V1}/rooms/{room}/threads", ALICE)
    assert [e["event_id"] for e in out["chunk"]] == [t1, t2, t3]
    assert "next_batch" not in out
    assert out["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["count"] == 2
    # Alice started t1 and replied in t2; Bob replied in t1 and started t2.
    mine = get(api, f"{V1}/rooms/{room}/threads", ALICE, include="participated")
    assert [e["event_id"] for e in mine["chunk"]] == [t1, t2]
    carols = get(api, f"{V1}/rooms/{room}/threads", CAROL, include="participated")
    assert [e["event_id"] for e in carols["chunk"]] == [t1, t3]
    page1 = get(api, f"{V1}/rooms/{room}/threads", ALICE, limit="2")
    assert [e["event_id"] for e in page1["chunk"]] == [t1, t2]
    page2 = get(
        api, f"{V1}/rooms/{room}/threads", ALICE, limit="2", **{"from": page1["next_batch"]}
    )
    assert [e["event_id"] for e in page2["chunk"]] == [t3] and "next_batch" not in page2


def test_threads_bad_parameters(env):
    _svc, api, room = env
    path = f"{V1}/rooms/{room}/threads"
    assert api.status("GET", path, ALICE, query={"include": "some"}) == (400, "M_INVALID_PARAM")
    assert api.status("GET", path, ALICE, query={"limit": "0"}) == (400, "M_INVALID_PARAM")
    assert api.status("GET", path, ALICE, query={"from": "s12"}) == (400, "M_INVALID_PARAM")
    assert api.status("GET", path, ALICE, query={"from": "t1x"}) == (400, "M_INVALID_PARAM")
    assert get(api, path, ALICE, limit="1000")["chunk"] == []


def test_no_thread_off_an_event_with_a_relation(env):
    _svc, api, room = env
    root = say(api, room, ALICE, "root")
    in_thread = reply(api, room, BOB, root, "reply")
    path = f"{V3}/rooms/{room}/send/m.room.message/nested"
    body = {
        "msgtype": "m.text",
        "body": "nested",
        "m.relates_to": {"rel_type": "m.thread", "event_id": in_thread},
    }
    assert api.status("PUT", path, BOB, body) == (400, "M_UNKNOWN")
    # A rich reply (no rel_type) may start a thread.
    answer = say(api, room, BOB, "answer", **{"m.in_reply_to": {"event_id": root}})
    assert reply(api, room, ALICE, answer, "thread off a reply")
    # Who is not in the room gets the usual 403, not a hint about the event.
    assert api.status("PUT", path, uid("dave"), body) == (403, "M_FORBIDDEN")


def test_duplicate_annotations_are_refused(env):
    _svc, api, room = env
    target = say(api, room, ALICE, "vote")
    thumbs = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}}
    path = f"{V3}/rooms/{room}/send/m.reaction"
    first = api.call("PUT", f"{path}/react1", BOB, thumbs)[1]["event_id"]
    # The same request again (a retry) gets the first answer, not an error.
    assert api.call("PUT", f"{path}/react1", BOB, thumbs)[1] == {"event_id": first}
    assert api.status("PUT", f"{path}/react2", BOB, thumbs) == (400, "M_DUPLICATE_ANNOTATION")
    # Another key, another user, another event type: fine.
    other_key = {"m.relates_to": dict(thumbs["m.relates_to"], key="🎉")}
    assert api.call("PUT", f"{path}/react3", BOB, other_key)[0] == 200
    assert api.call("PUT", f"{path}/react4", CAROL, thumbs)[0] == 200
    sticker = f"{V3}/rooms/{room}/send/m.sticker/react5"
    assert api.call("PUT", sticker, BOB, dict(thumbs, body="s", url="mxc://x/y"))[0] == 200
    # Once the first is redacted, the user may react so again.
    redact(api, room, BOB, first)
    assert api.call("PUT", f"{path}/react6", BOB, thumbs)[0] == 200
    # Annotations are not aggregated by the server.
    assert "m.relations" not in event(api, room, target)["unsigned"]


def test_annotation_keys():
    rel_ = {"rel_type": "m.annotation", "event_id": "$p"}
    assert rel({"m.relates_to": dict(rel_, key="👍")}).key == "👍"
    assert rel({"m.relates_to": dict(rel_, key="x" * 256)}).key is None
    assert rel({"m.relates_to": dict(rel_, key=7)}).key is None
    assert rel({"m.relates_to": dict(rel_, key="a\x00")}).key is None
    assert rel({"m.relates_to": {"rel_type": "m.thread", "event_id": "$p", "key": "k"}}).key is None
