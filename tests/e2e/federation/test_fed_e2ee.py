"""E2E across two Parta nodes with matrix-nio's own crypto (vodozemac): a teacher of one
school sends an encrypted message to a pupil of the other.  Her client queries the
pupil's device keys and claims a one-time key through her server (``user/keys/query``,
``user/keys/claim`` to the pupil's server), shares the Megolm session in an
``m.direct_to_device`` EDU, and the pupil's client decrypts the message (server-server API
"End-to-End Encryption", "Send-to-device messaging")."""

from __future__ import annotations

import pytest

pytest.importorskip("vodozemac")  # matrix-nio's crypto (pip install 'matrix-nio[e2e]')

from nio import (  # noqa: E402 - after the skip
    AsyncClient,
    AsyncClientConfig,
    EncryptionError,
    InviteMemberEvent,
    JoinResponse,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
)

from e2e_helpers import DEFAULT_PASSWORD, run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import wait_for

ENCRYPTED_ROOM = [
    {
        "type": "m.room.encryption",
        "state_key": "",
        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
    }
]


@pytest.fixture(scope="module")
def pair(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(2)


async def _crypto_client(node, localpart: str, store: str) -> AsyncClient:
    user_id = node.add_user(localpart)
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
    client = AsyncClient(node.base_url, user_id, store_path=store, config=config)
    resp = await client.login(DEFAULT_PASSWORD, device_name="e2ee")
    assert isinstance(resp, LoginResponse), resp
    await client.keys_upload()
    return client


def test_encrypted_message_to_the_other_school(pair, tmp_path):
    a, b = pair
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    async def scenario():
        anna = await _crypto_client(a, "anna", str(tmp_path / "a"))
        ben = await _crypto_client(b, "ben", str(tmp_path / "b"))
        try:
            created = await anna.room_create(initial_state=ENCRYPTED_ROOM, invite=[ben.user_id])
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id

            async def invited() -> bool:
                resp = await ben.sync(timeout=1000)
                room = resp.rooms.invite.get(room_id)
                return room is not None and any(
                    isinstance(e, InviteMemberEvent) for e in room.invite_state
                )

            await wait_for(invited, what="ben's invite")
            joined = await ben.join(room_id)
            assert isinstance(joined, JoinResponse), joined

            async def both_joined() -> bool:
                await anna.sync(timeout=500)
                room = anna.rooms.get(room_id)
                return room is not None and ben.user_id in room.users

            await wait_for(both_joined, what="ben joined on anna's server")
            await ben.sync(timeout=0)

            async def knows_bens_device() -> bool:
                await anna.keys_query()
                return ben.device_id in anna.device_store[ben.user_id]

            await wait_for(knows_bens_device, what="ben's device keys over federation")
            sent = await anna.room_send(
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": "field trip on friday"},
                ignore_unverified_devices=True,
            )
            assert isinstance(sent, RoomSendResponse), sent

            undecrypted: list[MegolmEvent] = []

            async def decrypted() -> bool:
                # The message may arrive before the room key (a PDU and an EDU travel
                # independently): keep what could not be decrypted yet and retry.
                resp = await ben.sync(timeout=1000)
                room = resp.rooms.join.get(room_id)
                events = list(room.timeline.events) if room is not None else []
                undecrypted.extend(e for e in events if isinstance(e, MegolmEvent))
                for ev in list(undecrypted):
                    try:
                        events.append(ben.decrypt_event(ev))
                    except EncryptionError:
                        continue
                return any(
                    isinstance(e, RoomMessageText) and e.body == "field trip on friday"
                    for e in events
                )

            await wait_for(decrypted, what="ben decrypts the message")
        finally:
            await anna.close()
            await ben.close()

    run(scenario())
