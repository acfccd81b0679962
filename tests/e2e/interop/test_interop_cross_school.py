"""Interop with a real Synapse: what a client does across the two servers.

* A DM started with ``createRoom {invite: [the other server's user], is_direct: true}``
  both ways (client-server API "Creation", "Direct Messaging"): the invitee's ``/sync``
  shows the invite with ``is_direct`` and the inviter's member event, the invitee joins
  and both talk.
* Each side's client resolves the other's aliases (``GET /directory/room``) and reads
  the other's published rooms (``/publicRooms?server=``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "federation")
)

import pytest
import yaml
from nio import (
    AsyncClient,
    JoinResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomPreset,
    RoomVisibility,
)

from e2e_helpers import DEFAULT_PASSWORD, run
from fed_harness import (
    FedCluster,
    Watcher,
    client_api,
    close_all,
    members_are,
    new_watcher,
    q,
    send_text,
    wait_for,
    wait_for_bodies,
)
from federation_env import FederatedSynapse
from interop_fixtures import interop_ca, synapse_python  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.synapse, pytest.mark.timeout(900)]


class PublishingSynapse(FederatedSynapse):
    """Synapse lets nobody but its admins publish rooms unless told otherwise
    (``room_list_publication_rules``); its users may here, as Parta's may."""

    def configure(self) -> None:
        super().configure()
        with open(self.config_path) as fh:
            cfg = yaml.safe_load(fh)
        cfg["room_list_publication_rules"] = [{"action": "allow"}]
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)


@pytest.fixture(scope="module")
def parta_and_synapse(synapse_python, interop_ca, tmp_path_factory):  # noqa: F811 - fixtures
    """One Parta node and one Synapse (as interop_fixtures.parta_and_synapse, with room
    publication allowed on Synapse)."""
    cluster = FedCluster(str(tmp_path_factory.mktemp("xs-parta")), interop_ca)
    synapse = PublishingSynapse(
        str(tmp_path_factory.mktemp("xs-synapse")), synapse_python, interop_ca
    )
    failures: list[str] = []
    try:
        synapse.start()
        (parta,) = cluster.create(1)
        yield parta, synapse
    finally:
        try:
            synapse.stop()
        except Exception as exc:  # noqa: BLE001 - reported with the other failures
            failures.append(f"stopping Synapse: {exc}")
        failures += cluster.stop_all()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


async def synapse_watcher(synapse, prefix: str) -> Watcher:
    client = AsyncClient(synapse.base_url)
    localpart = f"{prefix}{secrets.token_hex(3)}"
    resp = await client.register(localpart, DEFAULT_PASSWORD, device_name="interop")
    assert isinstance(resp, RegisterResponse), f"register on Synapse: {resp}"
    w = Watcher(client)
    await w.sync_once(timeout_ms=0)
    return w


async def _invite_state(w: Watcher, room_id: str) -> list[dict]:
    """The invite's stripped state as the client is sent it (raw ``/sync``; a timeout
    of its own: Synapse briefly caches an initial sync per request parameters)."""
    status, sync = await asyncio.to_thread(
        client_api, w.client, "GET", "/_matrix/client/v3/sync", None, {"timeout": "1"}
    )
    assert status == 200, sync
    return sync["rooms"]["invite"][room_id]["invite_state"]["events"]


def _member(state: list[dict], user_id: str) -> dict:
    return next(
        e for e in state if e.get("type") == "m.room.member" and e.get("state_key") == user_id
    )


async def _dm(inviter: Watcher, invitee: Watcher) -> None:
    await inviter.client.set_displayname("Frau Direkt")
    created = await inviter.client.room_create(
        invite=[invitee.user_id], is_direct=True, preset=RoomPreset.trusted_private_chat
    )
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    await invitee.until(lambda w: room_id in w.invites, what="the DM invite")
    state = await _invite_state(invitee, room_id)
    own = _member(state, invitee.user_id)
    assert own["content"]["membership"] == "invite"
    assert own["content"].get("is_direct") is True
    assert own["sender"] == inviter.user_id
    assert _member(state, inviter.user_id)["content"].get("displayname") == "Frau Direkt"
    joined = await invitee.client.join(room_id)
    assert isinstance(joined, JoinResponse), joined
    both = {inviter.user_id, invitee.user_id}
    await wait_for(lambda: members_are(inviter, room_id, both), what="both joined")
    await send_text(inviter, room_id, "Guten Tag")
    await wait_for_bodies(invitee, room_id, ["Guten Tag"])
    await send_text(invitee, room_id, "Hallo zurück")
    await wait_for_bodies(inviter, room_id, ["Hallo zurück"])


def test_dm_by_create_room_parta_to_synapse(parta_and_synapse):
    parta, synapse = parta_and_synapse

    async def scenario():
        alice = await new_watcher(parta, "alice")
        sam = await synapse_watcher(synapse, "sam")
        try:
            await _dm(alice, sam)
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)


def test_dm_by_create_room_synapse_to_parta(parta_and_synapse):
    parta, synapse = parta_and_synapse

    async def scenario():
        alice = await new_watcher(parta, "alice")
        sam = await synapse_watcher(synapse, "sam")
        try:
            await _dm(sam, alice)
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)


def test_alias_and_public_rooms_across(parta_and_synapse):
    parta, synapse = parta_and_synapse

    async def scenario():
        alice = await new_watcher(parta, "alice")
        sam = await synapse_watcher(synapse, "sam")
        try:
            local = f"werkstatt{secrets.token_hex(2)}"
            on_synapse = await sam.client.room_create(
                alias=local, name="Werkstatt", visibility=RoomVisibility.public
            )
            assert isinstance(on_synapse, RoomCreateResponse), on_synapse
            on_parta = await alice.client.room_create(
                alias=local, name="Bibliothek", visibility=RoomVisibility.public
            )
            assert isinstance(on_parta, RoomCreateResponse), on_parta

            # Synapse asks Parta's query/directory for a Parta alias
            parta_alias = f"#{local}:{parta.server_name}"
            status, body = await asyncio.to_thread(
                client_api, sam.client, "GET", f"/_matrix/client/v3/directory/room/{q(parta_alias)}"
            )
            assert status == 200, body
            assert body["room_id"] == on_parta.room_id
            assert parta.server_name in body["servers"]

            alias = f"#{local}:{synapse.server_name}"
            status, body = await asyncio.to_thread(
                client_api, alice.client, "GET", f"/_matrix/client/v3/directory/room/{q(alias)}"
            )
            assert status == 200, body
            assert body["room_id"] == on_synapse.room_id
            assert synapse.server_name in body["servers"]

            status, body = await asyncio.to_thread(
                client_api,
                alice.client,
                "GET",
                "/_matrix/client/v3/publicRooms",
                None,
                {"server": synapse.server_name},
            )
            assert status == 200, body
            assert on_synapse.room_id in {r["room_id"] for r in body["chunk"]}

            status, body = await asyncio.to_thread(
                client_api,
                sam.client,
                "POST",
                "/_matrix/client/v3/publicRooms",
                {"limit": 10, "filter": {"generic_search_term": "bibliothek"}},
                {"server": parta.server_name},
            )
            assert status == 200, body
            assert [r["room_id"] for r in body["chunk"]] == [on_parta.room_id]
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)
