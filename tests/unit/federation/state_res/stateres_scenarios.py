"""Named state resolution scenarios with their expected resolved state.

Each scenario is a function ``(room_version) -> Scenario``.  Most build a forked room with
the DSL and resolve the states after END's prev events; the v2.1 ones resolve explicit
state sets where one set carries an outdated event (as a faulty or partial ``/state``
answer would), the situations room version 12's algorithm was changed for (MSC4297,
"Problem A" and "Problem B").  The reasoning behind every expectation is written next
to it, step by step after the spec's algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from federation.room_versions import RoomVersion
from stateres_dsl import (
    ALICE,
    BOB,
    CHARLIE,
    EVELYN,
    FIONA,
    JOIN_RULES,
    POWER,
    TOPIC,
    ZARA,
    Room,
    member_key,
)


@dataclass
class Scenario:
    name: str
    room: Room
    state_sets: list[dict]
    expected: dict  # the full expected resolved state (event IDs)
    tip: str | None = None  # the merge event whose state is resolved, if any


def _at_end(name: str, room: Room, overrides: dict) -> Scenario:
    """Resolve the states after END's prev events; expect START's state + overrides."""
    room.build()
    prevs = room.defs["END"].prevs
    return Scenario(
        name,
        room,
        [room.state_at(p) for p in prevs],
        room.with_overrides(room.state_at("START"), overrides),
        tip="END",
    )


def ban_vs_pl(rv: RoomVersion) -> Scenario:
    """Alice bans Bob while Bob (a moderator) re-sends the power levels.

    Power events PA, PB, MB plus the conflicted IMA, MA, IMB from their auth chains are
    ordered IMA, PA, MA, IMB, MB (Alice, 100) before PB (Bob, 50); MB bans Bob, so PB
    (Bob no longer joined) fails.
    """
    room = Room(rv)
    room.power("PA", ALICE, {ALICE: 100, BOB: 50})
    room.member("MA", ALICE, ALICE, "join")
    room.member("MB", ALICE, BOB, "ban")
    room.power("PB", BOB, {ALICE: 100, BOB: 50})
    room.message("END", ALICE)
    room.chain("START -> PA -> MA -> MB -> END", "PA -> PB -> END")
    return _at_end("ban_vs_pl", room, {POWER: "PA", member_key(ALICE): "MA", member_key(BOB): "MB"})


def topic_basic(rv: RoomVersion) -> Scenario:
    """Alice demotes Bob (PA2) while Bob re-sends PL (PB) and sets the topic (T3).

    PA2 (Alice) sorts before PB (Bob) and demotes him, so PB fails.  T2 and T3 both
    have mainline position 1 (PA1), T2 is older; T3 fails as Bob is at 0.
    """
    room = Room(rv)
    room.topic("T1", ALICE)
    room.power("PA1", ALICE, {ALICE: 100, BOB: 50})
    room.topic("T2", ALICE)
    room.power("PA2", ALICE, {ALICE: 100, BOB: 0})
    room.power("PB", BOB, {ALICE: 100, BOB: 50})
    room.topic("T3", BOB)
    room.message("END", ALICE)
    room.chain("START -> T1 -> PA1 -> T2 -> PA2 -> END", "PA1 -> PB -> T3 -> END")
    return _at_end("topic_basic", room, {POWER: "PA2", TOPIC: "T2"})


def topic_reset(rv: RoomVersion) -> Scenario:
    """Bob changes the topic (T2) while Alice bans him (MB): the topic resets to T1.

    MB (with IMB from its auth chain) is applied first; then T1 (mainline position 1,
    or ∞ in v2.1 where PA is not replayed) and T2; T2 fails because Bob is banned.
    """
    room = Room(rv)
    room.topic("T1", ALICE)
    room.power("PA", ALICE, {ALICE: 100, BOB: 50})
    room.topic("T2", BOB)
    room.member("MB", ALICE, BOB, "ban")
    room.message("END", ALICE)
    room.chain("START -> T1 -> PA -> T2 -> END", "PA -> MB -> END")
    return _at_end("topic_reset", room, {TOPIC: "T1", POWER: "PA", member_key(BOB): "MB"})


def topic(rv: RoomVersion) -> Scenario:
    """topic_basic's forks merge at MZ1 (-> PA2, T2); Alice then sets T4, the final topic."""
    room = Room(rv)
    room.topic("T1", ALICE)
    room.power("PA1", ALICE, {ALICE: 100, BOB: 50})
    room.topic("T2", ALICE)
    room.power("PA2", ALICE, {ALICE: 100, BOB: 0})
    room.power("PB", BOB, {ALICE: 100, BOB: 50})
    room.topic("T3", BOB)
    room.message("MZ1", ZARA)
    room.topic("T4", ALICE)
    room.message("END", ALICE)
    room.chain("START -> T1 -> PA1 -> T2 -> PA2 -> MZ1 -> T4 -> END", "PA1 -> PB -> T3 -> MZ1")
    scenario = _at_end("topic", room, {POWER: "PA2", TOPIC: "T4"})
    return scenario


