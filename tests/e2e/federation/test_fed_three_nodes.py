"""E2E: one room across three Parta nodes with DNS-style server names
(``school-a1.fed.test`` ...) that each node maps to a loopback port with
``federation.server_overrides`` (certificates are for those names, signed by the test CA).

Every server's client sees every other server's messages and members; a member on the third
server joined through the second sees history and state consistently.
"""

from __future__ import annotations

import pytest

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import (
    close_all,
    joined_members,
    new_watcher,
    room_state,
    send_text,
    setup_room,
    wait_for,
    wait_for_bodies,
)


@pytest.fixture(scope="module")
def trio(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(3, named=True)


def test_three_node_room(trio):
    a, b, c = trio
    assert all(n.server_name.endswith(".fed.test") for n in trio)

    async def scenario():
        alice = await new_watcher(a, "alice")
        bob = await new_watcher(b, "bob")
        carl = await new_watcher(c, "carl")
        try:
            room_id = await setup_room(alice, bob, carl, name="Stadtelternrat")
            everyone = {alice.user_id, bob.user_id, carl.user_id}
            for w in (alice, bob, carl):
                assert await joined_members(w.client, room_id) == everyone

            said = {alice: "Hallo von A", bob: "Hallo von B", carl: "Hallo von C"}
            for w, body in said.items():
                await send_text(w, room_id, body)
            for w in (alice, bob, carl):
                events = await wait_for_bodies(w, room_id, said.values())
                by_body = {e["content"]["body"]: e["sender"] for e in events}
                assert by_body == {body: s.user_id for s, body in said.items()}

            # Interleaved sends from all three: each server shows each message exactly once.
            bodies = []
            for i in range(5):
                for w in (alice, bob, carl):
                    body = f"{w.user_id.split(':')[0]}-{i}"
                    bodies.append(body)
                    await send_text(w, room_id, body)
            for w in (alice, bob, carl):
                await wait_for_bodies(w, room_id, bodies)
                got = [x for x in w.bodies(room_id) if x in set(bodies)]
                assert sorted(got) == sorted(bodies), f"{w.user_id}: {got}"
                # Each sender's own messages keep their order everywhere.
                for s in (alice, bob, carl):
                    mine = [x for x in got if x.startswith(s.user_id.split(":")[0] + "-")]
                    assert mine == sorted(mine, key=lambda x: int(x.rsplit("-", 1)[1]))

            # The same state on all three servers.
            async def same_state():
                states = [await room_state(w.client, room_id) for w in (alice, bob, carl)]
                ids = [{k: e["event_id"] for k, e in s.items()} for s in states]
                return ids[0] == ids[1] == ids[2]

            await wait_for(same_state, what="identical room state on A, B and C")
        finally:
            await close_all(alice, bob, carl)

    run(scenario(), timeout=300)
