"""E2E: threads, edits, reactions and references between matrix-nio clients on a real node:
``/relations`` (nio pages through it), ``/threads``, the bundled aggregations in ``/sync``,
``/messages`` and ``/event``, threaded receipts, and what a non-member gets.  SQLite and
PostgreSQL: the relation queries use upserts, window functions and a recursive query."""

from __future__ import annotations

from urllib.parse import quote

from nio import (
    RoomGetEventResponse,
    RoomMessagesResponse,
    RoomRedactResponse,
    RoomSendError,
    RoomSendResponse,
    SyncResponse,
)
from nio.api import MessageDirection, RelationshipType, ThreadInclusion

from e2e_helpers import api, create_room_with, run, text

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


async def _send(client, room_id, content, etype="m.room.message"):
    resp = await client.room_send(room_id, etype, content)
    assert isinstance(resp, RoomSendResponse), resp
    return resp.event_id


def _thread(root, body):
    return dict(text(body), **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})


def _edit(target, body):
    return {
        "msgtype": "m.text",
        "body": "* " + body,
        "m.new_content": text(body),
        "m.relates_to": {"rel_type": "m.replace", "event_id": target},
    }


def _relations(event):
    return event["unsigned"].get("m.relations", {})


def test_threads_edits_reactions_references(node):
    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = await create_room_with(anna, ben, name="Projekt")
            root = await _send(anna, room_id, text("Wer bringt was mit?"))
            replies = [await _send(ben, room_id, _thread(root, f"Ich: {i}")) for i in range(3)]
            edit1 = await _send(anna, room_id, _edit(root, "Wer bringt was zum Fest mit?"))
            edit2 = await _send(anna, room_id, _edit(root, "Wer bringt was zum Sommerfest?"))
            reaction = await _send(
                ben,
                room_id,
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}},
                "m.reaction",
            )
            ref = await _send(
                ben,
                room_id,
                dict(
                    text("siehe oben"),
                    **{"m.relates_to": {"rel_type": "m.reference", "event_id": root}},
                ),
            )

            # /relations, two at a time: every child, newest first.
            children = [
                e.event_id async for e in anna.room_get_event_relations(room_id, root, limit=2)
            ]
            assert children == [ref, reaction, edit2, edit1, *reversed(replies)]
            in_thread = [
                e.event_id
                async for e in anna.room_get_event_relations(
                    room_id, root, RelationshipType.thread, direction=MessageDirection.front
                )
            ]
            assert in_thread == replies
            reactions = [
                e.event_id
                async for e in ben.room_get_event_relations(
                    room_id, root, RelationshipType.annotation, "m.reaction"
                )
            ]
            assert reactions == [reaction]

            # /threads: the root; Anna took part (she sent it).
            roots = [e.event_id async for e in anna.room_get_threads(room_id)]
            assert roots == [root]
            mine = [
                e.event_id
                async for e in anna.room_get_threads(room_id, ThreadInclusion.participated)
            ]
            assert mine == [root]

            # The aggregations a fresh /sync of Ben's shows on the root.
            sync = await ben.sync(timeout=0, full_state=True)
            assert isinstance(sync, SyncResponse), sync
            served = {e.event_id: e.source for e in sync.rooms.join[room_id].timeline.events}
            bundle = _relations(served[root])
            assert bundle["m.thread"]["count"] == 3
            assert bundle["m.thread"]["current_user_participated"] is True
            assert bundle["m.thread"]["latest_event"]["event_id"] == replies[-1]
            assert bundle["m.replace"]["event_id"] == edit2
            assert bundle["m.reference"] == {"chunk": [{"event_id": ref}]}

            # The same in /messages.
            page = await anna.room_messages(room_id, start=sync.next_batch, limit=20)
            assert isinstance(page, RoomMessagesResponse), page
            by_id = {e.event_id: e.source for e in page.chunk}
            assert _relations(by_id[root])["m.replace"]["event_id"] == edit2
            assert not _relations(by_id[replies[0]])

            # Redacting the latest edit: /event shows the edit before it.
            redacted = await anna.room_redact(room_id, edit2)
            assert isinstance(redacted, RoomRedactResponse), redacted
            got = await ben.room_get_event(room_id, root)
            assert isinstance(got, RoomGetEventResponse), got
            assert _relations(got.event.source)["m.replace"]["event_id"] == edit1

            # Threaded receipts: the thread a reply is in, not "main".
            path = f"{V3}/rooms/{quote(room_id)}/receipt/m.read/{quote(replies[-1])}"
            status, _ = api(
                node, "POST", path, token=ben.access_token, json_body={"thread_id": root}
            )
            assert status == 200
            status, err = api(
                node, "POST", path, token=ben.access_token, json_body={"thread_id": "main"}
            )
            assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
            # Threads do not nest.
            status, err = api(
                node,
                "PUT",
                f"{V3}/rooms/{quote(room_id)}/send/m.room.message/nested",
                token=anna.access_token,
                json_body=_thread(replies[0], "verschachtelt"),
            )
            assert (status, err["errcode"]) == (400, "M_UNKNOWN")
            # The same reaction twice is refused.
            again = await ben.room_send(
                room_id,
                "m.reaction",
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}},
            )
            assert isinstance(again, RoomSendError) and again.status_code == (
                "M_DUPLICATE_ANNOTATION"
            ), again
            # Redacting the latest thread reply: the one before is the latest.
            redacted = await ben.room_redact(room_id, replies[-1])
            assert isinstance(redacted, RoomRedactResponse), redacted
            got = await anna.room_get_event(room_id, root)
            assert isinstance(got, RoomGetEventResponse), got
            thread = _relations(got.event.source)["m.thread"]
            assert (thread["count"], thread["latest_event"]["event_id"]) == (2, replies[1])
            assert [e.event_id async for e in anna.room_get_threads(room_id)] == [root]
        finally:
            await anna.close()
            await ben.close()

    run(scenario())


def test_outsiders_see_no_relations(node):
    async def scenario():
        anna = await node.new_client("anna")
        eve = await node.new_client("eve")
        try:
            room_id = await create_room_with(anna, name="Privat")
            root = await _send(anna, room_id, text("geheim"))
            await _send(anna, room_id, _thread(root, "auch geheim"))
            rel_path = f"{V1}/rooms/{quote(room_id)}/relations/{quote(root)}"
            status, err = api(node, "GET", rel_path, token=eve.access_token)
            assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
            status, err = api(
                node, "GET", f"{V1}/rooms/{quote(room_id)}/threads", token=eve.access_token
            )
            assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
            status, body = api(node, "GET", rel_path + "?recurse=true", token=anna.access_token)
            assert status == 200 and len(body["chunk"]) == 1 and body["recursion_depth"] == 3
        finally:
            await anna.close()
            await eve.close()

    run(scenario())
