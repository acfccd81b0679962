"""E2E across two Parta nodes: presence travels as ``m.presence`` EDUs to the servers that
share a room (server-server API "Presence"), and a user of one school previews a room of
the other with ``GET /room_summary`` and ``via`` (client-server API "Room Summaries"),
while an invite-only room stays hidden."""

from __future__ import annotations

import asyncio

import pytest
from nio import PresenceEvent, RoomCreateResponse, RoomPreset, RoomVisibility

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import client_api, close_all, join_via, new_watcher, q, wait_for

PRESENCE = {"enabled": True, "roles": ["pupil", "teacher", "director"]}


@pytest.fixture(scope="module")
def pair(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(2, presence=PRESENCE)


def test_presence_reaches_the_other_school(pair):
    a, b = pair

    async def scenario():
        anna = await new_watcher(a, "anna")
        ben = await new_watcher(b, "ben")
        try:
            room = await anna.client.room_create(
                visibility=RoomVisibility.public, preset=RoomPreset.public_chat
            )
            assert isinstance(room, RoomCreateResponse), room
            await join_via(ben.client, room.room_id, [a.server_name])
            await anna.client.set_presence("online", "on a school trip")

            async def ben_sees_it():
                resp = await ben.sync_once(timeout_ms=1000)
                return any(
                    isinstance(e, PresenceEvent)
                    and e.user_id == anna.user_id
                    and e.status_msg == "on a school trip"
                    for e in resp.presence_events
                )

            await wait_for(ben_sees_it, what="anna's presence on school B")
            status, body = await asyncio.to_thread(
                client_api, ben.client, "GET", f"/_matrix/client/v3/presence/{anna.user_id}/status"
            )
            assert status == 200 and body["presence"] == "online", body
        finally:
            await close_all(anna, ben)

    run(scenario())


def test_room_summary_of_a_room_on_the_other_school(pair):
    a, b = pair

    async def scenario():
        anna = await new_watcher(a, "anna")
        ben = await new_watcher(b, "ben")
        try:
            choir = await anna.client.room_create(
                name="Choir", visibility=RoomVisibility.public, preset=RoomPreset.public_chat
            )
            assert isinstance(choir, RoomCreateResponse), choir
            staff = await anna.client.room_create(name="Staff room")  # invite only
            assert isinstance(staff, RoomCreateResponse), staff
            path = "/_matrix/client/v1/room_summary/"
            status, body = await asyncio.to_thread(
                client_api, ben.client, "GET", path + q(choir.room_id), None, {"via": a.server_name}
            )
            assert status == 200, body
            assert body["name"] == "Choir" and body["join_rule"] == "public"
            assert body["membership"] == "leave"
            status, body = await asyncio.to_thread(
                client_api, ben.client, "GET", path + q(staff.room_id), None, {"via": a.server_name}
            )
            assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        finally:
            await close_all(anna, ben)

    run(scenario())
