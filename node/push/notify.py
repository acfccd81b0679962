"""Push rule evaluation for every persisted event (client-server API "Push Notifications" >
"Server behaviour", https://spec.matrix.org/v1.16/client-server-api/#server-behaviour-14):
"When receiving a new event homeservers process push rules for each of the local users
in the room (excluding the sender)".

Runs in the rooms persister's ``on_persisted`` hook, on the reactor, after the batch
committed and before the notifier wakes ``/sync``: for each visible event, the room's
current state in memory gives the local joined members (plus the invitee of an invite, so
``.m.rule.invite_for_me`` can fire), the member count, display names and power levels;
each member's compiled rules (``rule_store``) decide; a notifying rule updates the
member's unread counts at once (``counts``) and becomes a ``push_notifications`` row.
Rows are written ``FLUSH_S`` later with ``EventPersister.enqueue_extra``, in the write
transaction of the events queued by then (multi-row inserts, never a round trip per
event); a crash in between loses at most that moment's rows, never counts already
shown (they are recomputed from the rows at the next start).  Listeners (pusher delivery) get the
notifications.  A room that is not in memory (rare: the rooms area keeps rooms it writes
to) is loaded first and the room's syncs are woken again afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import orjson
from twisted.internet import defer

from federation.auth.power_levels import get_power_levels_content, user_power_level
from federation.events.model import Event
from federation.room_versions import RoomVersion
from node.rooms.event_meta import committed_stream
from node.storage.bulk import insert_rows
from schema.push import push_notifications

from .counts import UnreadCounts
from .evaluator import EventContext, evaluate
from .members import RoomMembers, named_users
from .members import build as build_members
from .rule_store import PushRuleStore
from .threads import thread_of

if TYPE_CHECKING:
    from node.rooms.persister import EventPersister
    from node.rooms.service import RoomService

log = logging.getLogger("parta.push")

MEMBER = "m.room.member"
DEFAULT_NOTIFICATION_LEVEL = 50  # m.room.power_levels "notifications" default
FLUSH_S = 0.1  # notification rows are written at most this long after their event
FLUSH_ROWS = 5_000  # ... or at once when this many wait
# Stands for "any member the event does not name": no Matrix ID holds a NUL.
NOBODY = "@\x00:\x00"


@dataclass(slots=True)
class Notification:
    """One event that notified one user."""

    user_id: str
    room_id: str
    event_id: str
    stream: int
    thread_id: str
    highlight: bool
    actions: list
    ts: int
    tweaks: dict = field(default_factory=dict)
    event: Event | None = None
    # For push gateways: sender_display_name, room_name, room_alias (when known).
    details: dict = field(default_factory=dict)


class _RoomFacts:
    """``evaluator.RoomFacts`` over a room's current state."""

    __slots__ = ("state", "member_count", "room_version", "sender", "_may")

    def __init__(
        self,
        state: Mapping[tuple[str, str], Event],
        member_count: int,
        room_version: RoomVersion,
        sender: str,
    ) -> None:
        self.state = state
        self.member_count = member_count
        self.room_version = room_version
        self.sender = sender
        self._may: dict[str, bool] = {}

    def display_name(self, user_id: str) -> str | None:
        ev = self.state.get((MEMBER, user_id))
        name = ev.content.get("displayname") if ev is not None else None
        return name if isinstance(name, str) else None

    def sender_may_notify(self, key: str) -> bool:
        hit = self._may.get(key)
        if hit is None:
            hit = self._may[key] = self._check(key)
        return hit

    def _check(self, key: str) -> bool:
        if ("m.room.create", "") not in self.state:
            return False
        notifications = get_power_levels_content(self.state).get("notifications")
        level = (
            notifications.get(key, DEFAULT_NOTIFICATION_LEVEL)
            if isinstance(notifications, dict)
            else DEFAULT_NOTIFICATION_LEVEL
        )
        if not isinstance(level, int) or isinstance(level, bool):
            level = DEFAULT_NOTIFICATION_LEVEL
        return user_power_level(self.sender, self.state, self.room_version) >= level


def _details(ev: Event, state: Mapping[tuple[str, str], Event]) -> dict:
    """The optional names of a Push Gateway API notification, from the room's state."""
    out: dict = {}
    member = state.get((MEMBER, ev.sender))
    name = member.content.get("displayname") if member is not None else None
    if isinstance(name, str) and name:
        out["sender_display_name"] = name
    room_name = state.get(("m.room.name", ""))
    value = room_name.content.get("name") if room_name is not None else None
    if isinstance(value, str) and value:
        out["room_name"] = value
    alias_ev = state.get(("m.room.canonical_alias", ""))
    alias = alias_ev.content.get("alias") if alias_ev is not None else None
    if isinstance(alias, str) and alias:
        out["room_alias"] = alias
    return out


