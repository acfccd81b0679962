"""Named state resolution scenarios (``stateres_scenarios.py``) in room versions 10 and 12.

Spec: ``content/rooms/fragments/v2-state-res.md`` and ``content/rooms/v12.md``
"State resolution".
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from federation.room_versions import V10, V11, V12, StateResAlgorithm
from stateres_dsl import JOIN_RULES, POWER, Room
from stateres_scenarios import ALGORITHM_DEPENDENT, SCENARIOS

VERSIONS = [V10, V12]
V10_WITH_V2_1 = replace(V10, state_res=replace(V10.state_res, algorithm=StateResAlgorithm.V2_1))
V12_WITH_V2 = replace(V12, state_res=replace(V12.state_res, algorithm=StateResAlgorithm.V2))


def _diff(got: dict, expected: dict) -> dict:
    g, e = Room.names(got), Room.names(expected)
    return {k: (g.get(k), e.get(k)) for k in sorted(set(g) | set(e)) if g.get(k) != e.get(k)}


@pytest.mark.parametrize("rv", VERSIONS, ids=lambda v: f"v{v.identifier}")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_resolves_to_expected_state(name, rv):
    scenario = SCENARIOS[name](rv)
    resolved = scenario.room.resolve(scenario.state_sets)
    assert _diff(resolved, scenario.expected) == {}


@pytest.mark.parametrize("rv", VERSIONS, ids=lambda v: f"v{v.identifier}")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_is_independent_of_state_set_order(name, rv):
    scenario = SCENARIOS[name](rv)
    results = [
        Room.names(scenario.room.resolve(list(perm)))
        for perm in itertools.permutations(scenario.state_sets)
    ]
    assert all(r == results[0] for r in results)


@pytest.mark.parametrize("rv", VERSIONS, ids=lambda v: f"v{v.identifier}")
@pytest.mark.parametrize("name", [n for n in SCENARIOS if n not in ALGORITHM_DEPENDENT])
def test_merge_event_was_built_on_the_resolved_state(name, rv):
    # The DSL derives END's auth events from the resolved state: END must cite the
    # resolved power levels and its sender's resolved membership.
    scenario = SCENARIOS[name](rv)
    room = scenario.room
    assert room.state_before[scenario.tip] == scenario.expected
    end = room.events["$" + scenario.tip]
    assert scenario.expected[POWER] in end.auth_event_ids


def test_creator_power_decides_the_order_in_v12_only():
    # The same scenario under both algorithms: the difference is the creator's power.
    v10 = SCENARIOS["creator_power_ordering"](V10)
    v12 = SCENARIOS["creator_power_ordering"](V12)
    assert v10.room.resolve(v10.state_sets)[JOIN_RULES] == "$JA"
    assert v12.room.resolve(v12.state_sets)[JOIN_RULES] == "$JB"
    assert v12.room.resolve(v12.state_sets, V12_WITH_V2)[JOIN_RULES] == "$JB"
    assert v10.room.resolve(v10.state_sets, V10_WITH_V2_1)[JOIN_RULES] == "$JA"


def test_scenarios_run_in_room_version_11_like_10():
    # v11 changes only the creator rules and redaction; the algorithm is v2.
    for name in SCENARIOS:
        s10, s11 = SCENARIOS[name](V10), SCENARIOS[name](V11)
        assert Room.names(s11.room.resolve(s11.state_sets)) == Room.names(
            s10.room.resolve(s10.state_sets)
        ), name


# --- v2 against v2.1 on the very same events -------------------------------------------------


def test_problem_a_join_rules_lost_in_v2_kept_in_v2_1():
    for events_rv in (V10, V12):
        scenario = SCENARIOS["join_rules_after_creator_left"](events_rv)
        room = scenario.room
        v2 = room.resolve(scenario.state_sets, V12_WITH_V2 if events_rv is V12 else V10)
        v21 = room.resolve(scenario.state_sets, V12 if events_rv is V12 else V10_WITH_V2_1)
        assert JOIN_RULES not in v2, events_rv
        assert v21[JOIN_RULES] == "$JR2", events_rv
        # Everything else agrees.
        assert {k: v for k, v in v21.items() if k != JOIN_RULES} == v2


def test_problem_b_power_levels_reset_in_v2_kept_in_v2_1():
    for events_rv in (V10, V12):
        scenario = SCENARIOS["power_levels_chain"](events_rv)
        room = scenario.room
        v2 = room.resolve(scenario.state_sets, V12_WITH_V2 if events_rv is V12 else V10)
        v21 = room.resolve(scenario.state_sets, V12 if events_rv is V12 else V10_WITH_V2_1)
        assert v2[POWER] == "$IPOWER", events_rv
        assert v21[POWER] == "$PL2", events_rv


def test_problem_b_needs_the_conflicted_subgraph(monkeypatch):
    # Without the subgraph (PL1 is in every auth chain, so not in the auth difference)
    # v2.1's empty start alone does not save PL2: the subgraph is what replays PL1.
    import federation.state_res.v2 as v2_module

    scenario = SCENARIOS["power_levels_chain"](V12)
    monkeypatch.setattr(v2_module, "conflicted_subgraph", lambda conflicted, lookup: set())
    assert scenario.room.resolve(scenario.state_sets)[POWER] == "$IPOWER"


def test_mainline_sort_is_what_makes_t3_win(monkeypatch):
    # With a plain timestamp order instead of the mainline ordering, T4 (later) wins.
    import federation.state_res.v2 as v2_module
    from federation.state_res.ordering import origin_ts

    scenario = SCENARIOS["mainline_sort"](V10)
    room = scenario.room
    assert room.resolve(scenario.state_sets)[("m.room.topic", "")] == "$T3"
    monkeypatch.setattr(
        v2_module,
        "mainline_ordering",
        lambda ids, pl, lookup: sorted(ids, key=lambda e: (origin_ts(lookup.get(e)), e)),
    )
    assert room.resolve(scenario.state_sets)[("m.room.topic", "")] == "$T4"
