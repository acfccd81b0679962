"""Building blocks of state resolution: auth chains, the auth difference, the conflicted
state subgraph, power events, the two orderings, and the error cases.

Spec: ``content/rooms/fragments/v2-state-res.md`` "Definitions";
``content/rooms/v12.md`` "Conflicted state subgraph".
"""

from __future__ import annotations

import pytest

from federation.events.model import Event
from federation.room_versions import V10, V12
from federation.state_res import StateResolutionError, auth_chain, resolve_state, separate
from federation.state_res.auth_chain import auth_difference, conflicted_subgraph
from federation.state_res.iterative import iterative_auth_checks
from federation.state_res.lookup import EventLookup
from federation.state_res.ordering import (
    Mainline,
    is_power_event,
    mainline_ordering,
    reverse_topological_power_ordering,
)
from stateres_dsl import ALICE, BOB, CHARLIE, CREATE, POWER, TOPIC, Room, member_key
from stateres_scenarios import SCENARIOS


def _ids(*names: str) -> set[str]:
    return {"$" + n for n in names}


# --- auth chains --------------------------------------------------------------------------


def test_auth_chain_follows_auth_events_to_the_create_event():
    room = Room(V10).build()
    # IMB cites CREATE, IPOWER, IJR; those cite IMA and CREATE.
    assert auth_chain(["$IMB"], room.get_event) == _ids("CREATE", "IMA", "IPOWER", "IJR")
    assert auth_chain(["$CREATE"], room.get_event) == set()


def test_auth_chain_in_v12_never_contains_the_create_event():
    room = Room(V12).build()
    assert auth_chain(["$IMB"], room.get_event) == _ids("IMA", "IPOWER", "IJR")


def test_auth_chain_of_several_events_is_the_union_without_the_events_themselves():
    room = Room(V10).build()
    assert auth_chain(["$IMB", "$IMC"], room.get_event) == _ids("CREATE", "IMA", "IPOWER", "IJR")
    # IJR is given but is also in IMB's chain.
    assert "$IJR" in auth_chain(["$IMB", "$IJR"], room.get_event)
    assert "$IMB" not in auth_chain(["$IMB", "$IJR"], room.get_event)


def test_auth_chain_skips_missing_events():
    room = Room(V10).build()
    hidden = {"$IPOWER"}
    chain = auth_chain(["$IMB"], lambda e: None if e in hidden else room.get_event(e))
    assert chain == _ids("CREATE", "IMA", "IJR")


# --- unconflicted / conflicted, auth difference, conflicted subgraph ---------------------


def test_separate_treats_a_key_missing_from_one_set_as_conflicted():
    a = {("t", ""): "$1", ("u", ""): "$2", ("v", ""): "$3"}
    b = {("t", ""): "$1", ("u", ""): "$4"}
    unconflicted, conflicted = separate([a, b])
    assert unconflicted == {("t", ""): "$1"}
    assert conflicted == {("u", ""): {"$2", "$4"}, ("v", ""): {"$3"}}


@pytest.mark.parametrize("rv", [V10, V12], ids=["v10", "v12"])
def test_auth_difference_is_what_only_some_chains_contain(rv):
    scenario = SCENARIOS["offtopic_pl"](rv)
    lookup = EventLookup(scenario.room.get_event)
    sets = [set(s.values()) for s in scenario.state_sets]
    # PC and PB are only behind the PC fork; PA is cited by PB so it is in both.
    assert auth_difference(sets, lookup) == _ids("PB", "PC")


def test_auth_difference_of_identical_sets_is_empty():
    room = Room(V10).build()
    s = set(room.state_at("START").values())
    assert auth_difference([s, set(s)], EventLookup(room.get_event)) == set()


@pytest.mark.parametrize("rv", [V10, V12], ids=["v10", "v12"])
def test_conflicted_subgraph_contains_the_events_between_conflicted_events(rv):
    scenario = SCENARIOS["power_levels_chain"](rv)
    lookup = EventLookup(scenario.room.get_event)
    # Paths from PL2 to IPOWER: PL2 -> PL1 -> IPOWER, and through Bob's join
    # PL2 -> IMB -> IPOWER, PL2 -> IMB -> IJR -> IPOWER.  IMA and CREATE are reachable
    # but lead to no conflicted event.
    assert conflicted_subgraph(_ids("PL2", "IPOWER"), lookup) == _ids(
        "PL2", "PL1", "IMB", "IJR", "IPOWER"
    )
    # A single conflicted event has no path to another one.
    assert conflicted_subgraph(_ids("PL2"), lookup) == _ids("PL2")
    # TC adds TC -> IMC (Charlie's join) -> IPOWER / IJR.
    assert conflicted_subgraph(_ids("TC", "IPOWER"), lookup) == _ids(
        "TC", "PL2", "PL1", "IMB", "IMC", "IJR", "IPOWER"
    )
    # Between TC and PL1 only: IMB, IMC, IJR lead to neither.
    assert conflicted_subgraph(_ids("TC", "PL1"), lookup) == _ids("TC", "PL2", "PL1")


