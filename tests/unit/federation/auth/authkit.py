"""A tiny DSL that builds rooms of ``Event`` objects for the auth rule tests.

Events get readable IDs (``$create``, ``$bob_join`` ...).  In v12 the room ID is
``!`` + the create event's ID without ``$``; in v10/v11 it is ``!<name>:<creator domain>``.
``Room.send`` builds an event with auth events selected from the current state, checks it
with ``check_auth`` (so every scenario is itself built from allowed events) and accepts it.
``Room.build`` only builds; tests then assert ``allowed(room, ev)`` / ``denied(room, ev, rule)``
where ``rule`` is the v12 rule number (translated to the room's own numbering).
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.auth import AuthError, auth_types_for_event, check_auth, rule_label
from federation.events.model import Event
from federation.room_versions import RoomVersion

ALICE = "@alice:a.example"  # creator
BOB = "@bob:b.example"
CAROL = "@carol:c.example"
DAVE = "@dave:d.example"
ALICE2 = "@alice2:a.example"  # a second user on the creator's server

_DEFAULT = object()


def domain(user_id: str) -> str:
    return user_id.split(":", 1)[1]


class Room:
    def __init__(
        self,
        rv: RoomVersion,
        *,
        creator: str = ALICE,
        name: str = "create",
        create_content: dict | None = None,
    ) -> None:
        self.rv = rv
        self.events: dict[str, Event] = {}
        self.state: dict[tuple[str, str], Event] = {}
        self.last: Event | None = None
        self._counter = 0
        if rv.event_format.room_id_is_create_event_hash:
            self.room_id = "!" + name
        else:
            self.room_id = f"!{name}:{domain(creator)}"
        content: dict[str, Any] = {"room_version": rv.identifier}
        if not rv.auth.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        self.create = self.accept(
            self.build("m.room.create", creator, content, state_key="", name=name, prev=[], auth=[])
        )

    # --- building -----------------------------------------------------------------
    def select(self, type_: str, sender: str, state_key: str | None, content: dict) -> list[str]:
        keys = auth_types_for_event(self.rv, type_, sender, state_key, content)
        return [self.state[k].event_id for k in keys if k in self.state]

    def build(
        self,
        type_: str,
        sender: str,
        content: dict | None = None,
        *,
        state_key: str | None = None,
        name: str | None = None,
        prev: list[str] | None = None,
        auth: list[str] | None = None,
        room_id: Any = _DEFAULT,
        **extra: Any,
    ) -> Event:
        self._counter += 1
        content = {} if content is None else content
        pdu: dict[str, Any] = {
            "type": type_,
            "sender": sender,
            "content": content,
            "depth": self._counter,
            "origin_server_ts": 1_700_000_000_000 + self._counter,
            "prev_events": [self.last.event_id] if prev is None else prev,
            "auth_events": (
                self.select(type_, sender, state_key, content) if auth is None else auth
            ),
            "hashes": {"sha256": "AAAA"},
            "signatures": {},
        }
        if room_id is _DEFAULT:
            is_v12_create = (
                type_ == "m.room.create" and self.rv.event_format.room_id_is_create_event_hash
            )
            if not is_v12_create:
                pdu["room_id"] = self.room_id
        elif room_id is not None:
            pdu["room_id"] = room_id
        if state_key is not None:
            pdu["state_key"] = state_key
        pdu.update(extra)
        return Event(pdu, self.rv, event_id="$" + (name or f"ev{self._counter}"))

    def member(self, sender: str, target: str, membership: str, **content: Any) -> Event:
        return self.build(
            "m.room.member", sender, {"membership": membership, **content}, state_key=target
        )

    def power_levels(self, sender: str = ALICE, **content: Any) -> Event:
        return self.build("m.room.power_levels", sender, content, state_key="")

    # --- accepting ----------------------------------------------------------------
    def accept(self, event: Event) -> Event:
        self.events[event.event_id] = event
        if event.is_state:
            self.state[event.key] = event
        self.last = event
        return event

    def check(self, event: Event, **kw: Any) -> None:
        check_auth(event, self.state, auth_events=self.events, **kw)

    def send(self, event: Event) -> Event:
        self.check(event)
        return self.accept(event)

    # --- shortcuts (all go through the auth rules) ---------------------------------
    def join(self, user: str, **content: Any) -> Event:
        return self.send(self.member(user, user, "join", **content))

    def invite(self, sender: str, target: str) -> Event:
        return self.send(self.member(sender, target, "invite"))

    def ban(self, sender: str, target: str) -> Event:
        return self.send(self.member(sender, target, "ban"))

    def set_join_rule(self, join_rule: str, sender: str = ALICE, **content: Any) -> Event:
        return self.send(
            self.build(
                "m.room.join_rules", sender, {"join_rule": join_rule, **content}, state_key=""
            )
        )

    def set_power_levels(self, sender: str = ALICE, **content: Any) -> Event:
        return self.send(self.power_levels(sender, **content))


def make_room(
    rv: RoomVersion,
    *,
    join_rule: str | None = "invite",
    users: dict[str, int] | None = None,
    members: dict[str, str] | None = None,
    power_levels: bool = True,
    create_content: dict | None = None,
    **pl_content: Any,
) -> Room:
    """create, alice's join, power levels (alice 100 before v12, plus ``users``),
    join rules, then ``members``: user -> membership, produced through allowed events
    (``join`` temporarily opens the room; ``invite``/``ban`` are sent by alice)."""
    room = Room(rv, create_content=create_content)
    room.join(ALICE)
    if power_levels:
        levels = {} if rv.auth.privileged_creators else {ALICE: 100}
        levels.update(users or {})
        room.set_power_levels(users=levels, **pl_content)
    for user, membership in (members or {}).items():
        if membership == "join":
            room.set_join_rule("public")
            room.join(user)
        elif membership == "knock":
            room.set_join_rule("knock")
            room.send(room.member(user, user, "knock"))
        else:
            room.send(room.member(ALICE, user, membership))
    if join_rule is not None:
        room.set_join_rule(join_rule)
    return room


def allowed(room: Room, event: Event, **kw: Any) -> None:
    room.check(event, **kw)


def denied(room: Room, event: Event, rule: str, **kw: Any) -> AuthError:
    """Assert ``event`` fails exactly v12-numbered ``rule`` (translated for the room)."""
    with pytest.raises(AuthError) as info:
        room.check(event, **kw)
    expected = rule_label(room.rv, rule)
    assert info.value.rule == expected, f"expected rule {expected}, got: {info.value}"
    assert info.value.errcode == "M_FORBIDDEN"
    assert str(info.value).startswith(f"auth rule {expected} (v{room.rv.identifier}): ")
    return info.value
