"""E2E federation between two Parta nodes on loopback (A on SQLite, B on PostgreSQL), each
with its own signing key and CA-signed TLS certificate, driven by matrix-nio clients:
keys, cross-server invite and join, messages both ways, typing and receipts, a file uploaded
on A downloaded on B, profile lookups, leave and ban, join by alias and by room ID with a
server name, and /messages backfill of history from before the join.

Spec: server-server API (joins, invites, transactions, EDUs, query endpoints, media) and the
client-server API as seen by clients on both servers.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import pytest
from cryptography import x509
from nio import (
    DownloadResponse,
    ProfileGetResponse,
    RoomBanResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomPutStateResponse,
    UpdateReceiptMarkerResponse,
    UploadResponse,
)

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import (
    accept_invite,
    client_api,
    close_all,
    join_via,
    joined_members,
    new_watcher,
    q,
    room_state,
    send_text,
    setup_room,
    wait_for,
    wait_for_bodies,
)
from federation.keys import VerifyKey, load_signing_key_file
from federation.signing import verify_json

USES_POSTGRES = True


@pytest.fixture(scope="module")
def pair(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    a, b = fed_cluster.create(2, backends=["sqlite", "postgres"])
    return a, b


def test_init_cert_and_published_keys(pair):
    """`parta node init` made a certificate and key for the federation listener, and each
    node publishes its signing key, self-signed, on /_matrix/key/v2/server over HTTPS."""
    for node in pair:
        listener = node.init_federation.get("listener") or {}
        cert_path = listener.get("tls_certificate_path")
        key_path = listener.get("tls_private_key_path")
        assert cert_path and key_path, f"init wrote no federation TLS paths: {node.init_federation}"
        cert_path = os.path.join(node.data_dir, cert_path)
        assert os.path.exists(cert_path) and os.path.exists(os.path.join(node.data_dir, key_path))
        with open(cert_path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName)

        status, body = node.fed_get("/_matrix/key/v2/server")
        assert status == 200, body
        assert body["server_name"] == node.server_name
        own = load_signing_key_file(
            node.config.get("signing_key_path") or os.path.join(node.data_dir, "signing.key")
        )[0]
        assert body["verify_keys"][own.key_id]["key"] == own.verify_key.encode()
        assert body["valid_until_ts"] > time.time() * 1000
        verify_json(
            body,
            node.server_name,
            VerifyKey.decode(own.key_id, body["verify_keys"][own.key_id]["key"]),
        )


def test_invite_join_and_messages_both_ways(pair):
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            from nio import RoomCreateResponse, RoomInviteResponse

            created = await alice.client.room_create(name="Elternabend 7b", topic="Termine")
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            inv = await alice.client.room_invite(room_id, bob.user_id)
            assert isinstance(inv, RoomInviteResponse), inv

            # Bob's server got the invite (signed by both servers) and his client sees it
            # with the stripped state that names the room.
            await bob.until(lambda w: room_id in w.invites, what="invite over federation")
            names = [e.get("content", {}).get("name") for e in bob.invites[room_id]]
            assert "Elternabend 7b" in names, bob.invites[room_id]

            await accept_invite(bob, room_id)
            await alice.until(
                lambda w: w.membership_of(room_id, bob.user_id) == "join", what="bob's join on A"
            )
            assert await joined_members(alice.client, room_id) == {alice.user_id, bob.user_id}
            assert await joined_members(bob.client, room_id) == {alice.user_id, bob.user_id}
            state_b = await room_state(bob.client, room_id)
            assert state_b[("m.room.name", "")]["content"]["name"] == "Elternabend 7b"
            assert state_b[("m.room.topic", "")]["content"]["topic"] == "Termine"

            e1 = await send_text(alice, room_id, "Guten Abend aus Schule A")
            (got1,) = await wait_for_bodies(bob, room_id, ["Guten Abend aus Schule A"])
            assert got1["event_id"] == e1 and got1["sender"] == alice.user_id

            e2 = await send_text(bob, room_id, "Hallo aus Schule B")
            (got2,) = await wait_for_bodies(alice, room_id, ["Hallo aus Schule B"])
            assert got2["event_id"] == e2 and got2["sender"] == bob.user_id

            # Several in a row arrive in order on the other side.
            bodies = [f"A{i}" for i in range(10)]
            for body in bodies:
                await send_text(alice, room_id, body)
            await wait_for_bodies(bob, room_id, bodies)
            seen = [x for x in bob.bodies(room_id) if x in bodies]
            assert seen == bodies
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=300)


def test_typing_and_receipts_across(pair):
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            room_id = await setup_room(alice, bob)
            await alice.client.room_typing(room_id, True, timeout=30000)
            await bob.until(
                lambda w: any(alice.user_id in u for u in w.typing[room_id]),
                what="alice typing seen on B",
            )
            await alice.client.room_typing(room_id, False)
            await bob.until(
                lambda w: w.typing[room_id] and alice.user_id not in w.typing[room_id][-1],
                what="alice stopped typing seen on B",
            )

            eid = await send_text(alice, room_id, "Bitte lesen")
            await wait_for_bodies(bob, room_id, ["Bitte lesen"])
            resp = await bob.client.update_receipt_marker(room_id, eid)
            assert isinstance(resp, UpdateReceiptMarkerResponse), resp
            await alice.until(
                lambda w: (bob.user_id, "m.read", eid) in w.receipts[room_id],
                what="bob's read receipt seen on A",
            )
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=300)


def test_file_uploaded_on_a_downloaded_on_b(pair):
    a, b = pair
    data = secrets.token_bytes(150_000)

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            room_id = await setup_room(alice, bob)
            up, _ = await alice.client.upload(
                lambda *_: data,
                content_type="application/pdf",
                filename="Elternbrief.pdf",
                filesize=len(data),
            )
            assert isinstance(up, UploadResponse), up
            assert up.content_uri.startswith(f"mxc://{a.server_name}/")
            await alice.client.room_send(
                room_id,
                "m.room.message",
                {
                    "msgtype": "m.file",
                    "body": "Elternbrief.pdf",
                    "url": up.content_uri,
                    "info": {"mimetype": "application/pdf", "size": len(data)},
                },
            )
            (ev,) = await wait_for_bodies(bob, room_id, ["Elternbrief.pdf"])
            assert ev["content"]["url"] == up.content_uri

            got = await bob.client.download(mxc=ev["content"]["url"])
            assert isinstance(got, DownloadResponse), got
            assert got.body == data
            assert got.content_type.startswith("application/pdf")

            # A second download is served the same (from B's copy or again from A).
            again = await bob.client.download(mxc=ev["content"]["url"])
            assert isinstance(again, DownloadResponse) and again.body == data

            # Unknown remote media: 404 M_NOT_FOUND, not a server error.
            server, media_id = a.server_name, "doesnotexist"
            status, body = await asyncio.to_thread(
                client_api,
                bob.client,
                "GET",
                f"/_matrix/client/v1/media/download/{q(server)}/{media_id}",
            )
            assert status == 404 and body["errcode"] == "M_NOT_FOUND", (status, body)
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=300)


def test_profile_lookups_across(pair):
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            await alice.client.set_displayname("Frau Müller")
            prof = await bob.client.get_profile(alice.user_id)
            assert isinstance(prof, ProfileGetResponse), prof
            assert prof.displayname == "Frau Müller"

            status, body = await asyncio.to_thread(
                client_api,
                bob.client,
                "GET",
                f"/_matrix/client/v3/profile/{q(alice.user_id)}/displayname",
            )
            assert status == 200 and body == {"displayname": "Frau Müller"}, (status, body)

            status, body = await asyncio.to_thread(
                client_api,
                bob.client,
                "GET",
                f"/_matrix/client/v3/profile/{q('@nobody:' + a.server_name)}",
            )
            assert status == 404 and body["errcode"] == "M_NOT_FOUND", (status, body)

            # A profile change after joining reaches the other server as a member event.
            room_id = await setup_room(alice, bob)
            await alice.client.set_displayname("Dr. Müller")
            await bob.until(
                lambda w: any(
                    e.get("state_key") == alice.user_id
                    and e.get("content", {}).get("displayname") == "Dr. Müller"
                    for e in w.events(room_id, "m.room.member")
                ),
                what="alice's new display name in the room on B",
            )
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=300)


def test_leave_and_ban(pair):
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        carol = await new_watcher(b, "carol")
        try:
            room_id = await setup_room(alice, bob, carol)

            left = await bob.client.room_leave(room_id)
            assert isinstance(left, RoomLeaveResponse), left
            await alice.until(
                lambda w: w.membership_of(room_id, bob.user_id) == "leave", what="bob's leave on A"
            )
            await wait_for(
                lambda: _members(alice, room_id, {alice.user_id, carol.user_id}),
                what="A's member list without bob",
            )
            assert room_id not in (await bob.client.joined_rooms()).rooms

            ban = await alice.client.room_ban(room_id, carol.user_id, reason="Spam")
            assert isinstance(ban, RoomBanResponse), ban
            await carol.until(
                lambda w: w.membership_of(room_id, carol.user_id) == "ban",
                what="carol sees her ban on B",
            )
            await wait_for(
                lambda: _members(alice, room_id, {alice.user_id}),
                what="A's member list without carol",
            )
            # The ban holds across servers: carol's attempt to rejoin is refused.
            rejoin = await carol.client.join(room_id)
            assert getattr(rejoin, "status_code", None) == "M_FORBIDDEN", rejoin

            # Bob left on his own: invited again, he can come back.
            await alice.client.room_invite(room_id, bob.user_id)
            await accept_invite(bob, room_id)
            await wait_for(
                lambda: _members(alice, room_id, {alice.user_id, bob.user_id}),
                what="bob back in the room",
            )
            await send_text(bob, room_id, "wieder da")
            await wait_for_bodies(alice, room_id, ["wieder da"])
        finally:
            await close_all(alice, bob, carol)

    run(scenario(), timeout=300)


async def _members(w, room_id, expected):
    return await joined_members(w.client, room_id) == expected


def test_join_by_alias_and_backfill_history(pair):
    """B's user joins a public room on A by its alias (query/directory + make_join/send_join)
    and pages back through history sent before he joined (/messages -> federation backfill)."""
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            alias_local = f"aula{secrets.token_hex(3)}"
            created = await alice.client.room_create(
                alias=alias_local, name="Aula", preset=_public_preset()
            )
            room_id = created.room_id
            history = [f"Ankündigung {i}" for i in range(40)]
            for body in history:
                await send_text(alice, room_id, body)

            joined = await bob.client.join(f"#{alias_local}:{a.server_name}")
            assert getattr(joined, "room_id", None) == room_id, joined
            await alice.until(
                lambda w: w.membership_of(room_id, bob.user_id) == "join", what="bob's join on A"
            )

            # Page back from the newest event known on B until the room's start.
            sync = await bob.sync_once()
            join_info = sync.rooms.join.get(room_id)
            token = join_info.timeline.prev_batch if join_info else None
            seen = [e.get("content", {}).get("body") for e in bob.messages(room_id)]
            for _ in range(30):
                resp = await bob.client.room_messages(room_id, start=token, limit=20)
                assert isinstance(resp, RoomMessagesResponse), resp
                seen = [
                    e.source.get("content", {}).get("body")
                    for e in resp.chunk
                    if e.source.get("type") == "m.room.message"
                ][::-1] + seen
                if not resp.chunk or not resp.end or resp.end == token:
                    break
                token = resp.end
            got = [s for s in seen if s in set(history)]
            assert got == history, f"history on B: {got[:5]}... ({len(got)} of {len(history)})"
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=300)


def _public_preset():
    from nio import RoomPreset

    return RoomPreset.public_chat


def test_join_by_room_id_with_server_name_and_state_changes(pair):
    """A's user joins a public room on B by ID (server_name/via); state changes made on
    either server show up on the other."""
    a, b = pair

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        try:
            created = await bob.client.room_create(
                name="Schulhof", preset=_public_preset(), power_level_override={"state_default": 0}
            )
            room_id = created.room_id
            assert await join_via(alice.client, room_id, [b.server_name]) == room_id
            await wait_for(
                lambda: _members(bob, room_id, {alice.user_id, bob.user_id}),
                what="alice joined on B",
            )

            put = await alice.client.room_put_state(
                room_id, "m.room.topic", {"topic": "Pausenaufsicht"}
            )
            assert isinstance(put, RoomPutStateResponse), put
            await wait_for(
                lambda: _state_is(bob, room_id, "m.room.topic", "topic", "Pausenaufsicht"),
                what="topic from A on B",
            )
            put = await bob.client.room_put_state(room_id, "m.room.name", {"name": "Hof"})
            assert isinstance(put, RoomPutStateResponse), put
            await wait_for(
                lambda: _state_is(alice, room_id, "m.room.name", "name", "Hof"),
                what="name from B on A",
            )
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=300)


async def _state_is(w, room_id, type_, field, value):
    state = await room_state(w.client, room_id)
    ev = state.get((type_, ""))
    return ev is not None and ev["content"].get(field) == value