# --- power events ---------------------------------------------------------------------------


def test_power_events():
    room = Room(V10)
    room.member("KICK", ALICE, BOB, "leave")
    room.member("BAN", ALICE, CHARLIE, "ban")
    room.member("LEAVE", BOB, BOB, "leave")
    room.topic("T", ALICE)
    room.chain("START -> KICK -> BAN -> T", "START -> LEAVE")
    room.build()
    ev = room.events
    power = {n for n in ("IPOWER", "IJR", "KICK", "BAN") if is_power_event(ev["$" + n])}
    assert power == {"IPOWER", "IJR", "KICK", "BAN"}
    for name in ("CREATE", "IMA", "IMB", "LEAVE", "T", "START"):
        assert not is_power_event(ev["$" + name]), name


# --- reverse topological power ordering -----------------------------------------------------


def _bare(event_id: str, ts: int, auth: list[str] = ()) -> Event:
    return Event(
        {
            "type": "m.room.power_levels",
            "state_key": "",
            "sender": ALICE,
            "room_id": "!r:a.test",
            "content": {},
            "origin_server_ts": ts,
            "auth_events": list(auth),
            "prev_events": [],
            "depth": 1,
        },
        V10,
        event_id=event_id,
    )


def _order(events: list[Event], powers: dict[str, int]) -> list[str]:
    by_id = {e.event_id: e for e in events}
    return reverse_topological_power_ordering(by_id, EventLookup(by_id.get), powers.get)


def test_power_ordering_ties_break_on_power_then_timestamp_then_event_id():
    events = [_bare("$a", 20), _bare("$b", 30), _bare("$c", 10), _bare("$d", 20), _bare("$e", 20)]
    powers = {"$a": 50, "$b": 100, "$c": 50, "$d": 50, "$e": 0}
    # b (100) first; then the 50s by ts: c (10), then a and d (20) by ID; e (0) last.
    assert _order(events, powers) == ["$b", "$c", "$a", "$d", "$e"]


def test_power_ordering_puts_auth_events_first_regardless_of_power():
    events = [_bare("$low", 1), _bare("$high", 2, auth=["$low"]), _bare("$mid", 3)]
    powers = {"$low": 0, "$high": 100, "$mid": 50}
    assert _order(events, powers) == ["$mid", "$low", "$high"]


def test_power_ordering_treats_infinite_power_as_highest():
    events = [_bare("$creator", 9), _bare("$admin", 1)]
    assert _order(events, {"$creator": float("inf"), "$admin": 100}) == ["$creator", "$admin"]


def test_power_ordering_ignores_auth_events_outside_the_set():
    events = [_bare("$x", 5, auth=["$outside"]), _bare("$y", 4)]
    assert _order(events, {"$x": 0, "$y": 0}) == ["$y", "$x"]


def test_power_ordering_refuses_a_cycle():
    events = [_bare("$p", 1, auth=["$q"]), _bare("$q", 2, auth=["$p"])]
    with pytest.raises(StateResolutionError):
        _order(events, {"$p": 0, "$q": 0})


# --- mainline ordering --------------------------------------------------------------------


def test_mainline_positions():
    scenario = SCENARIOS["mainline_sort"](V10)
    lookup = EventLookup(scenario.room.get_event)
    mainline = Mainline("$PA2", lookup)
    assert mainline.event_ids == ["$PA2", "$PA1", "$IPOWER"]
    assert mainline.position("$T3") == 0  # cites PA2
    assert mainline.position("$T2") == 1  # cites PA1
    assert mainline.position("$T4") == 1  # cites PB, which cites PA1
    assert mainline.position("$T1") == 2  # cites IPOWER
    assert mainline.position("$PA2") == 1  # e itself is not in its own list
    assert mainline.position("$IMA") == float("inf")  # cites no power levels


def test_mainline_ordering_earlier_mainline_first_then_timestamp():
    scenario = SCENARIOS["mainline_sort"](V10)
    lookup = EventLookup(scenario.room.get_event)
    ids = ["$T3", "$T4", "$T2", "$T1", "$IMA"]
    assert mainline_ordering(ids, "$PA2", lookup) == ["$IMA", "$T1", "$T2", "$T4", "$T3"]
    # Without a power levels event all positions are equal: timestamp order.
    assert mainline_ordering(ids, None, lookup) == ["$IMA", "$T1", "$T2", "$T3", "$T4"]


# --- resolve_state edge cases and errors ---------------------------------------------------


def test_no_state_sets_resolve_to_empty_state():
    assert resolve_state(V10, [], lambda e: None) == {}


