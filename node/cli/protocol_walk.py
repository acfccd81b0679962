"""A walk through the protocol core: build, sign, verify, authorise and resolve a school room.

Runs entirely in memory (no server), so it shows the signed-event core doing real work:
``parta demo --protocol``.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

from federation.auth.rules import AuthError, check_auth
from federation.auth.selection import auth_types_for_event
from federation.errors import MatrixError
from federation.events import Event
from federation.events.builder import build_create_event, build_event
from federation.events.checks import check_received_event
from federation.keys import SigningKey
from federation.room_versions import DEFAULT_ROOM_VERSION
from federation.state_res import resolve_state


class _Room:
    """A tiny in-memory room: current state, extremities and every event by ID."""

    def __init__(self, server: str, key: SigningKey, now: Callable[[], int]) -> None:
        self.rv = DEFAULT_ROOM_VERSION
        self.server, self.key, self.now = server, key, now
        self.events: dict[str, Event] = {}
        self.state: dict[tuple[str, str], Event] = {}
        self.extremities: list[str] = []
        self.room_id: str | None = None

    def create(self, creator: str) -> Event:
        ev = build_create_event(
            self.rv,
            server_name=self.server,
            signing_key=self.key,
            creator=creator,
            content={"room_version": self.rv.identifier},
            origin_server_ts=self.now(),
        )
        self.room_id = ev.room_id
        self._accept(ev)
        return ev

    def build(
        self,
        sender: str,
        type_: str,
        content: dict,
        state_key: str | None = None,
        prev: list[str] | None = None,
        state: dict | None = None,
    ) -> Event:
        state = self.state if state is None else state
        prev = self.extremities if prev is None else prev
        auth_ids = [
            state[k].event_id
            for k in auth_types_for_event(self.rv, type_, sender, state_key, content)
            if k in state
        ]
        depth = max(self.events[p].depth for p in prev) + 1
        return build_event(
            self.rv,
            server_name=self.server,
            signing_key=self.key,
            type=type_,
            sender=sender,
            content=content,
            room_id=self.room_id,
            prev_events=list(prev),
            auth_events=auth_ids,
            depth=depth,
            origin_server_ts=self.now(),
            state_key=state_key,
        )

    def send(self, *args, **kwargs) -> Event:
        ev = self.build(*args, **kwargs)
        check_auth(ev, self.state)
        self._accept(ev)
        return ev

    def _accept(self, ev: Event) -> None:
        self.events[ev.event_id] = ev
        if ev.is_state:
            self.state[ev.key] = ev
        self.extremities = [ev.event_id]


def run_protocol_walk(out: Callable[[str], None] = print) -> int:
    """Print a room's life; return the number of events verified."""
    clock = [int(time.time() * 1000)]

    def now() -> int:
        clock[0] += 1
        return clock[0]

    server = "school42.city.example"
    key = SigningKey.generate("demo")
    room = _Room(server, key, now)
    director, teacher, pupil = (f"@{n}:{server}" for n in ("director", "teacher7", "pupil31"))
    lookup = {(server, key.key_id): key.verify_key}

    def get_key(srv: str, key_id: str):
        return lookup.get((srv, key_id))

    out(f"Room version {room.rv.identifier}, server {server}, signing key {key.key_id}")
    out(f"  public key {key.verify_key.encode()}")
    room.create(director)
    out(f"Room ID (hash of the create event): {room.room_id}")
    room.send(director, "m.room.member", {"membership": "join"}, director)
    room.send(
        director,
        "m.room.power_levels",
        {
            "users": {teacher: 50},
            "events_default": 0,
            "state_default": 50,
            "invite": 50,
            "kick": 50,
            "ban": 50,
            "redact": 50,
        },
        "",
    )
    room.send(director, "m.room.join_rules", {"join_rule": "invite"}, "")
    room.send(director, "m.room.history_visibility", {"history_visibility": "shared"}, "")
    room.send(director, "m.room.name", {"name": "Class 7B"}, "")
    for user in (teacher, pupil):
        room.send(director, "m.room.member", {"membership": "invite"}, user)
        room.send(user, "m.room.member", {"membership": "join"}, user)
    room.send(teacher, "m.room.message", {"msgtype": "m.text", "body": "Homework: p. 42"})
    room.send(pupil, "m.room.message", {"msgtype": "m.text", "body": "Got it!"})

    out("\nEvents (each built, hashed, signed, then checked as a receiving server would):")
    verified = 0
    for ev in room.events.values():
        received = check_received_event(copy.deepcopy(ev.pdu), room.rv, get_key)
        assert received.event_id == ev.event_id
        verified += 1
        sk = f" [{ev.state_key}]" if ev.is_state and ev.state_key else ""
        body = (
            ev.content.get("body") or ev.content.get("membership") or ev.content.get("name") or ""
        )
        out(
            f"  {ev.event_id[:16]}… depth {ev.depth:2d} {ev.type}{sk} by {ev.sender.split(':')[0]}"
            f"  {body}  ✔ signature+hashes"
        )

    out("\nWhat a receiving server refuses:")
    msg = next(e for e in room.events.values() if e.type == "m.room.message")
    tampered = copy.deepcopy(msg.pdu)
    tampered["content"]["body"] = "Homework cancelled"
    got = check_received_event(tampered, room.rv, get_key)
    out(f"  tampered body -> content hash mismatch, kept redacted: content={dict(got.content)}")
    forged = copy.deepcopy(msg.pdu)
    other = SigningKey.generate("demo")
    forged["signatures"] = {}
    from federation.signing import sign_json

    sign_json(forged, server, other)
    try:
        check_received_event(forged, room.rv, get_key)
        out("  forged signature -> ACCEPTED (bug!)")
    except MatrixError as exc:
        out(f"  forged signature -> {exc.errcode}: {exc.message}")
    try:
        room.send(pupil, "m.room.power_levels", {"users": {pupil: 100}}, "")
        out("  pupil raising own power -> ACCEPTED (bug!)")
    except AuthError as exc:
        out(f"  pupil raising own power -> {exc.errcode}: {exc.message}")

    out("\nA fork: teacher and director change the topic concurrently; state resolution v2.1:")
    base_state = dict(room.state)
    base = list(room.extremities)
    a = room.build(
        teacher, "m.room.topic", {"topic": "Maths on Friday"}, "", prev=base, state=base_state
    )
    b = room.build(
        director,
        "m.room.topic",
        {"topic": "Maths moved to Monday"},
        "",
        prev=base,
        state=base_state,
    )
    for ev in (a, b):
        check_auth(ev, base_state)
        room.events[ev.event_id] = ev
    sets = [
        {k: e.event_id for k, e in base_state.items()} | {a.key: a.event_id},
        {k: e.event_id for k, e in base_state.items()} | {b.key: b.event_id},
    ]
    resolved = resolve_state(room.rv, sets, room.events.get)
    winner = room.events[resolved[("m.room.topic", "")]]
    out(f"  resolved topic: {winner.content['topic']!r} (by {winner.sender}, higher power wins)")
    out(f"\n{verified} events verified; state has {len(resolved)} entries.")
    return verified
