"""E2E: delivery across an outage.

Node B is stopped (SIGTERM) while two users on A send 200 messages; B is started again and its
client, syncing from where it left off (filling a limited timeline with /messages like any
client), receives all 200, in the order they were sent, each exactly once.  A second test
restarts the *sending* node too while messages are queued: the per-destination queue lives in
the database.
"""

from __future__ import annotations

import pytest
from nio import RoomInviteResponse

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import Account, accept_invite, close_all, send_text, setup_room, wait_for_bodies

# Time for B to come back, A's backoff to let the retry through, and 200 events to flow.
CATCH_UP_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def nodes(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(2)


def _assert_exactly_once_in_order(watcher, room_id, bodies):
    got = [x for x in watcher.bodies(room_id) if x in set(bodies)]
    dupes = {x for x in got if got.count(x) > 1}
    assert not dupes, f"delivered more than once: {sorted(dupes)[:10]}"
    missing = [x for x in bodies if x not in set(got)]
    assert not missing, f"{len(missing)} never arrived, e.g. {missing[:5]}"
    assert got == bodies, "out of order: first difference at " + str(
        next(i for i, (x, y) in enumerate(zip(got, bodies, strict=False)) if x != y)
    )
    ids = [e["event_id"] for e in watcher.messages(room_id)]
    assert len(ids) == len(set(ids)), "an event ID appears twice in the client's timeline"


@pytest.mark.timeout(900)
def test_200_messages_sent_while_b_is_down_arrive_in_order_exactly_once(nodes):
    a, b = nodes
    anna, arne, bea = Account(a, "anna"), Account(a, "arne"), Account(b, "bea")

    async def before():
        wa1, wa2, wb = await anna.watcher(), await arne.watcher(), await bea.watcher()
        try:
            room_id = await setup_room(wa1, wb, name="Ausfall")
            assert isinstance(
                await wa1.client.room_invite(room_id, arne.user_id), RoomInviteResponse
            )
            await accept_invite(wa2, room_id)
            await send_text(wa1, room_id, "vor dem Ausfall")
            await wait_for_bodies(wb, room_id, ["vor dem Ausfall"])
            # Bea's client remembers where it is (since token) across the outage.
            return room_id, wb.client.next_batch
        finally:
            await close_all(wa1, wa2, wb)

    room_id, since = run(before(), timeout=300)

    b.stop_checked()
    bodies = [f"Nachricht {i:03d}" for i in range(200)]

    async def during():
        wa1, wa2 = await anna.watcher(), await arne.watcher()
        try:
            for i, body in enumerate(bodies):
                await send_text(wa1 if i % 2 == 0 else wa2, room_id, body)
        finally:
            await close_all(wa1, wa2)

    run(during(), timeout=300)
    b.start()

    async def after():
        wb = await bea.watcher(initial_sync=False)
        wb.client.next_batch = since
        try:
            await _seed_seen(wb, room_id)
            await wait_for_bodies(wb, room_id, bodies, timeout=CATCH_UP_TIMEOUT)
            _assert_exactly_once_in_order(wb, room_id, bodies)
            # And B -> A still works.
            await send_text(wb, room_id, "wieder online")
            wa = await anna.watcher()
            try:
                await wait_for_bodies(wa, room_id, ["wieder online"])
            finally:
                await close_all(wa)
        finally:
            await close_all(wb)

    run(after(), timeout=CATCH_UP_TIMEOUT + 120)


async def _seed_seen(watcher, room_id):
    """The client had seen everything up to "vor dem Ausfall": gap filling stops there."""
    from nio import RoomMessagesResponse

    resp = await watcher.client.room_messages(room_id, start=watcher.client.next_batch, limit=20)
    assert isinstance(resp, RoomMessagesResponse), resp
    for ev in resp.chunk:
        watcher.seen_ids[room_id].add(ev.event_id)


@pytest.mark.timeout(900)
def test_queue_survives_a_restart_of_the_sending_node(nodes):
    a, b = nodes
    anna, bea = Account(a, "anna"), Account(b, "bea")

    async def before():
        wa, wb = await anna.watcher(), await bea.watcher()
        try:
            room_id = await setup_room(wa, wb, name="Neustart")
            return room_id, wb.client.next_batch
        finally:
            await close_all(wa, wb)

    room_id, since = run(before(), timeout=300)
    b.stop_checked()
    bodies = [f"gepuffert {i:02d}" for i in range(30)]

    async def send():
        wa = await anna.watcher()
        try:
            for body in bodies:
                await send_text(wa, room_id, body)
        finally:
            await close_all(wa)

    run(send())
    a.restart()  # the queue for B must come back from A's database
    b.start()

    async def after():
        wb = await bea.watcher(initial_sync=False)
        wb.client.next_batch = since
        try:
            await _seed_seen(wb, room_id)
            await wait_for_bodies(wb, room_id, bodies, timeout=CATCH_UP_TIMEOUT)
            _assert_exactly_once_in_order(wb, room_id, bodies)
        finally:
            await close_all(wb)

    run(after(), timeout=CATCH_UP_TIMEOUT + 60)


def _rotate_keys(node) -> None:
    import subprocess

    from fed_harness import parta_command

    node.stop_checked()
    res = subprocess.run(
        parta_command() + ["node", "keys", "rotate", "-c", node.config_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"parta node keys rotate failed:\n{res.stdout}\n{res.stderr}"
    node.start()


@pytest.mark.timeout(600)
def test_key_rotation_keeps_the_room_working_for_old_and_new_servers(nodes, fed_cluster):  # noqa: F811 - the pytest fixture imported above
    """`parta node keys rotate` on A: the old key moves to old_verify_keys; B (which cached the
    old key) accepts events signed with the new one, and a server joining afterwards, C,
    verifies the room's earlier events (signed with the old key)."""
    import time

    from fed_harness import join_via
    from federation.keys import VerifyKey
    from federation.signing import verify_json

    a, b = nodes
    anna, bea = Account(a, "anna"), Account(b, "bea")

    async def before():
        wa, wb = await anna.watcher(), await bea.watcher()
        try:
            from nio import RoomPreset

            room_id = await setup_room(wa, wb, name="Schlüssel", preset=RoomPreset.public_chat)
            await send_text(wa, room_id, "mit altem Schlüssel")
            await wait_for_bodies(wb, room_id, ["mit altem Schlüssel"])
            return room_id
        finally:
            await close_all(wa, wb)

    room_id = run(before(), timeout=300)
    status, old = a.fed_get("/_matrix/key/v2/server")
    assert status == 200, old
    (old_id,) = old["verify_keys"]

    _rotate_keys(a)
    status, new = a.fed_get("/_matrix/key/v2/server")
    assert status == 200, new
    (new_id,) = new["verify_keys"]
    assert new_id != old_id
    assert new["old_verify_keys"][old_id]["key"] == old["verify_keys"][old_id]["key"]
    assert new["old_verify_keys"][old_id]["expired_ts"] <= time.time() * 1000
    verify_json(new, a.server_name, VerifyKey.decode(new_id, new["verify_keys"][new_id]["key"]))

    (c,) = fed_cluster.create(1)
    carl = Account(c, "carl")

    async def after():
        wa, wb, wc = await anna.watcher(), await bea.watcher(), await carl.watcher()
        try:
            await send_text(wa, room_id, "mit neuem Schlüssel")
            await wait_for_bodies(wb, room_id, ["mit neuem Schlüssel"])
            assert await join_via(wc.client, room_id, [a.server_name]) == room_id
            await send_text(wa, room_id, "hallo Carl")
            await wait_for_bodies(wc, room_id, ["hallo Carl"])
            await send_text(wc, room_id, "hallo zurück")
            await wait_for_bodies(wb, room_id, ["hallo zurück"])
        finally:
            await close_all(wa, wb, wc)

    run(after(), timeout=300)
