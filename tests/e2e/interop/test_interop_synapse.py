"""Interop with a real Synapse from PyPI.

One Parta node and one Synapse on loopback, each with its own TLS certificate (signed by the
test CA, verified on both sides) and its own signing key, room version 12:

* a Synapse user joins a room created on Parta;
* a Parta user joins a room created on Synapse;

and in both rooms messages, state changes (topic, name, power levels), typing, receipts and
media flow both ways, each side's matrix-nio client seeing the other's.
"""

from __future__ import annotations

import secrets

import pytest
from nio import (
    AsyncClient,
    DownloadResponse,
    JoinResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomInviteResponse,
    RoomPutStateResponse,
    UpdateReceiptMarkerResponse,
    UploadResponse,
)

from e2e_helpers import DEFAULT_PASSWORD, run
from fed_harness import (
    Watcher,
    close_all,
    equals,
    members_are,
    new_watcher,
    room_state,
    send_text,
    wait_for,
    wait_for_bodies,
)
from interop_fixtures import interop_ca, parta_and_synapse, synapse_python  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.synapse, pytest.mark.timeout(900)]


async def synapse_watcher(synapse, prefix: str) -> Watcher:
    client = AsyncClient(synapse.base_url)
    localpart = f"{prefix}{secrets.token_hex(3)}"
    resp = await client.register(localpart, DEFAULT_PASSWORD, device_name="interop")
    assert isinstance(resp, RegisterResponse), f"register on Synapse: {resp}"
    w = Watcher(client)
    await w.sync_once(timeout_ms=0)
    return w


async def _state_value(w, room_id, type_, field):
    state = await room_state(w.client, room_id)
    ev = state.get((type_, ""))
    return ev["content"].get(field) if ev else None


async def _exchange_messages(parta_w, syn_w, room_id, tag):
    await send_text(parta_w, room_id, f"Parta sagt {tag}")
    (ev,) = await wait_for_bodies(syn_w, room_id, [f"Parta sagt {tag}"])
    assert ev["sender"] == parta_w.user_id
    await send_text(syn_w, room_id, f"Synapse sagt {tag}")
    (ev,) = await wait_for_bodies(parta_w, room_id, [f"Synapse sagt {tag}"])
    assert ev["sender"] == syn_w.user_id
    # A burst keeps its order on the other side.
    burst = [f"{tag}-{i}" for i in range(15)]
    for body in burst:
        await send_text(parta_w, room_id, body)
    await wait_for_bodies(syn_w, room_id, burst)
    assert [x for x in syn_w.bodies(room_id) if x in set(burst)] == burst


async def _media_both_ways(parta_w, syn_w, room_id):
    for uploader, downloader, name in (
        (parta_w, syn_w, "von-parta.bin"),
        (syn_w, parta_w, "von-synapse.bin"),
    ):
        data = secrets.token_bytes(70_000)
        up, _ = await uploader.client.upload(
            lambda *_, data=data: data, content_type="image/png", filename=name, filesize=len(data)
        )
        assert isinstance(up, UploadResponse), f"upload by {uploader.user_id}: {up}"
        await uploader.client.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": name,
                "url": up.content_uri,
                "info": {"mimetype": "image/png", "size": len(data)},
            },
        )
        (ev,) = await wait_for_bodies(downloader, room_id, [name])
        got = await downloader.client.download(mxc=ev["content"]["url"])
        assert isinstance(got, DownloadResponse), f"download by {downloader.user_id}: {got}"
        assert got.body == data, f"{name}: {len(got.body)} bytes, expected {len(data)}"


async def _typing_and_receipts(typer, observer, room_id):
    await typer.client.room_typing(room_id, True, timeout=30000)
    await observer.until(
        lambda w: any(typer.user_id in u for u in w.typing[room_id]), what=f"{typer.user_id} typing"
    )
    eid = await send_text(observer, room_id, "Lesebestätigung bitte")
    await wait_for_bodies(typer, room_id, ["Lesebestätigung bitte"])
    resp = await typer.client.update_receipt_marker(room_id, eid)
    assert isinstance(resp, UpdateReceiptMarkerResponse), resp
    await observer.until(
        lambda w: (typer.user_id, "m.read", eid) in w.receipts[room_id],
        what=f"{typer.user_id}'s receipt",
    )


