"""Properties of state resolution over randomly forked rooms (hypothesis).

Spec: ``content/rooms/fragments/v2-state-res.md`` -- the resolution is a function of the
*set* of states (no order), step 5 keeps the unconflicted state map, and a single state
has nothing to resolve.  The rooms come from a seeded generator: random topic, power
level, membership and join rule events by random users on two to four forks that merge
now and then (events need not be authorised: the algorithm must cope with those too).
"""

from __future__ import annotations

import itertools
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from federation.room_versions import V10, V12, RoomVersion
from stateres_dsl import ALICE, BOB, CHARLIE, EVELYN, FIONA, ZARA, Room

USERS = [ALICE, BOB, CHARLIE, ZARA, EVELYN, FIONA]
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def random_room(
    rv: RoomVersion, seed: int, n_events: int = 30, n_forks: int = 3
) -> tuple[Room, list[dict]]:
    rng = Random(seed)
    room = Room(rv)
    tips = ["START"] * n_forks
    for i in range(n_events):
        fork = rng.randrange(n_forks)
        name = f"E{i}"
        kind = rng.choice(["topic", "topic", "power", "join", "leave", "kick", "ban", "join_rules"])
        sender = rng.choice(USERS)
        target = rng.choice(USERS)
        if kind == "topic":
            room.topic(name, sender, valid=False)
        elif kind == "power":
            room.power(
                name,
                rng.choice([ALICE, ALICE, BOB]),
                {ALICE: 100, BOB: rng.choice([0, 50, 100]), CHARLIE: rng.choice([0, 50])},
                valid=False,
            )
        elif kind in ("join", "leave"):
            room.member(name, sender, sender, kind, valid=False)
        elif kind in ("kick", "ban"):
            room.member(
                name,
                rng.choice([ALICE, BOB]),
                target,
                "leave" if kind == "kick" else "ban",
                valid=False,
            )
        else:
            room.join_rules(name, ALICE, rng.choice(["public", "invite"]), valid=False)
        prevs = [tips[fork]]
        other = rng.randrange(n_forks)
        if rng.random() < 0.25 and tips[other] not in prevs:
            prevs.append(tips[other])  # a merge
        for prev in prevs:
            room.chain(f"{prev} -> {name}")
        tips[fork] = name
    room.build()
    return room, [room.state_at(t) for t in dict.fromkeys(tips)]


versions = st.sampled_from([V10, V12])
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@PROPERTY_SETTINGS
@given(rv=versions, seed=seeds)
def test_resolution_does_not_depend_on_the_order_of_state_sets(rv, seed):
    room, sets = random_room(rv, seed)
    results = [room.resolve(list(p)) for p in itertools.permutations(sets)]
    assert all(r == results[0] for r in results)


@PROPERTY_SETTINGS
@given(rv=versions, seed=seeds)
def test_resolution_is_deterministic_across_fresh_event_objects(rv, seed):
    room_a, sets_a = random_room(rv, seed)
    room_b, sets_b = random_room(rv, seed)
    # Every intermediate merge came out the same, and so does the final one.
    assert room_a.state_after == room_b.state_after
    assert room_a.resolve(sets_a) == room_b.resolve(sets_b)


@PROPERTY_SETTINGS
@given(rv=versions, seed=seeds)
def test_single_and_duplicated_state_sets_are_returned_unchanged(rv, seed):
    room, sets = random_room(rv, seed)
    for state in sets:
        assert room.resolve([state]) == state
        assert room.resolve([state, dict(state)]) == state


@PROPERTY_SETTINGS
@given(rv=versions, seed=seeds)
def test_unconflicted_keys_pass_through(rv, seed):
    room, sets = random_room(rv, seed)
    resolved = room.resolve(sets)
    for key in set().union(*sets):
        values = {s.get(key) for s in sets}
        if len(values) == 1 and None not in values:
            assert resolved[key] == values.pop(), key


@PROPERTY_SETTINGS
@given(rv=versions, seed=seeds)
def test_resolved_state_is_well_formed(rv, seed):
    room, sets = random_room(rv, seed)
    resolved = room.resolve(sets)
    for key, event_id in resolved.items():
        event = room.events[event_id]
        assert event.is_state and event.key == key
    # The create event never goes anywhere.
    assert resolved[("m.room.create", "")] == "$CREATE"


@PROPERTY_SETTINGS
@given(rv=versions, seed=seeds)
def test_resolving_with_a_state_already_included_changes_nothing(rv, seed):
    # R = resolve(S1..Sn); resolving S1..Sn once more with a copy of one of the inputs
    # is the same resolution (state sets are a set).
    room, sets = random_room(rv, seed)
    assert room.resolve(sets + [dict(sets[0])]) == room.resolve(sets)
