"""End-to-end encryption against a real node, with matrix-nio's own crypto (vodozemac):
two clients upload device and one-time keys, one claims a key of the other, shares a
Megolm session with an Olm-encrypted to-device message and sends an encrypted message
that the other decrypts (client-server API "End-to-End Encryption",
"Send-to-Device messaging").  SQLite only: the area's SQL is the same on both backends
(the unit tests run it); one node, started once for the module."""

from __future__ import annotations

import pytest

pytest.importorskip("vodozemac")  # matrix-nio's crypto (pip install 'matrix-nio[e2e]')

from nio import (  # noqa: E402 - after the skip
    AsyncClient,
    AsyncClientConfig,
    KeysUploadResponse,
    LoginResponse,
    MegolmEvent,
    RoomMessageText,
    RoomSendResponse,
)

from e2e_helpers import DEFAULT_PASSWORD, api, create_room_with, run, sync_until

V3 = "/_matrix/client/v3"
ENCRYPTED_ROOM = [
    {
        "type": "m.room.encryption",
        "state_key": "",
        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
    }
]


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"


async def _crypto_client(node, user_id: str, store: str) -> AsyncClient:
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
    client = AsyncClient(node.base_url, user_id, store_path=store, config=config)
    resp = await client.login(DEFAULT_PASSWORD, device_name="e2ee")
    assert isinstance(resp, LoginResponse), resp
    return client


def test_two_clients_exchange_an_encrypted_message(node, tmp_path):
    alice_id = node.add_user("anna", role="teacher")
    bob_id = node.add_user("ben", role="pupil")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    async def scenario():
        alice = await _crypto_client(node, alice_id, str(tmp_path / "a"))
        bob = await _crypto_client(node, bob_id, str(tmp_path / "b"))
        try:
            uploaded = {}
            for client in (alice, bob):
                assert client.should_upload_keys
                up = await client.keys_upload()
                assert isinstance(up, KeysUploadResponse), up
                assert up.signed_curve25519_count > 0
                uploaded[client.user_id] = up.signed_curve25519_count
            room_id = await create_room_with(alice, bob, initial_state=ENCRYPTED_ROOM)
            await alice.sync(timeout=0, full_state=True)
            await bob.sync(timeout=0, full_state=True)
            # Alice learns Bob's device from /keys/query (the server verified its signature
            # on upload), then sends: nio claims a one-time key, shares the Megolm session
            # over /sendToDevice and sends the encrypted event.
            if alice.should_query_keys:
                await alice.keys_query()
            assert bob.device_id in alice.device_store[bob_id]
            sent = await alice.room_send(
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": "secret homework"},
                ignore_unverified_devices=True,
            )
            assert isinstance(sent, RoomSendResponse), sent
            got = await sync_until(
                bob,
                lambda r: any(
                    isinstance(e, (RoomMessageText, MegolmEvent))
                    for e in (
                        r.rooms.join.get(room_id).timeline.events if room_id in r.rooms.join else []
                    )
                ),
            )
            events = got.rooms.join[room_id].timeline.events
            texts = [e for e in events if isinstance(e, RoomMessageText)]
            assert [e.body for e in texts] == ["secret homework"], events
            # What the server stored is ciphertext only.
            status, body = api(
                node,
                "GET",
                V3 + f"/rooms/{room_id}/messages?dir=b&limit=5",
                token=bob.access_token,
            )
            assert status == 200
            kinds = [e["type"] for e in body["chunk"]]
            assert "m.room.encrypted" in kinds and "secret homework" not in str(body)
            # The one-time key Alice claimed is gone: Bob's count went down by one.
            status, counts = api(
                node, "POST", V3 + "/keys/upload", token=bob.access_token, json_body={}
            )
            assert status == 200
            assert counts["one_time_key_counts"]["signed_curve25519"] == uploaded[bob_id] - 1
        finally:
            await alice.close()
            await bob.close()

    run(scenario())