def test_synapse_user_joins_room_on_parta(parta_and_synapse):  # noqa: F811 - the pytest fixture imported above
    parta, synapse = parta_and_synapse

    async def scenario():
        alice = await new_watcher(parta, "alice")
        sam = await synapse_watcher(synapse, "sam")
        try:
            created = await alice.client.room_create(name="Parta-Raum", topic="Start")
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            inv = await alice.client.room_invite(room_id, sam.user_id)
            assert isinstance(inv, RoomInviteResponse), inv
            await sam.until(lambda w: room_id in w.invites, what="invite on Synapse")
            joined = await sam.client.join(room_id)
            assert isinstance(joined, JoinResponse), f"Synapse join of a Parta room: {joined}"
            both = {alice.user_id, sam.user_id}
            await wait_for(lambda: members_are(alice, room_id, both), what="members on Parta")
            await wait_for(lambda: members_are(sam, room_id, both), what="members on Synapse")
            state = await room_state(sam.client, room_id)
            assert state[("m.room.create", "")]["content"].get("room_version") == "12"

            await _exchange_messages(alice, sam, room_id, "eins")

            # State changes both ways: Parta's topic, then Synapse's name after a promotion.
            r = await alice.client.room_put_state(room_id, "m.room.topic", {"topic": "Neu"})
            assert isinstance(r, RoomPutStateResponse), r
            await wait_for(
                lambda: equals(_state_value(sam, room_id, "m.room.topic", "topic"), "Neu"),
                what="Parta's topic on Synapse",
            )
            pl = dict(
                (await room_state(alice.client, room_id))[("m.room.power_levels", "")]["content"]
            )
            pl["users"] = {**pl.get("users", {}), sam.user_id: 50}
            r = await alice.client.room_put_state(room_id, "m.room.power_levels", pl)
            assert isinstance(r, RoomPutStateResponse), r
            await wait_for(
                lambda: _pl_of(sam, room_id, sam.user_id, 50), what="promotion seen on Synapse"
            )
            r = await sam.client.room_put_state(room_id, "m.room.name", {"name": "Von Synapse"})
            assert isinstance(r, RoomPutStateResponse), r
            await wait_for(
                lambda: equals(_state_value(alice, room_id, "m.room.name", "name"), "Von Synapse"),
                what="Synapse's name on Parta",
            )

            await _typing_and_receipts(sam, alice, room_id)
            await _media_both_ways(alice, sam, room_id)

            # The two servers agree on the room's state.
            async def same():
                sa = {
                    k: e["event_id"] for k, e in (await room_state(alice.client, room_id)).items()
                }
                ss = {k: e["event_id"] for k, e in (await room_state(sam.client, room_id)).items()}
                return sa == ss

            await wait_for(same, what="same state on Parta and Synapse")
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)


def test_parta_user_joins_room_on_synapse(parta_and_synapse):  # noqa: F811 - the pytest fixture imported above
    parta, synapse = parta_and_synapse

    async def scenario():
        alice = await new_watcher(parta, "alice")
        sam = await synapse_watcher(synapse, "sam")
        try:
            created = await sam.client.room_create(
                name="Synapse-Raum", topic="Anfang", room_version="12"
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            inv = await sam.client.room_invite(room_id, alice.user_id)
            assert isinstance(inv, RoomInviteResponse), inv
            await alice.until(lambda w: room_id in w.invites, what="Synapse's invite on Parta")
            names = [e.get("content", {}).get("name") for e in alice.invites[room_id]]
            assert "Synapse-Raum" in names, alice.invites[room_id]
            joined = await alice.client.join(room_id)
            assert isinstance(joined, JoinResponse), f"Parta join of a Synapse room: {joined}"
            both = {alice.user_id, sam.user_id}
            await wait_for(lambda: members_are(alice, room_id, both), what="members on Parta")
            await wait_for(lambda: members_are(sam, room_id, both), what="members on Synapse")
            state = await room_state(alice.client, room_id)
            assert state[("m.room.create", "")]["content"].get("room_version") == "12"
            assert state[("m.room.name", "")]["content"]["name"] == "Synapse-Raum"

            await _exchange_messages(alice, sam, room_id, "zwei")

            r = await sam.client.room_put_state(room_id, "m.room.topic", {"topic": "Geändert"})
            assert isinstance(r, RoomPutStateResponse), r
            await wait_for(
                lambda: equals(_state_value(alice, room_id, "m.room.topic", "topic"), "Geändert"),
                what="Synapse's topic on Parta",
            )
            pl = dict(
                (await room_state(sam.client, room_id))[("m.room.power_levels", "")]["content"]
            )
            pl["users"] = {**pl.get("users", {}), alice.user_id: 50}
            r = await sam.client.room_put_state(room_id, "m.room.power_levels", pl)
            assert isinstance(r, RoomPutStateResponse), r
            await wait_for(
                lambda: _pl_of(alice, room_id, alice.user_id, 50), what="promotion seen on Parta"
            )
            r = await alice.client.room_put_state(room_id, "m.room.name", {"name": "Von Parta"})
            assert isinstance(r, RoomPutStateResponse), r
            await wait_for(
                lambda: equals(_state_value(sam, room_id, "m.room.name", "name"), "Von Parta"),
                what="Parta's name on Synapse",
            )

            await _typing_and_receipts(alice, sam, room_id)
            await _media_both_ways(alice, sam, room_id)

            # Parta's user leaves; Synapse sees it.
            left = await alice.client.room_leave(room_id)
            assert getattr(left, "status_code", None) is None, left
            await wait_for(
                lambda: members_are(sam, room_id, {sam.user_id}),
                what="Parta user's leave on Synapse",
            )
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)


async def _pl_of(w, room_id, user_id, level):
    state = await room_state(w.client, room_id)
    return state[("m.room.power_levels", "")]["content"].get("users", {}).get(user_id) == level
