"""State resolution over a room of a few thousand events.

Spec: ``content/rooms/fragments/v2-state-res.md``.  A school-sized room: 2000 members
join in a line; then a moderator (Bob) kicks 200 of them on one fork while the admin
(Alice) demotes him, 300 more people join and 100 leave on the other.  The demotion is a
higher-power event than every kick, so it is replayed first and all the kicks fail.
Correctness is asserted; no timing is (the suite's timeout catches a quadratic blow-up).
"""

from __future__ import annotations

import pytest

from federation.auth.selection import auth_types_for_event
from federation.events.model import Event
from federation.room_versions import V10, V12, RoomVersion
from federation.state_res import auth_chain, resolve_state

ALICE, BOB = "@alice:a.test", "@bob:b.test"
N_MEMBERS, N_KICKS, N_NEW, N_LEAVES = 2000, 200, 300, 100


class Builder:
    """Linear forks; each keeps its current state and tip, events are built on them."""

    def __init__(self, rv: RoomVersion) -> None:
        self.rv = rv
        self.v12 = rv.event_format.room_id_is_create_event_hash
        self.events: dict[str, Event] = {}
        self.ts = 0

    def add(
        self,
        state: dict,
        prevs: list[str],
        name: str,
        type: str,
        sender: str,
        content: dict,
        state_key: str | None = None,
    ) -> str:
        self.ts += 1
        pdu = {
            "type": type,
            "sender": sender,
            "content": content,
            "origin_server_ts": self.ts,
            "prev_events": prevs,
            "depth": self.ts,
            "auth_events": [],
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        if not (self.v12 and type == "m.room.create"):
            pdu["room_id"] = "!CREATE" if self.v12 else "!big:a.test"
        if type != "m.room.create":
            keys = auth_types_for_event(self.rv, type, sender, state_key, content)
            pdu["auth_events"] = [state[k] for k in keys if k in state]
        event = Event(pdu, self.rv, event_id="$" + name)
        self.events[event.event_id] = event
        if state_key is not None:
            state[(type, state_key)] = event.event_id
        return event.event_id


def user(i: int) -> str:
    return f"@u{i}:s{i % 7}.test"


def build_room(rv: RoomVersion):
    b = Builder(rv)
    state: dict = {}
    tip = b.add(
        state,
        [],
        "CREATE",
        "m.room.create",
        ALICE,
        {"room_version": rv.identifier, "creator": ALICE},
        "",
    )
    admins = {} if b.v12 else {ALICE: 100}

    def step(st, prev, *args, **kw):
        return b.add(st, [prev], *args, **kw)

    tip = step(state, tip, "IMA", "m.room.member", ALICE, {"membership": "join"}, ALICE)
    tip = step(state, tip, "PA", "m.room.power_levels", ALICE, {"users": {**admins, BOB: 50}}, "")
    tip = step(state, tip, "JR", "m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    tip = step(state, tip, "IMB", "m.room.member", BOB, {"membership": "join"}, BOB)
    for i in range(N_MEMBERS):
        tip = step(state, tip, f"J{i}", "m.room.member", user(i), {"membership": "join"}, user(i))
    fork_a, tip_a = dict(state), tip
    for i in range(N_KICKS):
        tip_a = step(
            fork_a, tip_a, f"K{i}", "m.room.member", BOB, {"membership": "leave"}, user(i * 7)
        )
    tip_a = step(fork_a, tip_a, "TB", "m.room.topic", BOB, {"topic": "Bob's room"}, "")
    fork_b, tip_b = dict(state), tip
    tip_b = step(fork_b, tip_b, "PD", "m.room.power_levels", ALICE, {"users": admins}, "")
    for i in range(N_NEW):
        u = user(N_MEMBERS + i)
        tip_b = step(fork_b, tip_b, f"N{i}", "m.room.member", u, {"membership": "join"}, u)
    for i in range(N_LEAVES):
        u = user(i * 13 + 1)
        tip_b = step(fork_b, tip_b, f"L{i}", "m.room.member", u, {"membership": "leave"}, u)
    return b, state, fork_a, fork_b


@pytest.mark.parametrize("rv", [V10, V12], ids=["v10", "v12"])
def test_large_room_demotion_beats_two_hundred_kicks(rv):
    b, common, fork_a, fork_b = build_room(rv)
    assert len(b.events) > 2500
    lookups = []

    def get_event(event_id):
        lookups.append(event_id)
        return b.events.get(event_id)

    resolved = resolve_state(rv, [fork_a, fork_b], get_event)

    assert resolved[("m.room.power_levels", "")] == "$PD"
    assert ("m.room.topic", "") not in resolved  # Bob was at 0 by then
    # Every kicked member is still joined (their join event), the new members joined
    # and the leavers left.
    expected = dict(fork_b)
    assert resolved == expected
    # Each event is fetched from the caller at most once per resolution.
    assert len(lookups) == len(set(lookups))


def test_large_room_auth_chain():
    b, common, _, _ = build_room(V12)
    chain = auth_chain([common[("m.room.member", user(N_MEMBERS - 1))]], b.events.get)
    # A member's join cites PA, JR (and no previous membership): PA -> IMA, JR -> PA, IMA.
    assert chain == {"$PA", "$JR", "$IMA"}
    everything = auth_chain(set(common.values()), b.events.get)
    assert everything == {"$PA", "$JR", "$IMA"}
