"""E2E: the first ``/sync`` after joining a room that lives on another server carries the
room's full state (client-server API "Syncing": a room newly joined in the sync range gets
the state at the start of its timeline), both for a join by room ID through a server name
(make_join/send_join) and for accepting an invite from another server.

The state before the join arrives in the ``send_join`` answer and is stored as outliers;
the client must still see the room's name, creation event and every member.
"""

from __future__ import annotations

import asyncio

import pytest
from nio import RoomCreateResponse, RoomInviteResponse, RoomVisibility

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import accept_invite, client_api, close_all, join_via, new_watcher


@pytest.fixture(scope="module")
def pair(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    a, b = fed_cluster.create(2, backends=["sqlite", "sqlite"])
    return a, b


def _room_view(resp, room_id: str) -> dict[tuple[str, str], dict]:
    """(type, state_key) -> event of the state and state-like timeline events the sync
    answer gave for ``room_id`` (timeline after state, as a client applies them)."""
    info = resp.rooms.join[room_id]
    out: dict[tuple[str, str], dict] = {}
    for ev in list(info.state) + list(info.timeline.events):
        src = ev.source
        if "state_key" in src:
            out[(src["type"], src["state_key"])] = src
    return out


def _check_first_sync(watcher, resp, room_id: str, owner_id: str, name: str, topic: str) -> None:
    assert room_id in resp.rooms.join, f"first sync after the join lacks the room: {resp}"
    view = _room_view(resp, room_id)
    assert ("m.room.create", "") in view, sorted(view)
    assert view[("m.room.name", "")]["content"]["name"] == name
    assert view[("m.room.topic", "")]["content"]["topic"] == topic
    assert ("m.room.power_levels", "") in view, sorted(view)
    for uid in (owner_id, watcher.user_id):
        assert (
            view.get(("m.room.member", uid), {}).get("content", {}).get("membership") == "join"
        ), f"{uid} not joined in {sorted(view)}"
    # What the client library makes of it.
    room = watcher.client.rooms[room_id]
    assert room.name == name
    assert {owner_id, watcher.user_id} <= set(room.users)


def test_first_sync_after_remote_join_has_full_state(pair):
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            created = await alice.client.room_create(
                visibility=RoomVisibility.public, name="Schulgarten", topic="Beete und Giesplan"
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            assert await join_via(bob.client, room_id, [a.server_name]) == room_id
            resp = await bob.sync_once(timeout_ms=0)
            _check_first_sync(
                bob, resp, room_id, alice.user_id, "Schulgarten", "Beete und Giesplan"
            )
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=180)


def test_first_sync_after_accepting_remote_invite_has_full_state(pair):
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            created = await alice.client.room_create(name="Elternrat", topic="Sitzungen")
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            inv = await alice.client.room_invite(room_id, bob.user_id)
            assert isinstance(inv, RoomInviteResponse), inv
            await accept_invite(bob, room_id)  # syncs until the invite shows, joins
            resp = await bob.sync_once(timeout_ms=0)
            _check_first_sync(bob, resp, room_id, alice.user_id, "Elternrat", "Sitzungen")
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=180)


def test_initial_sync_of_a_user_kicked_from_a_remote_room_has_its_state(pair):
    """A room the user was kicked from (reported under ``rooms.leave`` by a full sync) comes
    with the state at the start of its timeline.  The timeline starts with the invite, and
    the state before the join (from send_join, stored when the invite was accepted, after
    the invite) must still be there."""
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            created = await alice.client.room_create(name="Werkraum", topic="Holz und Metall")
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            inv = await alice.client.room_invite(room_id, bob.user_id)
            assert isinstance(inv, RoomInviteResponse), inv
            await accept_invite(bob, room_id)
            await bob.sync_once(timeout_ms=0)
            await alice.client.room_kick(room_id, bob.user_id, reason="Stunde vorbei")
            await bob.until(lambda w: w.membership_of(room_id, bob.user_id) == "leave")

            status, body = await asyncio.to_thread(
                client_api, bob.client, "GET", "/_matrix/client/v3/sync", None, {"timeout": "0"}
            )
            assert status == 200, body
            left = body["rooms"]["leave"].get(room_id)
            assert left is not None, f"kicked room not under rooms.leave: {body['rooms']}"
            members = [
                ev["content"]["membership"]
                for ev in left["timeline"]["events"]
                if ev["type"] == "m.room.member" and ev["state_key"] == bob.user_id
            ]
            assert members == ["invite", "join", "leave"], left["timeline"]
            view = {}
            for ev in left["state"]["events"] + left["timeline"]["events"]:
                if "state_key" in ev:
                    view[(ev["type"], ev["state_key"])] = ev
            assert ("m.room.create", "") in view, sorted(view)
            assert view[("m.room.name", "")]["content"]["name"] == "Werkraum"
            assert view[("m.room.topic", "")]["content"]["topic"] == "Holz und Metall"
            assert view[("m.room.member", alice.user_id)]["content"]["membership"] == "join"
            assert view[("m.room.member", bob.user_id)]["content"]["membership"] == "leave"
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=180)