def test_unconflicted_sets_need_no_event_lookups():
    def no_lookups(event_id):
        raise AssertionError("looked up " + event_id)

    s = {CREATE: "$CREATE", POWER: "$IPOWER"}
    assert resolve_state(V12, [s], no_lookups) == s
    assert resolve_state(V12, [s, dict(s), dict(s)], no_lookups) == s


def test_inputs_are_not_modified():
    scenario = SCENARIOS["ban_vs_pl"](V10)
    before = [dict(s) for s in scenario.state_sets]
    scenario.room.resolve(scenario.state_sets)
    assert scenario.state_sets == before


def test_missing_conflicted_event_is_an_error():
    scenario = SCENARIOS["topic_basic"](V10)
    room = scenario.room
    with pytest.raises(StateResolutionError, match=r"\$T3"):
        resolve_state(V10, scenario.state_sets, lambda e: None if e == "$T3" else room.get_event(e))


def test_missing_create_event_is_an_error_in_v12():
    scenario = SCENARIOS["topic_basic"](V12)
    room = scenario.room
    with pytest.raises(StateResolutionError, match="create"):
        resolve_state(
            V12, scenario.state_sets, lambda e: None if e == "$CREATE" else room.get_event(e)
        )


def test_missing_auth_chain_event_is_skipped():
    # PB is only in the auth difference.  Without it PC cannot be authorised (Charlie's
    # power came from PB), and PA is the best the algorithm can do.
    scenario = SCENARIOS["offtopic_pl"](V10)
    room = scenario.room
    resolved = resolve_state(
        V10, scenario.state_sets, lambda e: None if e == "$PB" else room.get_event(e)
    )
    assert resolved[POWER] == "$PA"


def test_state_set_with_event_under_wrong_key_is_an_error():
    scenario = SCENARIOS["topic_basic"](V10)
    broken = dict(scenario.state_sets[0])
    broken[member_key(BOB)] = "$T2"
    with pytest.raises(StateResolutionError, match="not such a state event"):
        scenario.room.resolve([broken, scenario.state_sets[1]])


def test_event_from_another_room_is_an_error():
    scenario = SCENARIOS["topic_basic"](V10)
    room = scenario.room
    t3 = room.events["$T3"]
    foreign = Event(dict(t3.pdu, room_id="!other:a.test"), V10, event_id="$T3")
    with pytest.raises(StateResolutionError, match="other"):
        resolve_state(
            V10, scenario.state_sets, lambda e: foreign if e == "$T3" else room.get_event(e)
        )


def test_state_sets_with_different_create_events_are_an_error():
    scenario = SCENARIOS["topic_basic"](V10)
    other = dict(scenario.state_sets[1], **{})
    other[CREATE] = "$IMA"
    with pytest.raises(StateResolutionError):
        scenario.room.resolve([scenario.state_sets[0], other])


def test_iterative_auth_checks_fall_back_to_unrejected_auth_events_only():
    # T2 (Bob's topic) cites PA, where Bob has 50.  Checked from an empty state, the
    # power levels come from T2's auth events -- unless PA was rejected: then there are
    # none, Bob has the default 0 and may not set the topic.
    scenario = SCENARIOS["topic_reset"](V10)
    room = scenario.room
    lookup = EventLookup(room.get_event)
    create = room.events["$CREATE"]
    assert iterative_auth_checks({}, ["$T2"], lookup, create) == {TOPIC: "$T2"}
    room.events["$PA"].rejected_reason = "auth_error"
    assert iterative_auth_checks({}, ["$T2"], lookup, create) == {}
    # A key present in the state wins over the auth events: with PA in the state it
    # is used (state events are not filtered by rejection).
    assert iterative_auth_checks({POWER: "$PA"}, ["$T2"], lookup, create)[TOPIC] == "$T2"


def test_iterative_auth_checks_prefer_the_state_over_auth_events():
    # Bob's topic T2 cites his join IMB; in a state where he is banned it fails.
    scenario = SCENARIOS["topic_reset"](V10)
    lookup = EventLookup(scenario.room.get_event)
    create = scenario.room.events["$CREATE"]
    assert iterative_auth_checks({member_key(BOB): "$MB"}, ["$T2"], lookup, create) == {
        member_key(BOB): "$MB"
    }


def test_iterative_auth_checks_need_the_create_event_in_v12():
    # v12 events never cite the create event; the caller must supply it.
    scenario = SCENARIOS["topic_reset"](V12)
    lookup = EventLookup(scenario.room.get_event)
    assert iterative_auth_checks({}, ["$T1"], lookup, None) == {}
    create = scenario.room.events["$CREATE"]
    assert iterative_auth_checks({}, ["$T1"], lookup, create) == {TOPIC: "$T1"}
