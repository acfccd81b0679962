"""E2E: /sync long-polling, /messages pagination, typing and receipts between two matrix-nio
clients on a real node (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from nio import (
    MessageDirection,
    ReceiptEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendResponse,
    RoomTypingResponse,
    SyncResponse,
    TypingNoticeEvent,
    UpdateReceiptMarkerResponse,
)

from e2e_helpers import create_room_with, run, sync_until, text, timeline_events

# A waiting sync that is never woken returns only after LONG_POLL_MS; the scenario gives up
# well before that, so a failure to wake cannot pass as success.
LONG_POLL_MS = 90_000
GIVE_UP_S = 45


def test_long_poll_sync_wakes_on_new_message(node):
    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = await create_room_with(anna, ben)
            await ben.sync(timeout=0)  # catch up: the next sync must wait

            waiting = asyncio.create_task(ben.sync(timeout=LONG_POLL_MS))
            await asyncio.sleep(0.5)  # let the request reach the server and park
            assert not waiting.done(), "sync returned without anything new"
            sent = await anna.room_send(room_id, "m.room.message", text("aufwachen!"))
            assert isinstance(sent, RoomSendResponse), sent

            resp = await asyncio.wait_for(waiting, GIVE_UP_S)
            assert isinstance(resp, SyncResponse), resp
            ids = [e.event_id for e in timeline_events(resp, room_id)]
            assert sent.event_id in ids
        finally:
            await anna.close()
            await ben.close()

    run(scenario())


def test_paginate_messages_backwards_through_120(node):
    async def scenario():
        anna = await node.new_client("anna")
        try:
            room_id = await create_room_with(anna, name="Archiv")
            bodies = [f"Nachricht {i:03d}" for i in range(120)]
            for i, body in enumerate(bodies):
                r = await anna.room_send(room_id, "m.room.message", text(body), tx_id=f"p{i}")
                assert isinstance(r, RoomSendResponse), r
            sync = await anna.sync(timeout=0)
            assert isinstance(sync, SyncResponse), sync

            seen: list[str] = []
            token = sync.next_batch
            for _ in range(40):  # 120 messages at 25 a page, plus state
                page = await anna.room_messages(
                    room_id, start=token, limit=25, direction=MessageDirection.back
                )
                assert isinstance(page, RoomMessagesResponse), page
                assert len(page.chunk) <= 25
                seen += [e.body for e in page.chunk if isinstance(e, RoomMessageText)]
                if not page.chunk or page.end is None:
                    break
                token = page.end
            assert seen == list(reversed(bodies))
        finally:
            await anna.close()

    run(scenario())


def test_paginate_forwards_from_backwards_token(node):
    async def scenario():
        anna = await node.new_client("anna")
        try:
            room_id = await create_room_with(anna)
            for i in range(30):
                await anna.room_send(room_id, "m.room.message", text(f"m{i}"), tx_id=f"f{i}")
            sync = await anna.sync(timeout=0)
            back = await anna.room_messages(room_id, start=sync.next_batch, limit=10)
            assert [e.body for e in back.chunk] == [f"m{i}" for i in range(29, 19, -1)]
            fwd = await anna.room_messages(
                room_id, start=back.end, limit=5, direction=MessageDirection.front
            )
            assert isinstance(fwd, RoomMessagesResponse), fwd
            assert [e.body for e in fwd.chunk] == [f"m{i}" for i in range(20, 25)]
        finally:
            await anna.close()

    run(scenario())


def test_typing_seen_by_other_client(node):
    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = await create_room_with(anna, ben)
            await ben.sync(timeout=0)
            resp = await anna.room_typing(room_id, typing_state=True, timeout=30_000)
            assert isinstance(resp, RoomTypingResponse), resp

            def anna_typing(r):
                room = r.rooms.join.get(room_id)
                return room is not None and any(
                    isinstance(e, TypingNoticeEvent) and anna.user_id in e.users
                    for e in room.ephemeral
                )

            await sync_until(ben, anna_typing)

            await anna.room_typing(room_id, typing_state=False)

            def nobody_typing(r):
                room = r.rooms.join.get(room_id)
                return room is not None and any(
                    isinstance(e, TypingNoticeEvent) and e.users == [] for e in room.ephemeral
                )

            await sync_until(ben, nobody_typing)
        finally:
            await anna.close()
            await ben.close()

    run(scenario())


def test_read_receipt_seen_by_sender(node):
    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = await create_room_with(anna, ben)
            sent = await anna.room_send(room_id, "m.room.message", text("Gelesen?"))
            await anna.sync(timeout=0)
            resp = await ben.update_receipt_marker(room_id, sent.event_id)
            assert isinstance(resp, UpdateReceiptMarkerResponse), resp

            def ben_read(r):
                room = r.rooms.join.get(room_id)
                return room is not None and any(
                    isinstance(e, ReceiptEvent)
                    and any(
                        rc.user_id == ben.user_id
                        and rc.event_id == sent.event_id
                        and rc.receipt_type == "m.read"
                        for rc in e.receipts
                    )
                    for e in room.ephemeral
                )

            await sync_until(anna, ben_read)
        finally:
            await anna.close()
            await ben.close()

    run(scenario())
