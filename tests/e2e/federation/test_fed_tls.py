"""E2E: outbound TLS verification (server-server API "Server discovery" / TLS).

* A verifies certificates against the test CA (the default: verification on).
* D keeps the self-signed certificate ``parta node init`` generated: no CA vouches for it.
* E has ``insecure_skip_tls_verify: true`` (the loud loopback-tests switch).

A cannot deliver an invite to D (its certificate does not verify), E can; D reaches E with
verification (E's certificate is from the CA), so D's user joins E's room and they chat.
"""

from __future__ import annotations

import asyncio

import pytest
from nio import RoomCreateResponse, RoomInviteResponse

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import (
    accept_invite,
    client_api,
    close_all,
    equals,
    joined_members,
    new_watcher,
    q,
    room_state,
    send_text,
    wait_for,
    wait_for_bodies,
)


@pytest.fixture(scope="module")
def nodes(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    (a,) = fed_cluster.create(1)
    (d,) = fed_cluster.create(1, self_signed=True)
    (e,) = fed_cluster.create(1, federation={"insecure_skip_tls_verify": True})
    return a, d, e


def test_unverifiable_certificate_is_refused(nodes):
    a, d, _e = nodes

    async def scenario():
        alice = await new_watcher(a, "alice")
        dora = await new_watcher(d, "dora")
        try:
            created = await alice.client.room_create(name="Geprüft")
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            inv = await alice.client.room_invite(room_id, dora.user_id)
            assert not isinstance(inv, RoomInviteResponse), (
                f"A delivered an invite to a server whose certificate it cannot verify: {inv}"
            )
            # The client learns only that D could not be reached (a closed port, a refused
            # address and a TLS failure look alike to it: docs/security.md); the node's log
            # says it was the certificate.
            why = (getattr(inv, "message", "") or "").lower()
            assert why == f"could not reach {d.server_name}", inv
            log = a.log_tail(400).lower()
            assert "remote_unreachable" in log and ("tls" in log or "certificate" in log), log[
                -2000:
            ]
            state = await room_state(alice.client, room_id)
            assert ("m.room.member", dora.user_id) not in state
            # A's profile lookup on D fails the same way (no answer from an unverified peer).
            status, body = await asyncio.to_thread(
                client_api, alice.client, "GET", f"/_matrix/client/v3/profile/{q(dora.user_id)}"
            )
            assert status != 200, (status, body)
        finally:
            await close_all(alice, dora)

    run(scenario())


def test_insecure_switch_reaches_self_signed_server(nodes):
    _a, d, e = nodes

    async def scenario():
        erik = await new_watcher(e, "erik")
        dora = await new_watcher(d, "dora")
        try:
            created = await erik.client.room_create(name="Ungeprüft")
            room_id = created.room_id
            inv = await erik.client.room_invite(room_id, dora.user_id)
            assert isinstance(inv, RoomInviteResponse), inv
            await accept_invite(dora, room_id)
            both = {erik.user_id, dora.user_id}
            await wait_for(
                lambda: equals(joined_members(erik.client, room_id), both), what="dora joined on E"
            )
            await send_text(erik, room_id, "über den unsicheren Schalter")
            await wait_for_bodies(dora, room_id, ["über den unsicheren Schalter"])
            await send_text(dora, room_id, "zurück mit Prüfung")
            await wait_for_bodies(erik, room_id, ["zurück mit Prüfung"])
        finally:
            await close_all(erik, dora)

    run(scenario())


def test_insecure_switch_is_logged_loudly(nodes):
    _a, _d, e = nodes
    with open(e.log_path, encoding="utf-8", errors="replace") as fh:
        log = fh.read()
    assert "insecure" in log.lower() and "WARNING" in log, e.log_tail()