def mainline_sort(rv: RoomVersion) -> Scenario:
    """The mainline, not the timestamp, orders T3 (newer mainline) after T4.

    PA2 raises the PL-event level to 100, so Bob's PB fails.  Mainline of PA2 is
    [PA2, PA1, IPOWER]: T3 cites PA2 (position 0), T4 cites PB -> PA1 (position 1), so
    T4 is applied first although it is later in time, and T3 wins.
    """
    room = Room(rv)
    room.topic("T1", ALICE)
    room.power("PA1", ALICE, {ALICE: 100, BOB: 50})
    room.topic("T2", ALICE)
    room.power("PA2", ALICE, {ALICE: 100, BOB: 50}, extra={"events": {"m.room.power_levels": 100}})
    room.power("PB", BOB, {ALICE: 100, BOB: 50})
    room.topic("T3", ALICE)
    room.topic("T4", ALICE)
    room.message("END", ALICE)
    room.chain("START -> T1 -> PA1 -> T2 -> PA2 -> T3 -> END", "PA1 -> PB -> T4 -> END")
    return _at_end("mainline_sort", room, {POWER: "PA2", TOPIC: "T3"})


def join_rules_race(rv: RoomVersion) -> Scenario:
    """Evelyn joins a public room while Alice makes it invite-only: the join fails.

    IJR and JR are power events, applied first (by timestamp); Evelyn's join is then
    checked against ``invite`` and rejected, so she is not in the resolved state.
    """
    room = Room(rv)
    room.join_rules("JR", ALICE, "invite")
    room.member("ME", EVELYN, EVELYN, "join")
    room.message("END", ALICE)
    room.chain("START -> JR -> END", "START -> ME -> END")
    return _at_end("join_rules_race", room, {JOIN_RULES: "JR"})


