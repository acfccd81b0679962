"""E2E: rooms and spaces with matrix-nio — create, invite/join, send, state, redaction,
leave/kick/ban, and the forbidden / unknown-room error paths.  SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

from nio import (
    JoinResponse,
    RedactedEvent,
    RoomBanResponse,
    RoomCreateResponse,
    RoomGetEventResponse,
    RoomInviteResponse,
    RoomKickResponse,
    RoomLeaveResponse,
    RoomMemberEvent,
    RoomMessageText,
    RoomPutStateError,
    RoomPutStateResponse,
    RoomRedactResponse,
    RoomSendResponse,
    RoomUnbanResponse,
    SpaceGetHierarchyResponse,
)

from e2e_helpers import api, create_room_with, joined_ids, run, sync_until, text, timeline_events


def test_create_invite_join_send(node):
    async def scenario():
        teacher = await node.new_client("teacher")
        pupil = await node.new_client("pupil")
        try:
            resp = await teacher.room_create(name="Mathe 7a", topic="Bruchrechnung")
            assert isinstance(resp, RoomCreateResponse), resp
            room_id = resp.room_id
            assert room_id.startswith("!")

            # The invitee sees the invite in sync (stripped state carries the name).
            assert isinstance(await teacher.room_invite(room_id, pupil.user_id), RoomInviteResponse)
            resp = await sync_until(pupil, lambda r: room_id in r.rooms.invite)
            names = [
                e
                for e in resp.rooms.invite[room_id].invite_state
                if getattr(e, "name", None) == "Mathe 7a"
            ]
            assert names, resp.rooms.invite[room_id].invite_state

            assert isinstance(await pupil.join(room_id), JoinResponse)
            assert await joined_ids(teacher, room_id) == {teacher.user_id, pupil.user_id}
            assert room_id in (await pupil.joined_rooms()).rooms

            sent = await teacher.room_send(room_id, "m.room.message", text("Hausaufgabe: S. 42"))
            assert isinstance(sent, RoomSendResponse), sent

            resp = await sync_until(
                pupil,
                lambda r: any(
                    isinstance(e, RoomMessageText) and e.event_id == sent.event_id
                    for e in timeline_events(r, room_id)
                ),
            )
            msg = next(
                e
                for e in timeline_events(resp, room_id)
                if getattr(e, "event_id", None) == sent.event_id
            )
            assert msg.body == "Hausaufgabe: S. 42" and msg.sender == teacher.user_id

            got = await pupil.room_get_event(room_id, sent.event_id)
            assert isinstance(got, RoomGetEventResponse), got
            assert got.event.body == "Hausaufgabe: S. 42"
        finally:
            await teacher.close()
            await pupil.close()

    run(scenario())


def test_send_is_idempotent_per_txn_id(node):
    async def scenario():
        anna = await node.new_client("anna")
        try:
            room_id = await create_room_with(anna)
            first = await anna.room_send(room_id, "m.room.message", text("once"), tx_id="t1")
            again = await anna.room_send(room_id, "m.room.message", text("once"), tx_id="t1")
            assert isinstance(first, RoomSendResponse) and isinstance(again, RoomSendResponse)
            assert first.event_id == again.event_id
        finally:
            await anna.close()

    run(scenario())


def test_space_with_child_room(node):
    async def scenario():
        director = await node.new_client("director")
        try:
            space = await director.room_create(name="Schule 42", space=True)
            assert isinstance(space, RoomCreateResponse), space
            child = await director.room_create(name="Elternrat")
            assert isinstance(child, RoomCreateResponse), child
            put = await director.room_put_state(
                space.room_id, "m.space.child", {"via": [node.server_name]}, state_key=child.room_id
            )
            assert isinstance(put, RoomPutStateResponse), put

            tree = await director.space_get_hierarchy(space.room_id)
            assert isinstance(tree, SpaceGetHierarchyResponse), tree
            by_id = {r["room_id"]: r for r in tree.rooms}
            assert set(by_id) == {space.room_id, child.room_id}
            assert by_id[space.room_id].get("room_type") == "m.space"
            assert by_id[child.room_id].get("name") == "Elternrat"
            children = by_id[space.room_id]["children_state"]
            assert [c["state_key"] for c in children] == [child.room_id]
        finally:
            await director.close()

    run(scenario())


def test_forbidden_state_change_is_403(node):
    async def scenario():
        teacher = await node.new_client("teacher")
        pupil = await node.new_client("pupil")
        try:
            room_id = await create_room_with(teacher, pupil)
            resp = await pupil.room_put_state(room_id, "m.room.name", {"name": "hacked"})
            assert isinstance(resp, RoomPutStateError), resp
            assert resp.status_code == "M_FORBIDDEN"
            status, body = api(
                node,
                "PUT",
                f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.name/",
                token=pupil.access_token,
                json_body={"name": "hacked"},
            )
            assert status == 403 and body["errcode"] == "M_FORBIDDEN"
            # The owner may.
            ok = await teacher.room_put_state(room_id, "m.room.name", {"name": "7a"})
            assert isinstance(ok, RoomPutStateResponse), ok
        finally:
            await teacher.close()
            await pupil.close()

    run(scenario())


def test_unknown_room(node):
    """Unknown rooms answer like rooms the user is not in (403), so existence does not leak."""
    token = node.register("lost")["access_token"]
    owner = node.register("roomowner")["access_token"]
    status, body = api(
        node,
        "POST",
        "/_matrix/client/v3/createRoom",
        token=owner,
        json_body={"preset": "private_chat"},
    )
    assert status == 200, body
    existing = quote(body["room_id"])
    unknown = quote(f"!doesnotexist:{node.server_name}")
    problems = []
    for room in (existing, unknown):
        for method, path, payload in (
            ("PUT", f"/rooms/{room}/send/m.room.message/t1", text("hello?")),
            ("GET", f"/rooms/{room}/state", None),
            ("GET", f"/rooms/{room}/state/m.room.create/", None),
            ("GET", f"/rooms/{room}/messages?dir=b", None),
        ):
            status, body = api(
                node, method, "/_matrix/client/v3" + path, token=token, json_body=payload
            )
            if (status, body.get("errcode")) != (403, "M_FORBIDDEN"):
                problems.append(f"{method} {path}: {status} {body}")
    assert not problems, "expected 403 M_FORBIDDEN:\n" + "\n".join(problems)
    status, body = api(
        node, "POST", f"/_matrix/client/v3/join/{unknown}", token=token, json_body={}
    )
    assert (status, body["errcode"]) in ((404, "M_NOT_FOUND"), (403, "M_FORBIDDEN"))
    alias = quote(f"#nope:{node.server_name}")
    status, body = api(node, "GET", f"/_matrix/client/v3/directory/room/{alias}", token=token)
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_redaction(node):
    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = await create_room_with(anna, ben)
            sent = await anna.room_send(room_id, "m.room.message", text("Tippfehler"))
            assert isinstance(sent, RoomSendResponse), sent
            red = await anna.room_redact(room_id, sent.event_id, reason="typo")
            assert isinstance(red, RoomRedactResponse), red

            got = await ben.room_get_event(room_id, sent.event_id)
            assert isinstance(got, RoomGetEventResponse), got
            assert isinstance(got.event, RedactedEvent), got.event
            assert got.event.source["content"] == {}
            assert got.event.source["unsigned"]["redacted_because"]["event_id"] == red.event_id

            # Ben (power 0) cannot redact Anna's messages.
            other = await anna.room_send(room_id, "m.room.message", text("bleibt"))
            denied = await ben.room_redact(room_id, other.event_id)
            assert not isinstance(denied, RoomRedactResponse)
            assert denied.status_code == "M_FORBIDDEN"
        finally:
            await anna.close()
            await ben.close()

    run(scenario())


def test_leave_kick_ban(node):
    async def scenario():
        owner = await node.new_client("owner")
        leaver = await node.new_client("leaver")
        kicked = await node.new_client("kicked")
        banned = await node.new_client("banned")
        clients = [owner, leaver, kicked, banned]
        try:
            room_id = await create_room_with(owner, leaver, kicked, banned)
            assert len(await joined_ids(owner, room_id)) == 4
            await kicked.sync(timeout=0)  # a later incremental sync reports the kick

            assert isinstance(await leaver.room_leave(room_id), RoomLeaveResponse)
            assert isinstance(
                await owner.room_kick(room_id, kicked.user_id, "stört"), RoomKickResponse
            )
            assert isinstance(
                await owner.room_ban(room_id, banned.user_id, "Spam"), RoomBanResponse
            )
            assert await joined_ids(owner, room_id) == {owner.user_id}

            # The kicked user learns it from sync (the room moves to "leave").
            resp = await sync_until(kicked, lambda r: room_id in r.rooms.leave)
            leave_events = [
                e
                for e in resp.rooms.leave[room_id].timeline.events
                if isinstance(e, RoomMemberEvent)
            ]
            assert leave_events and leave_events[-1].membership == "leave"
            assert leave_events[-1].sender == owner.user_id

            # Nobody outside can send; the banned user cannot rejoin; invite-only room.
            for outsider in (leaver, kicked, banned):
                r = await outsider.room_send(room_id, "m.room.message", text("hi"))
                assert not isinstance(r, RoomSendResponse)
                assert r.status_code == "M_FORBIDDEN"
            again = await banned.join(room_id)
            assert not isinstance(again, JoinResponse) and again.status_code == "M_FORBIDDEN"
            assert not isinstance(
                await owner.room_invite(room_id, banned.user_id), RoomInviteResponse
            )

            # Unban, invite, join works again.
            assert isinstance(await owner.room_unban(room_id, banned.user_id), RoomUnbanResponse)
            assert isinstance(await owner.room_invite(room_id, banned.user_id), RoomInviteResponse)
            assert isinstance(await banned.join(room_id), JoinResponse)
            assert await joined_ids(owner, room_id) == {owner.user_id, banned.user_id}
        finally:
            for c in clients:
                await c.close()

    run(scenario())
