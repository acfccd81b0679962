"""E2E: ignoring users and erasing a deactivated account, with matrix-nio clients on a real
node (client-server API "Ignoring Users"; "Account deactivation" ``erase``).

Alice ignores Bob: his messages and invites stop reaching her ``/sync`` and ``/messages``
while Carol still sees them; un-ignored, his new messages reach her again.  Dave deactivates
with ``erase``: Erin, who joins afterwards, is served his messages redacted, while Carol,
a member before the erasure, still reads them.  No assertion depends on timing: each
"not received" is checked once a later event has arrived.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from nio import JoinResponse, RoomCreateResponse, RoomInviteResponse, RoomPreset, RoomSendResponse

from e2e_helpers import DEFAULT_PASSWORD, api, create_room_with, run, sync_until, text

pytestmark = pytest.mark.e2e

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"  # nothing here differs by backend; the unit tests cover the SQL


async def _send(client, room_id, body):
    resp = await client.room_send(room_id, "m.room.message", text(body))
    assert isinstance(resp, RoomSendResponse), resp
    return resp.event_id


def _bodies(resp, room_id):
    room = resp.rooms.join.get(room_id)
    events = room.timeline.events if room is not None else []
    return [getattr(e, "body", None) for e in events if getattr(e, "body", None)]


def _ignore(node, client, *users):
    path = f"{V3}/user/{quote(client.user_id)}/account_data/m.ignored_user_list"
    body = {"ignored_users": {u: {} for u in users}}
    status, _ = api(node, "PUT", path, token=client.access_token, json_body=body)
    assert status == 200


def _messages(node, client, room_id):
    path = f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=100"
    status, body = api(node, "GET", path, token=client.access_token)
    assert status == 200, body
    return {e["event_id"]: e for e in body["chunk"]}


def test_ignoring_a_user(node):
    async def scenario():
        alice = await node.new_client("alice")
        bob = await node.new_client("bob")
        carol = await node.new_client("carol")
        try:
            room_id = await create_room_with(alice, bob, carol, name="Klasse 7b")
            await alice.sync(timeout=0)
            await carol.sync(timeout=0)
            _ignore(node, alice, bob.user_id)
            hidden = await _send(bob, room_id, "von Bob")
            await _send(carol, room_id, "von Carol")
            seen: list[str] = []

            def got_carol(resp):
                seen.extend(_bodies(resp, room_id))
                return "von Carol" in seen

            await sync_until(alice, got_carol)
            assert "von Bob" not in seen
            assert hidden not in _messages(node, alice, room_id)
            # Carol ignores nobody: she has both.
            carols: list[str] = []
            await sync_until(
                carol, lambda r: carols.extend(_bodies(r, room_id)) or "von Carol" in carols
            )
            assert carols == ["von Bob", "von Carol"]
            assert hidden in _messages(node, carol, room_id)

            # Bob's invite to a new room does not reach Alice; Carol's, sent after, does.
            bobs = await bob.room_create(name="Bobs Raum")
            assert isinstance(bobs, RoomCreateResponse), bobs
            assert isinstance(
                await bob.room_invite(bobs.room_id, alice.user_id), RoomInviteResponse
            )
            carols_room = await carol.room_create(name="Carols Raum")
            assert isinstance(carols_room, RoomCreateResponse), carols_room
            invite = await carol.room_invite(carols_room.room_id, alice.user_id)
            assert isinstance(invite, RoomInviteResponse), invite
            invited: set[str] = set()
            await sync_until(
                alice,
                lambda r: invited.update(r.rooms.invite) or carols_room.room_id in invited,
            )
            assert bobs.room_id not in invited

            # Un-ignored: Bob's new messages reach Alice again.
            _ignore(node, alice)
            await _send(bob, room_id, "wieder da")
            after: list[str] = []
            await sync_until(alice, lambda r: after.extend(_bodies(r, room_id)) or bool(after))
            assert after == ["wieder da"]
        finally:
            for c in (alice, bob, carol):
                await c.close()

    run(scenario())


async def _deactivate_with_erase(node, client):
    path = V3 + "/account/deactivate"
    status, body = api(node, "POST", path, token=client.access_token, json_body={"erase": True})
    assert status == 401, body
    auth = {
        "type": "m.login.password",
        "session": body["session"],
        "password": DEFAULT_PASSWORD,
        "identifier": {"type": "m.id.user", "user": client.user_id},
    }
    status, body = api(
        node, "POST", path, token=client.access_token, json_body={"erase": True, "auth": auth}
    )
    assert status == 200, body


def test_erased_account_is_redacted_for_later_joiners(node):
    async def scenario():
        carol = await node.new_client("carol")
        dave = await node.new_client("dave")
        erin = await node.new_client("erin")
        try:
            room_id = await create_room_with(
                carol, dave, name="Projekt", preset=RoomPreset.public_chat
            )
            secret = await _send(dave, room_id, "meine Telefonnummer")
            await _deactivate_with_erase(node, dave)
            joined = await erin.join(room_id)
            assert isinstance(joined, JoinResponse), joined
            # Erin joined after the erasure: the message is there, redacted.
            erins = _messages(node, erin, room_id)
            assert erins[secret]["content"] == {}
            assert erins[secret]["sender"] == dave.user_id
            status, single = api(
                node,
                "GET",
                f"{V3}/rooms/{quote(room_id)}/event/{quote(secret)}",
                token=erin.access_token,
            )
            assert status == 200 and single["content"] == {}
            resp = await erin.sync(timeout=0, full_state=True)
            assert "meine Telefonnummer" not in _bodies(resp, room_id)
            # Carol saw it before the erasure and still does; no redaction was sent.
            carols = _messages(node, carol, room_id)
            assert carols[secret]["content"]["body"] == "meine Telefonnummer"
            assert all(e["type"] != "m.room.redaction" for e in carols.values())
        finally:
            for c in (carol, dave, erin):
                await c.close()

    run(scenario())
