"""E2E spaces across two Parta nodes on loopback (spec: client-server API "Spaces" >
"Server behaviour", server-server API "Spaces"): the city office's space on A lists a public
room and an invite-only room of school B; A's client ``/hierarchy`` fills the public room in
over signed ``GET /_matrix/federation/v1/hierarchy/{roomId}`` and never shows the private
one."""

from __future__ import annotations

import asyncio

import pytest
from nio import RoomCreateResponse, RoomPreset, RoomPutStateResponse, RoomVisibility

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import client_api, close_all, new_watcher, q


@pytest.fixture(scope="module")
def pair(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(2)


def test_space_on_one_node_shows_a_room_of_another(pair):
    a, b = pair

    async def scenario():
        office = await new_watcher(a, "office")
        teacher = await new_watcher(b, "teacher")
        try:
            space = await office.client.room_create(
                name="City schools",
                space=True,
                visibility=RoomVisibility.public,
                preset=RoomPreset.public_chat,
            )
            assert isinstance(space, RoomCreateResponse), space
            maths = await teacher.client.room_create(
                name="Maths",
                topic="Fractions",
                visibility=RoomVisibility.public,
                preset=RoomPreset.public_chat,
            )
            assert isinstance(maths, RoomCreateResponse), maths
            staff = await teacher.client.room_create(name="Staff room")  # private
            assert isinstance(staff, RoomCreateResponse), staff
            for child in (maths.room_id, staff.room_id):
                put = await office.client.room_put_state(
                    space.room_id, "m.space.child", {"via": [b.server_name]}, state_key=child
                )
                assert isinstance(put, RoomPutStateResponse), put

            status, tree = await asyncio.to_thread(
                client_api,
                office.client,
                "GET",
                f"/_matrix/client/v1/rooms/{q(space.room_id)}/hierarchy",
            )
            assert status == 200, tree
            by_id = {r["room_id"]: r for r in tree["rooms"]}
            assert set(by_id) == {space.room_id, maths.room_id}
            assert by_id[maths.room_id]["name"] == "Maths"
            assert by_id[maths.room_id]["topic"] == "Fractions"
            assert by_id[maths.room_id]["num_joined_members"] == 1
            assert sorted(c["state_key"] for c in by_id[space.room_id]["children_state"]) == sorted(
                [maths.room_id, staff.room_id]
            )
        finally:
            await close_all(office, teacher)

    run(scenario())
