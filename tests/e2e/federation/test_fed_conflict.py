"""E2E: concurrent state changes during a partition converge.

Three nodes: A and B are partitioned from each other (each restarted with the other's name
mapped to a dead loopback port via ``federation.server_overrides``); C stays connected to
both and only watches.  During the partition both sides change power levels, membership,
topic and name concurrently.  After healing (restart with the real addresses), every server
reports the same current state - same event for every (type, state_key) - and the room keeps
working for members on all three.

Spec: server-server API "Room State Resolution", rooms v12 "State resolution" (v2.1).
"""

from __future__ import annotations

import pytest
from nio import RoomKickResponse, RoomPutStateResponse

from e2e_helpers import run
from fed_fixtures import fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import (
    Account,
    accept_invite,
    close_all,
    equals,
    room_state,
    send_text,
    wait_for,
    wait_for_bodies,
)

CONVERGE_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def trio(fed_cluster):  # noqa: F811 - the pytest fixture imported above
    return fed_cluster.create(3)


async def _state_ids(w, room_id):
    return {k: e["event_id"] for k, e in (await room_state(w.client, room_id)).items()}


@pytest.mark.timeout(900)
def test_concurrent_changes_during_partition_converge(trio):
    a, b, c = trio
    admin, erin = Account(a, "admin"), Account(a, "erin")
    mod, dave = Account(b, "mod"), Account(b, "dave")
    carl = Account(c, "carl")

    async def setup():
        ws = [await x.watcher() for x in (admin, erin, mod, dave, carl)]
        wadmin, werin, wmod, wdave, wcarl = ws
        try:
            from nio import RoomCreateResponse

            created = await wadmin.client.room_create(
                name="Konflikt",
                topic="Anfang",
                # v12: the creator (admin) has unlimited power and is not listed.
                power_level_override={"users": {mod.user_id: 100}},
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            for guest in (werin, wmod, wdave, wcarl):
                await wadmin.client.room_invite(room_id, guest.user_id)
                await accept_invite(guest, room_id)
            everyone = {x.user_id for x in (admin, erin, mod, dave, carl)}
            from fed_harness import joined_members

            for w in (wadmin, wmod, wcarl):
                await wait_for(
                    lambda w=w: equals(joined_members(w.client, room_id), everyone),
                    what=f"all five joined as seen by {w.user_id}",
                )
            await send_text(wadmin, room_id, "vor der Trennung")
            for w in (wmod, wcarl):
                await wait_for_bodies(w, room_id, ["vor der Trennung"])
            return room_id
        finally:
            await close_all(*ws)

    room_id = run(setup(), timeout=300)

    # Partition A | B (C still reaches both).
    a.partition_from([b])
    b.partition_from([a])

    forks: dict[str, list[str]] = {"topic": [], "pl": []}

    async def side_a():
        w = await admin.watcher()
        try:
            r = await w.client.room_put_state(room_id, "m.room.topic", {"topic": "Thema A"})
            assert isinstance(r, RoomPutStateResponse), r
            forks["topic"].append(r.event_id)
            status_pl = await room_state(w.client, room_id)
            pl = dict(status_pl[("m.room.power_levels", "")]["content"])
            pl["users"] = {**pl.get("users", {}), mod.user_id: 50, erin.user_id: 50}
            r = await w.client.room_put_state(room_id, "m.room.power_levels", pl)
            assert isinstance(r, RoomPutStateResponse), r
            forks["pl"].append(r.event_id)
            r = await w.client.room_kick(room_id, dave.user_id, reason="Partition A")
            assert isinstance(r, RoomKickResponse), r
            await send_text(w, room_id, "während der Trennung A")
        finally:
            await close_all(w)

    async def side_b():
        w = await mod.watcher()
        wd = await dave.watcher()
        try:
            r = await w.client.room_put_state(room_id, "m.room.topic", {"topic": "Thema B"})
            assert isinstance(r, RoomPutStateResponse), r
            forks["topic"].append(r.event_id)
            r = await w.client.room_put_state(room_id, "m.room.name", {"name": "Konflikt B"})
            assert isinstance(r, RoomPutStateResponse), r
            state = await room_state(w.client, room_id)
            pl = dict(state[("m.room.power_levels", "")]["content"])
            pl["users"] = {**pl.get("users", {}), dave.user_id: 50}
            r = await w.client.room_put_state(room_id, "m.room.power_levels", pl)
            assert isinstance(r, RoomPutStateResponse), r
            forks["pl"].append(r.event_id)
            r = await w.client.room_kick(room_id, erin.user_id, reason="Partition B")
            assert isinstance(r, RoomKickResponse), r
            await send_text(wd, room_id, "während der Trennung B (dave)")
        finally:
            await close_all(w, wd)

    run(side_a(), timeout=120)
    run(side_b(), timeout=120)

    # While partitioned, A and B disagree (otherwise the partition did not hold).
    async def disagree():
        wa, wb = await admin.watcher(), await mod.watcher()
        try:
            sa, sb = await room_state(wa.client, room_id), await room_state(wb.client, room_id)
            assert sa[("m.room.topic", "")]["content"]["topic"] == "Thema A"
            assert sb[("m.room.topic", "")]["content"]["topic"] == "Thema B"
        finally:
            await close_all(wa, wb)

    run(disagree())

    a.heal()
    b.heal()

    async def converge():
        ws = [await x.watcher() for x in (admin, mod, carl)]
        try:

            async def same():
                states = [await _state_ids(w, room_id) for w in ws]
                return states[0] == states[1] == states[2]

            await wait_for(
                same,
                timeout=CONVERGE_TIMEOUT,
                interval=2.0,
                what="identical current state on A, B and C",
            )
            state = await room_state(ws[0].client, room_id)
            # The resolution picked one of the two forks' events for each conflicted key.
            assert state[("m.room.topic", "")]["event_id"] in forks["topic"], forks
            assert state[("m.room.power_levels", "")]["event_id"] in forks["pl"], forks
            # After healing, messages from all three servers reach everyone.
            marks = {}
            for w in ws:
                body = f"nach der Heilung {w.user_id}"
                await send_text(w, room_id, body)
                marks[w] = body
            for w in ws:
                await wait_for_bodies(w, room_id, marks.values(), timeout=CONVERGE_TIMEOUT)
            states = [await _state_ids(w, room_id) for w in ws]
            assert states[0] == states[1] == states[2]
        finally:
            await close_all(*ws)

    run(converge(), timeout=2 * CONVERGE_TIMEOUT + 120)
