"""A small DSL for state resolution scenarios.

A ``Room`` starts with the usual initial events, chained by ``prev_events``::

    CREATE -> IMA -> IPOWER -> IJR -> IMB -> IMC -> IMZ -> START

(Alice creates the room and joins, sets power levels, makes it public; Bob, Charlie and
Zara join; START is a message.)  A scenario then defines named events, in order (the
definition order gives ``origin_server_ts``), and edge chains in time order::

    room.power("PA", ALICE, {BOB: 50})
    room.member("MB", ALICE, BOB, "ban")
    room.chain("START -> PA -> MB -> END")

``build()`` creates the events in a topological order of the ``prev_events`` graph: the
state before each event is the resolution (``federation.state_res.resolve_state``) of
the states after its prev events, its ``auth_events`` are selected from that state (spec
"Auth events selection"), and -- unless defined with ``valid=False`` -- it must pass the
authorization rules against that state, so that each fork is legal on its own.

Event IDs are ``"$" + name``.  In room version 12 the room ID is ``"!CREATE"``, the create
event is not among any ``auth_events``, and ``power()`` drops the creator from ``users``
(creators have infinite power and may not be listed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from federation.auth.rules import check_auth
from federation.auth.selection import auth_types_for_event
from federation.events.model import Event
from federation.room_versions import RoomVersion
from federation.state_res import resolve_state

ALICE = "@alice:a.test"
BOB = "@bob:b.test"
CHARLIE = "@charlie:c.test"
ZARA = "@zara:z.test"
EVELYN = "@evelyn:e.test"
FIONA = "@fiona:f.test"

CREATE = ("m.room.create", "")
POWER = ("m.room.power_levels", "")
JOIN_RULES = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")


def member_key(user_id: str) -> tuple[str, str]:
    return ("m.room.member", user_id)


INITIAL_CHAIN = "CREATE -> IMA -> IPOWER -> IJR -> IMB -> IMC -> IMZ -> START"
BASE_TS = 1_700_000_000_000


@dataclass
class _Def:
    name: str
    type: str
    sender: str
    content: dict
    state_key: str | None
    valid: bool
    prevs: list[str] = field(default_factory=list)


class Room:
    def __init__(self, room_version: RoomVersion, *, initial: bool = True) -> None:
        self.version = room_version
        self.v12 = room_version.event_format.room_id_is_create_event_hash
        self.room_id = "!CREATE" if self.v12 else "!room:a.test"
        self.defs: dict[str, _Def] = {}
        self.events: dict[str, Event] = {}  # event ID -> Event
        self.state_after: dict[str, dict] = {}  # name -> state map (IDs)
        self.state_before: dict[str, dict] = {}
        if initial:
            self.event(
                "CREATE",
                "m.room.create",
                ALICE,
                {"room_version": room_version.identifier}
                | ({} if room_version.auth.implicit_room_creator else {"creator": ALICE}),
                state_key="",
            )
            self.member("IMA", ALICE, ALICE, "join")
            self.power("IPOWER", ALICE, {ALICE: 100})
            self.join_rules("IJR", ALICE, "public")
            self.member("IMB", BOB, BOB, "join")
            self.member("IMC", CHARLIE, CHARLIE, "join")
            self.member("IMZ", ZARA, ZARA, "join")
            self.message("START", ZARA)
            self.chain(INITIAL_CHAIN)

    # --- definitions -------------------------------------------------------------------
    def event(
        self,
        name: str,
        type: str,
        sender: str,
        content: dict,
        *,
        state_key: str | None = None,
        valid: bool = True,
    ) -> str:
        assert name not in self.defs, f"{name} defined twice"
        self.defs[name] = _Def(name, type, sender, content, state_key, valid)
        return "$" + name

    def member(self, name: str, sender: str, target: str, membership: str, **kw: Any) -> str:
        return self.event(
            name, "m.room.member", sender, {"membership": membership}, state_key=target, **kw
        )

    def power(
        self,
        name: str,
        sender: str,
        users: Mapping[str, int],
        *,
        extra: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        users = dict(users)
        if self.v12:
            users.pop(ALICE, None)  # the creator: infinite power, never listed
        return self.event(
            name,
            "m.room.power_levels",
            sender,
            {"users": users, **(extra or {})},
            state_key="",
            **kw,
        )

    def join_rules(self, name: str, sender: str, rule: str, **kw: Any) -> str:
        return self.event(
            name, "m.room.join_rules", sender, {"join_rule": rule}, state_key="", **kw
        )

    def topic(self, name: str, sender: str, text: str | None = None, **kw: Any) -> str:
        return self.event(name, "m.room.topic", sender, {"topic": text or name}, state_key="", **kw)

    def message(self, name: str, sender: str, **kw: Any) -> str:
        return self.event(name, "m.room.message", sender, {"msgtype": "m.text", "body": name}, **kw)

    def chain(self, *chains: str) -> None:
        """Edges in time order: ``"A -> B -> C"`` makes A a prev event of B, B of C."""
        for spec in chains:
            names = [n.strip() for n in spec.split("->")]
            for earlier, later in zip(names, names[1:], strict=False):
                assert earlier in self.defs and later in self.defs, (earlier, later)
                if earlier not in self.defs[later].prevs:
                    self.defs[later].prevs.append(earlier)

    # --- building ----------------------------------------------------------------------
    def get_event(self, event_id: str) -> Event | None:
        return self.events.get(event_id)

    def resolve(self, state_sets: list[Mapping], room_version: RoomVersion | None = None) -> dict:
        return resolve_state(room_version or self.version, state_sets, self.get_event)

    def build(self) -> "Room":
        order = list(self.defs)  # definition order is the tie-break
        placed: set[str] = set()
        while len(placed) < len(order):
            progress = False
            for name in order:
                if name not in placed and all(p in placed for p in self.defs[name].prevs):
                    self._create(name)
                    placed.add(name)
                    progress = True
            assert progress, "cycle in the prev_events graph"
        return self

    def _create(self, name: str) -> None:
        d = self.defs[name]
        index = list(self.defs).index(name)
        if d.type == "m.room.create":
            before: dict = {}
        else:
            assert d.prevs, f"{name} has no prev events"
            before = self.resolve([self.state_after[p] for p in d.prevs])
        pdu: dict[str, Any] = {
            "type": d.type,
            "sender": d.sender,
            "content": d.content,
            "origin_server_ts": BASE_TS + 1000 * index,
            "prev_events": ["$" + p for p in d.prevs],
            "depth": 1 + max((self.events["$" + p].depth for p in d.prevs), default=0),
            "auth_events": [],
            "hashes": {"sha256": "AAAA"},
            "signatures": {},
        }
        if d.state_key is not None:
            pdu["state_key"] = d.state_key
        if not (self.v12 and d.type == "m.room.create"):
            pdu["room_id"] = self.room_id
        if d.type != "m.room.create":
            keys = auth_types_for_event(self.version, d.type, d.sender, d.state_key, d.content)
            pdu["auth_events"] = [before[k] for k in keys if k in before]
        event = Event(pdu, self.version, event_id="$" + name)
        if d.valid:
            auth_state = {k: self.events[v] for k, v in before.items()}
            if d.type != "m.room.create":
                auth_state.setdefault(CREATE, self.events["$CREATE"])
            check_auth(event, auth_state)  # raises: the scenario itself is wrong
        self.events[event.event_id] = event
        self.state_before[name] = before
        after = dict(before)
        if event.is_state:
            after[event.key] = event.event_id
        self.state_after[name] = after

    # --- reading -------------------------------------------------------------------------
    def state_at(self, name: str) -> dict:
        """The state after ``name``."""
        return self.state_after[name]

    def with_overrides(self, base: Mapping, overrides: Mapping) -> dict:
        """``base`` with keys set to ``"$" + name`` (or removed when the name is None)."""
        state = dict(base)
        for key, name in overrides.items():
            if name is None:
                state.pop(key, None)
            else:
                state[key] = "$" + name
        return state

    @staticmethod
    def names(state: Mapping) -> dict:
        """A state map with event names instead of IDs (readable assertion diffs)."""
        return {key: event_id[1:] for key, event_id in sorted(state.items())}