def offtopic_pl(rv: RoomVersion) -> Scenario:
    """A fork that is just an older state (PA) against PA -> PB -> PC: PC stands.

    The auth difference pulls in PB; PA, PB, PC are replayed in auth order and each is
    allowed (Bob grants Charlie 50, Charlie lowers himself to 0).
    """
    room = Room(rv)
    room.power("PA", ALICE, {ALICE: 100, BOB: 50})
    room.power("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50})
    room.power("PC", CHARLIE, {ALICE: 100, BOB: 50, CHARLIE: 0})
    room.message("END", ALICE)
    room.chain("START -> PA -> PB -> PC -> END", "PA -> END")
    return _at_end("offtopic_pl", room, {POWER: "PC"})


def concurrent_joins_leaves(rv: RoomVersion) -> Scenario:
    """Joins, a leave and a kick on two forks do not interfere: all of them stand.

    Only the kick KZ is a power event (with IMZ from its auth chain); the joins ME, MF,
    the self-leave LC and IMC follow in timestamp order, each allowed.
    """
    room = Room(rv)
    room.member("ME", EVELYN, EVELYN, "join")
    room.member("LC", CHARLIE, CHARLIE, "leave")
    room.member("MF", FIONA, FIONA, "join")
    room.member("KZ", ALICE, ZARA, "leave")
    room.message("END", ALICE)
    room.chain("START -> ME -> LC -> END", "START -> MF -> KZ -> END")
    return _at_end(
        "concurrent_joins_leaves",
        room,
        {
            member_key(EVELYN): "ME",
            member_key(CHARLIE): "LC",
            member_key(FIONA): "MF",
            member_key(ZARA): "KZ",
        },
    )


def ban_vs_rejoin(rv: RoomVersion) -> Scenario:
    """Alice bans Evelyn while Evelyn leaves and re-joins: the ban stands.

    The ban is a power event and goes first; Evelyn's own leave and re-join (not power
    events) then fail against the ban.
    """
    room = Room(rv)
    room.member("ME", EVELYN, EVELYN, "join")
    room.member("BE", ALICE, EVELYN, "ban")
    room.member("LE", EVELYN, EVELYN, "leave")
    room.member("JE", EVELYN, EVELYN, "join")
    room.message("END", ALICE)
    room.chain("START -> ME -> BE -> END", "ME -> LE -> JE -> END")
    return _at_end("ban_vs_rejoin", room, {member_key(EVELYN): "BE"})


def power_level_reversion(rv: RoomVersion) -> Scenario:
    """Alice takes Bob's moderator rights back (PR) while Bob promotes Charlie (PB), who
    sets a topic (TC): PR wins, PB and TC are reverted (no topic at all).

    PR (Alice, 100) sorts before PB (Bob, 50) and leaves Bob at 0, so PB fails; TC is
    then checked against PR, where Charlie is at 0 < 50.
    """
    room = Room(rv)
    room.power("PA", ALICE, {ALICE: 100, BOB: 50})
    room.power("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50})
    room.topic("TC", CHARLIE)
    room.power("PR", ALICE, {ALICE: 100})
    room.message("END", ALICE)
    room.chain("START -> PA -> PB -> TC -> END", "PA -> PR -> END")
    return _at_end("power_level_reversion", room, {POWER: "PR"})


def demoted_moderator_kick(rv: RoomVersion) -> Scenario:
    """Bob (moderator) kicks Charlie while Alice demotes Bob: the kick is undone.

    Order: PA, PD (Alice) before IMC and KC (which cites IMC); KC fails as Bob is at 0.
    """
    room = Room(rv)
    room.power("PA", ALICE, {ALICE: 100, BOB: 50})
    room.member("KC", BOB, CHARLIE, "leave")
    room.power("PD", ALICE, {ALICE: 100})
    room.message("END", ALICE)
    room.chain("START -> PA -> KC -> END", "PA -> PD -> END")
    return _at_end("demoted_moderator_kick", room, {POWER: "PD"})


def creator_power_ordering(rv: RoomVersion) -> Scenario:
    """Alice (creator) and Bob (promoted to 100) change the join rules concurrently.

    Both changes are allowed whatever the order, so the one replayed *last* stands.
    Before v12 both senders have 100 and the older event (Bob's JB) goes first: Alice's
    JA stands.  In v12 the creator's power is infinite, so JA goes first and Bob's JB
    stands.
    """
    room = Room(rv)
    room.power("PB", ALICE, {ALICE: 100, BOB: 100})
    room.join_rules("JB", BOB, "invite")
    room.join_rules("JA", ALICE, "knock")
    room.message("END", ALICE)
    room.chain("START -> PB -> JB -> END", "PB -> JA -> END")
    winner = "JB" if rv.auth.privileged_creators else "JA"
    return _at_end("creator_power_ordering", room, {POWER: "PB", JOIN_RULES: winner})


# --- where v2.1 (room version 12) and v2 differ -------------------------------------------


def join_rules_after_creator_left(rv: RoomVersion) -> Scenario:
    """MSC4297 "Problem A": every fork agrees Alice left after setting JR1 then JR2, but
    one state set carries the outdated JR1.

    v2 replays JR1 and JR2 on top of the unconflicted state, where Alice has left: both
    fail and the room loses its join rules.  v2.1 replays them from an empty state, so
    Alice's membership comes from their auth events (joined): JR2 stands.
    """
    room = Room(rv)
    room.join_rules("JR1", ALICE, "invite")
    room.join_rules("JR2", ALICE, "knock")
    room.member("LA", ALICE, ALICE, "leave")
    room.chain("START -> JR1 -> JR2 -> LA")
    room.build()
    true_state = room.state_at("LA")
    outdated = room.with_overrides(true_state, {JOIN_RULES: "JR1"})
    v2_1 = rv.state_res.algorithm.value == "v2.1"
    expected = room.with_overrides(true_state, {JOIN_RULES: "JR2" if v2_1 else None})
    return Scenario("join_rules_after_creator_left", room, [true_state, outdated], expected)


def power_levels_chain(rv: RoomVersion) -> Scenario:
    """MSC4297 "Problem B": Alice promotes Bob (PL1), Bob promotes Charlie (PL2), who
    sets the topic (TC); one state set carries the outdated IPOWER.

    Both auth chains contain PL1, so the auth difference is empty and v2 replays only
    IPOWER and PL2 -- IPOWER first (older), after which Bob is at 0: PL2 fails and the
    power levels reset to IPOWER.  v2.1 adds the conflicted subgraph PL2 -> PL1 ->
    IPOWER, replays PL1 in between and keeps PL2.
    """
    room = Room(rv)
    room.power("PL1", ALICE, {ALICE: 100, BOB: 100})
    room.power("PL2", BOB, {ALICE: 100, BOB: 100, CHARLIE: 100})
    room.topic("TC", CHARLIE)
    room.chain("START -> PL1 -> PL2 -> TC")
    room.build()
    true_state = room.state_at("TC")
    outdated = room.with_overrides(true_state, {POWER: "IPOWER"})
    v2_1 = rv.state_res.algorithm.value == "v2.1"
    expected = room.with_overrides(true_state, {POWER: "PL2" if v2_1 else "IPOWER"})
    return Scenario("power_levels_chain", room, [true_state, outdated], expected)


SCENARIOS: dict[str, Callable[[RoomVersion], Scenario]] = {
    f.__name__: f
    for f in (
        ban_vs_pl,
        topic_basic,
        topic_reset,
        topic,
        mainline_sort,
        join_rules_race,
        offtopic_pl,
        concurrent_joins_leaves,
        ban_vs_rejoin,
        power_level_reversion,
        demoted_moderator_kick,
        creator_power_ordering,
        join_rules_after_creator_left,
        power_levels_chain,
    )
}

# Scenarios whose expected state depends on the state resolution algorithm.
ALGORITHM_DEPENDENT = ("join_rules_after_creator_left", "power_levels_chain")
