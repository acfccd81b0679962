"""E2E: what a client does across two schools (two Parta nodes on loopback, matrix-nio).

* A direct message started with ``createRoom {invite: [other school's user], is_direct:
  true}`` (client-server API "Creation", "Direct Messaging"): the invitee's ``/sync``
  shows the invite with ``is_direct`` and the inviter's member event (so the client names
  the DM after them); the invitee joins and both talk.
* ``GET /directory/room/{roomAlias}`` for the other school's alias (server-server API
  "Querying for information", ``query/directory``).
* ``/publicRooms?server=`` both ways (server-server API "Public Room Directory"), with
  ``limit``/``since`` paging and a ``filter``.

SQLite only: nothing here differs by database backend.
"""

from __future__ import annotations

import asyncio

import pytest
from nio import JoinResponse, RoomCreateResponse, RoomPreset, RoomVisibility

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import (
    client_api,
    close_all,
    members_are,
    new_watcher,
    q,
    send_text,
    wait_for,
    wait_for_bodies,
)


@pytest.fixture(scope="module")
def pair(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(2)


def test_direct_message_to_another_school_by_create_room(pair):
    a, b = pair

    async def scenario():
        anna = await new_watcher(a, "anna")
        ben = await new_watcher(b, "ben")
        try:
            await anna.client.set_displayname("Anna Lehrerin")
            created = await anna.client.room_create(
                invite=[ben.user_id], is_direct=True, preset=RoomPreset.trusted_private_chat
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            await ben.until(lambda w: room_id in w.invites, what="the DM invite on B")
            # what the client is sent (nio keeps the content apart from the event)
            status, sync = await asyncio.to_thread(
                client_api, ben.client, "GET", "/_matrix/client/v3/sync", None, {"timeout": "0"}
            )
            assert status == 200, sync
            state = sync["rooms"]["invite"][room_id]["invite_state"]["events"]
            own = next(
                e
                for e in state
                if e.get("type") == "m.room.member" and e.get("state_key") == ben.user_id
            )
            assert own["content"]["membership"] == "invite"
            assert own["content"].get("is_direct") is True
            assert own["sender"] == anna.user_id
            inviter = next(
                e
                for e in state
                if e.get("type") == "m.room.member" and e.get("state_key") == anna.user_id
            )
            assert inviter["content"]["displayname"] == "Anna Lehrerin"
            # the client names the DM after the inviter
            assert ben.client.invited_rooms[room_id].display_name == "Anna Lehrerin"

            joined = await ben.client.join(room_id)
            assert isinstance(joined, JoinResponse), joined
            both = {anna.user_id, ben.user_id}
            await wait_for(lambda: members_are(anna, room_id, both), what="both joined on A")
            await send_text(anna, room_id, "Hallo Ben")
            await wait_for_bodies(ben, room_id, ["Hallo Ben"])
            await send_text(ben, room_id, "Hallo Anna")
            await wait_for_bodies(anna, room_id, ["Hallo Anna"])
        finally:
            await close_all(anna, ben)

    run(scenario())


def test_alias_of_another_school(pair):
    a, b = pair

    async def scenario():
        anna = await new_watcher(a, "anna")
        ben = await new_watcher(b, "ben")
        try:
            created = await anna.client.room_create(
                alias="schach", visibility=RoomVisibility.public, name="Schach"
            )
            assert isinstance(created, RoomCreateResponse), created
            alias = f"#schach:{a.server_name}"
            status, body = await asyncio.to_thread(
                client_api, ben.client, "GET", f"/_matrix/client/v3/directory/room/{q(alias)}"
            )
            assert status == 200, body
            assert body["room_id"] == created.room_id
            assert a.server_name in body["servers"]
            status, body = await asyncio.to_thread(
                client_api,
                ben.client,
                "GET",
                f"/_matrix/client/v3/directory/room/{q('#nichts:' + a.server_name)}",
            )
            assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
            # and the alias takes the client into the room
            joined = await ben.client.join(alias)
            assert isinstance(joined, JoinResponse), joined
            assert joined.room_id == created.room_id
        finally:
            await close_all(anna, ben)

    run(scenario())


async def _public_rooms(w, server, **query):
    status, body = await asyncio.to_thread(
        client_api,
        w.client,
        "GET",
        "/_matrix/client/v3/publicRooms",
        None,
        {"server": server, **query},
    )
    assert status == 200, body
    return body


def test_public_rooms_of_another_school_both_ways(pair):
    a, b = pair

    async def scenario():
        anna = await new_watcher(a, "anna")
        ben = await new_watcher(b, "ben")
        try:
            for owner, name in ((anna, "Robotik"), (anna, "Theater"), (ben, "Chor")):
                created = await owner.client.room_create(
                    name=name, topic=f"AG {name}", visibility=RoomVisibility.public
                )
                assert isinstance(created, RoomCreateResponse), created

            # B's client reads A's directory, page by page (limit and since passed on)
            paged: list[dict] = []
            token = None
            for _ in range(10):
                page = await _public_rooms(
                    ben, a.server_name, limit=1, **({"since": token} if token else {})
                )
                assert len(page["chunk"]) == 1, page
                paged += page["chunk"]
                token = page.get("next_batch")
                if not token:
                    break
            paged_names = [r.get("name") for r in paged]
            assert len(paged_names) == len(set(paged_names))
            assert {"Robotik", "Theater"} <= set(paged_names)
            assert "Chor" not in paged_names  # B's own room is not in A's directory
            whole = await _public_rooms(ben, a.server_name)
            by_name = {r.get("name"): r for r in whole["chunk"]}
            assert set(by_name) == set(paged_names)
            assert by_name["Robotik"]["topic"] == "AG Robotik"
            assert by_name["Robotik"]["num_joined_members"] == 1

            # a filter goes by POST to the other school
            status, body = await asyncio.to_thread(
                client_api,
                ben.client,
                "POST",
                "/_matrix/client/v3/publicRooms",
                {"filter": {"generic_search_term": "theater"}},
                {"server": a.server_name},
            )
            assert status == 200, body
            assert [r["name"] for r in body["chunk"]] == ["Theater"]

            # and the other way round
            other = await _public_rooms(anna, b.server_name)
            assert [r.get("name") for r in other["chunk"]] == ["Chor"]

            # a server that is not there: a clear error, not a 500
            status, body = await asyncio.to_thread(
                client_api,
                ben.client,
                "GET",
                "/_matrix/client/v3/publicRooms",
                None,
                {"server": "nowhere.invalid:1"},
            )
            assert status == 502 and body["errcode"] == "M_UNKNOWN", body
        finally:
            await close_all(anna, ben)

    run(scenario())
