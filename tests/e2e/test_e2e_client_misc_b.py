"""E2E: presence, refresh tokens, the deprecated sync API, room summaries, mutual rooms,
timestamp-to-event and room upgrades on one real node (SQLite), driven by matrix-nio and
plain HTTP as clients call them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from nio import (
    JoinResponse,
    PresenceEvent,
    PresenceGetResponse,
    PresenceSetResponse,
    RoomPreset,
    RoomSendResponse,
    RoomUpgradeEvent,
    SyncResponse,
)

from e2e_helpers import api, create_room_with, run, sync_until, text

pytestmark = pytest.mark.e2e

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"
LIFETIME_MS = 3000


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"  # the SQL here is plain Core; the unit tests run it in-process


@pytest.fixture(scope="module")
def misc_node(node_factory: Any) -> Any:
    # Registered users are pupils: share every role's presence on this node.
    return node_factory(
        presence={"enabled": True, "roles": ["pupil", "teacher", "director"]},
        auth={"access_token_lifetime_ms": LIFETIME_MS},
    )


def test_presence_between_room_members(misc_node: Any) -> None:
    async def scenario() -> None:
        alice = await misc_node.new_client("pres")
        bob = await misc_node.new_client("pres")
        carol = await misc_node.new_client("pres")
        try:
            await create_room_with(alice, bob)
            await bob.sync(timeout=0)
            resp = await alice.set_presence("online", "marking essays")
            assert isinstance(resp, PresenceSetResponse), resp
            got = await bob.get_presence(alice.user_id)
            assert isinstance(got, PresenceGetResponse), got
            assert got.presence == "online" and got.status_msg == "marking essays"
            # bob's incremental sync carries alice's presence
            seen = await sync_until(
                bob,
                lambda r: any(
                    isinstance(e, PresenceEvent)
                    and e.user_id == alice.user_id
                    and e.status_msg == "marking essays"
                    for e in r.presence_events
                ),
            )
            assert isinstance(seen, SyncResponse)
            # carol shares no room with alice
            status, err = api(
                misc_node, "GET", f"{V3}/presence/{alice.user_id}/status", token=carol.access_token
            )
            assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        finally:
            for c in (alice, bob, carol):
                await c.close()

    run(scenario())


def _login(node: Any, user_id: str, password: str) -> dict:
    status, body = api(
        node,
        "POST",
        V3 + "/login",
        json_body={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "refresh_token": True,
        },
    )
    assert status == 200, body
    return body


def test_refresh_tokens(misc_node: Any) -> None:
    user_id, password = misc_node.new_user("refresh")
    first = _login(misc_node, user_id, password)
    assert first["expires_in_ms"] == LIFETIME_MS and first["refresh_token"]
    whoami = V3 + "/account/whoami"
    assert api(misc_node, "GET", whoami, token=first["access_token"])[0] == 200
    # wait out the access token's lifetime (the node's own clock decides)
    deadline = time.monotonic() + 30
    while True:
        status, err = api(misc_node, "GET", whoami, token=first["access_token"])
        if status == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (status, err["errcode"], err["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", True)
    status, second = api(
        misc_node, "POST", V3 + "/refresh", json_body={"refresh_token": first["refresh_token"]}
    )
    assert status == 200, second
    status, me = api(misc_node, "GET", whoami, token=second["access_token"])
    assert status == 200 and me["device_id"] == first["device_id"]
    status, err = api(
        misc_node, "POST", V3 + "/refresh", json_body={"refresh_token": first["refresh_token"]}
    )
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_small_room_operations(misc_node: Any) -> None:
    async def scenario() -> None:
        alice = await misc_node.new_client("misc")
        bob = await misc_node.new_client("misc")
        try:
            room = await create_room_with(alice, bob, name="Maths 4B")
            sent = await alice.room_send(room, "m.room.message", text("fractions"))
            assert isinstance(sent, RoomSendResponse), sent
            token = bob.access_token
            # mutual rooms
            status, body = api(
                misc_node, "GET", f"{V1}/mutual_rooms?user_id={alice.user_id}", token=token
            )
            assert status == 200 and body == {"joined": [room], "count": 1}
            # room summary
            status, body = api(misc_node, "GET", f"{V1}/room_summary/{room}", token=token)
            assert status == 200
            assert body["name"] == "Maths 4B" and body["membership"] == "join"
            # timestamp to event: the message, looking back from far in the future
            future = int(time.time() * 1000) + 3_600_000
            status, body = api(
                misc_node,
                "GET",
                f"{V1}/rooms/{room}/timestamp_to_event?ts={future}&dir=b",
                token=token,
            )
            assert status == 200 and body["event_id"] == sent.event_id
            # the deprecated API: /initialSync and /events/{eventId}
            status, body = api(misc_node, "GET", f"{V3}/initialSync?limit=5", token=token)
            assert status == 200 and room in {r["room_id"] for r in body["rooms"]}
            status, body = api(misc_node, "GET", f"{V3}/events/{sent.event_id}", token=token)
            assert status == 200 and body["content"]["body"] == "fractions"
        finally:
            await alice.close()
            await bob.close()

    run(scenario())


def test_room_upgrade_and_members_follow(misc_node: Any) -> None:
    async def scenario() -> None:
        alice = await misc_node.new_client("upg")
        bob = await misc_node.new_client("upg")
        try:
            # A public room: members of an invite-only room would need invites to follow.
            room = await create_room_with(alice, bob, name="Chess", preset=RoomPreset.public_chat)
            await bob.sync(timeout=0)
            status, body = api(
                misc_node,
                "POST",
                f"{V3}/rooms/{room}/upgrade",
                token=alice.access_token,
                json_body={"new_version": "12"},
            )
            assert status == 200, body
            new_room = body["replacement_room"]
            # bob learns of the tombstone through /sync and follows it
            resp = await sync_until(
                bob,
                lambda r: any(isinstance(e, RoomUpgradeEvent) for e in _timeline(r, room)),
            )
            (tomb,) = [e for e in _timeline(resp, room) if isinstance(e, RoomUpgradeEvent)]
            assert tomb.replacement_room == new_room
            joined = await bob.join(tomb.replacement_room)
            assert isinstance(joined, JoinResponse), joined
            await bob.sync(timeout=0)
            assert bob.rooms[new_room].name == "Chess"
        finally:
            await alice.close()
            await bob.close()

    run(scenario())


def _timeline(resp: Any, room_id: str) -> list:
    room = resp.rooms.join.get(room_id)
    return list(room.timeline.events) if room is not None else []