_COLUMNS = (
    "user_id",
    "room_id",
    "event_id",
    "stream_ordering",
    "thread_id",
    "highlight",
    "actions",
    "ts",
)


def _insert(conn: Any, rows: list[tuple]) -> None:
    # Multi-row INSERTs (node/storage/bulk.py): one statement per chunk, not one per row.
    insert_rows(conn, push_notifications.name, _COLUMNS, rows)


class PushEvaluator:
    def __init__(
        self,
        *,
        rules: PushRuleStore,
        counts: UnreadCounts,
        rooms: RoomService,
        server_name: str,
        clock: Any,
    ) -> None:
        self.rules = rules
        self.counts = counts
        self.rooms = rooms
        self.clock = clock
        self._suffix = ":" + server_name
        self.listeners: list[Callable[[list[Notification]], None]] = []
        # Who gets pushes (then the notification carries the room's and sender's names).
        self.wants_details: Callable[[str], bool] = lambda user_id: False
        self._buffer: list[Notification] = []
        self._timer: Any = None
        self._room_members: dict[str, RoomMembers] = {}
        self._rules_version = 0
        self._own_seen: set[str] = set()  # users whose rule change was counted
        rules.listeners.append(self._rules_changed)

    def attach(self, persister: EventPersister) -> None:
        persister.on_persisted.append(self.on_persisted)
        self._persister = persister

    # --- the hook ------------------------------------------------------------------------
    def on_persisted(self, evs: Sequence[Event]) -> None:
        out = self._buffer
        for ev in evs:
            room = self._room_now(ev)
            if room is not None:
                self._evaluate(ev, room, out)
        self._buffered()

    def _buffered(self) -> None:
        """Write what was evaluated soon, not after every batch: an extra write queued
        right after each batch would mostly run alone (the senders' next events wait for
        their answers) and double the transactions on the send path."""
        if len(self._buffer) >= FLUSH_ROWS:
            self.flush()
        elif self._buffer and self._timer is None:
            self._timer = self.clock.call_later(FLUSH_S, self.flush)

    def flush(self) -> defer.Deferred | None:
        """Queue the evaluated notifications' rows now; the Deferred fires once written."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        notes, self._buffer = self._buffer, []
        return self._emit(notes) if notes else None

    def _room_now(self, ev: Event) -> Any:
        """The room in memory now, or None (then it is evaluated once loaded)."""
        box: list = []
        now = [True]

        def got(room: Any) -> None:
            if now[0]:
                box.append(room)
            else:
                self._late(ev, room)

        def failed(failure: Any) -> None:
            log.warning("event=push_room_unavailable room=%s: %s", ev.room_id, failure.value)

        defer.ensureDeferred(self.rooms.get_room(ev.room_id)).addCallbacks(got, failed)
        now[0] = False
        return box[0] if box else None

    def _late(self, ev: Event, room: Any) -> None:
        before = len(self._buffer)
        self._evaluate(ev, room, self._buffer)
        if len(self._buffer) > before:
            self._buffered()
            if self.rooms.notifier is not None:  # wake the room's syncs for the counts
                self.rooms.notifier.notify_room_event(ev.room_id, committed_stream(ev))

    def _rules_changed(self, user_id: str, content: dict) -> None:
        """``PushRuleStore`` listener: who has rules of their own may have changed.  A
        user's documents are never removed, so only a user's first change moves them out
        of the default group; later changes need no recomputation."""
        if user_id not in self._own_seen:
            self._own_seen.add(user_id)
            self._rules_version += 1

    def _members(self, room: Any) -> RoomMembers:
        """The room's local joined members, from the cache while the room's membership and
        everyone's rules are unchanged."""
        version = room.members_version
        hit = self._room_members.get(room.room_id)
        if (
            hit is not None
            and hit.room is room
            and hit.version == version
            and hit.rules_version == self._rules_version
        ):
            return hit
        hit = build_members(
            room,
            version,
            self._rules_version,
            room.joined,
            room.state,
            self._suffix,
            self.rules.has_own_rules,
        )
        self._room_members[room.room_id] = hit
        return hit

    def _excluded(self, ev: Event, room: Any) -> tuple[set[str], str | None]:
        """Who must not be evaluated (the sender; users ignoring the sender) and the local
        invitee of an invite who is not joined yet (so ``.m.rule.invite_for_me`` fires)."""
        sender = ev.sender
        excluded = {sender}
        invitee = None
        invite = ev.type == MEMBER and ev.content.get("membership") == "invite"
        if invite and ev.state_key:
            target = ev.state_key
            if target.endswith(self._suffix) and target != sender and target not in room.joined:
                invitee = target
        # Users who ignore the sender get neither their messages nor their invites
        # (client-server API "Ignoring Users"; node/rooms/ignored.py).
        ignorers = self.rooms.ignored.ignorers_of(sender)
        if ignorers:
            if ev.state_key is None:
                excluded |= ignorers
            elif invite and ev.state_key in ignorers:
                excluded.add(ev.state_key)
                invitee = None
        return excluded, invitee

    def _evaluate(self, ev: Event, room: Any, out: list[Notification]) -> None:
        try:
            stream = committed_stream(ev)
        except KeyError:
            return
        thread = thread_of(ev.content)
        if ev.sender.endswith(self._suffix):
            self.counts.sent(ev.sender, ev.room_id, thread, stream)
        members = self._members(room)
        excluded, invitee = self._excluded(ev, room)
        local = members.local
        if invitee is None and len(local) <= len(excluded) and all(u in excluded for u in local):
            return  # nobody to evaluate for
        facts = _RoomFacts(room.state, len(room.joined), room.room_version, ev.sender)
        ctx = EventContext(ev.pdu, facts)
        # The server-default rules depend on who evaluates them only through the user's ID
        # (in m.mentions.user_ids, an invite's state_key) and, for an event without
        # m.mentions, the user's local part or display name in the body: members with the
        # default rules whom the event does not name all get the same answer, decided once.
        named = named_users(ev, members)
        rules = self.rules
        generic = evaluate(rules.compiled(NOBODY), ctx, NOBODY)
        special = named | members.own
        targets: Iterable[str]
        if generic is not None and generic.notify:
            targets = members.local  # everyone is notified: walk them all
        else:
            # Nobody with the default rules is notified: only the named members and those
            # with rules of their own need a look (a membership event in a big room).
            index = members.index
            targets = sorted((u for u in special if u in index), key=index.__getitem__)
        if invitee is not None:
            targets = [*targets, invitee]
        ts = self.clock.time_ms()
        room_id, event_id = ev.room_id, ev.event_id  # (properties: read once, not per member)
        wants_details = self.wants_details
        details: dict | None = None
        grouped: list[str] = []  # notified by the shared evaluation: counted in one call
        for user_id in targets:
            if user_id in excluded:
                continue
            if user_id in special:
                rule = evaluate(rules.compiled(user_id), ctx, user_id)
                if rule is None or not rule.notify:
                    continue
                self.counts.notified(user_id, room_id, (stream, thread, rule.highlight))
            else:
                rule = generic
                if rule is None or not rule.notify:
                    continue
                grouped.append(user_id)
            note = Notification(
                user_id,
                room_id,
                event_id,
                stream,
                thread,
                rule.highlight,
                rule.actions,
                ts,
                rule.tweaks,
                ev,
            )
            if wants_details(user_id):
                if details is None:
                    details = _details(ev, room.state)
                note.details = details
            out.append(note)
        if grouped and generic is not None:
            self.counts.notified_many(grouped, room_id, (stream, thread, generic.highlight))

    def _emit(self, notes: list[Notification]) -> defer.Deferred:
        actions_json: dict[int, str] = {}  # one encoding per rule's actions list
        rows = []
        for n in notes:
            text = actions_json.get(id(n.actions))
            if text is None:
                text = actions_json[id(n.actions)] = orjson.dumps(n.actions).decode()
            rows.append(
                (n.user_id, n.room_id, n.event_id, n.stream, n.thread_id, n.highlight, text, n.ts)
            )
        batch = self.counts.pending_batch
        d = self._persister.enqueue_extra(_insert, rows)

        def done(_: Any) -> None:
            self.counts.written(batch)

        def failed(failure: Any) -> None:
            log.error("event=push_notifications_not_stored count=%d: %s", len(rows), failure.value)
            self.counts.written(batch)

        d.addCallbacks(done, failed)
        self.counts.next_batch()
        for listener in self.listeners:
            try:
                listener(notes)
            except Exception:  # delivery never breaks persistence
                log.exception("push notification listener failed")
        return d
