"""Unread notification counts (client-server API "Push Notifications" > "Receiving
notifications", "Marking notifications as read"; default push rules).

Without per-user push rules, the server-default rules decide (numbers are the spec's rule
order): override rules first --

  1. ``.m.rule.master`` is disabled by default (ignored);
  2. ``.m.rule.suppress_notices``: ``content.msgtype == "m.notice"`` -> nothing;
  3. ``.m.rule.invite_for_me``: an invite of the user -> notify;
  4. ``.m.rule.member_event``: any other member event -> nothing;
  5. ``.m.rule.is_user_mention``: ``content["m.mentions"].user_ids`` has the user -> highlight;
  6. ``.m.rule.is_room_mention``: ``content["m.mentions"].room`` is ``true`` and the sender has
     the ``notifications.room`` power level -> highlight;
  7. ``.m.rule.tombstone`` (state key "") -> highlight;
  8. ``.m.rule.reaction``, ``.m.rule.room.server_acl``, ``.m.rule.suppress_edits`` -> nothing;

then underride rules: ``.m.rule.call`` (``m.call.invite``), ``.m.rule.encrypted_room_one_to_one``,
``.m.rule.room_one_to_one``, ``.m.rule.message`` (``m.room.message``), ``.m.rule.encrypted``
(``m.room.encrypted``) -> notify.

Counting: events after the user's read-up-to position (the further of ``m.read`` and
``m.read.private``, unthreaded or ``main``); an event the user sends resets the count
("by sending an event").  Counts are cached per (user, room) and advanced incrementally.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

NOTIFY_TYPES = frozenset({"m.room.message", "m.room.encrypted", "m.call.invite"})
# Types worth fetching when counting (everything else never notifies).
COUNTED_TYPES = NOTIFY_TYPES | {"m.room.member", "m.room.tombstone"}
SCAN_LIMIT = 300  # events looked at per room and sync at most (counts then saturate)


def push_actions(
    event_type: str,
    content: Mapping[str, Any],
    sender: str,
    state_key: str | None,
    user_id: str,
    sender_may_notify_room: Callable[[str], bool],
) -> tuple[bool, bool]:
    """(notify, highlight) for ``user_id`` under the server-default push rules."""
    if sender == user_id:
        return False, False
    if not isinstance(content, Mapping):
        content = {}
    # 2. suppress_notices
    if content.get("msgtype") == "m.notice":
        return False, False
    if event_type == "m.room.member":
        # 3. invite_for_me, 4. member_event
        return (state_key == user_id and content.get("membership") == "invite"), False
    mentions = content.get("m.mentions")
    if isinstance(mentions, Mapping):
        # 5. is_user_mention
        ids = mentions.get("user_ids")
        if isinstance(ids, list) and user_id in ids:
            return True, True
        # 6. is_room_mention
        if mentions.get("room") is True and sender_may_notify_room(sender):
            return True, True
    # 7. tombstone
    if event_type == "m.room.tombstone" and state_key == "":
        return True, True
    # 8. suppress_edits (reactions and server ACLs never reach the underride types)
    relates = content.get("m.relates_to")
    if isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace":
        return False, False
    if state_key is None and event_type in NOTIFY_TYPES:
        return True, False
    return False, False


def count_unread(
    evs: Sequence[Any],
    user_id: str,
    sender_may_notify_room: Callable[[str], bool],
    start: tuple[int, int] = (0, 0),
) -> tuple[int, int]:
    """Add the notifications of ``evs`` (oldest first) to ``start``; own events reset."""
    notif, highlight = start
    for ev in evs:
        if ev.sender == user_id:
            notif = highlight = 0
            continue
        n, h = push_actions(
            ev.type, ev.content, ev.sender, ev.state_key, user_id, sender_may_notify_room
        )
        if n:
            notif += 1
        if h:
            highlight += 1
    return notif, highlight


class UnreadCache:
    """(user, room) -> (read position, counted up to, notification count, highlight count)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._entries: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self.max_entries = max_entries

    def get(self, user_id: str, room_id: str, read_pos: int) -> tuple[int, int, int] | None:
        """(counted up to, notif, highlight) if cached for this read position."""
        entry = self._entries.get((user_id, room_id))
        if entry is None or entry[0] != read_pos:
            return None
        return entry[1], entry[2], entry[3]

    def put(
        self, user_id: str, room_id: str, read_pos: int, upto: int, notif: int, highlight: int
    ) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; counts are recomputed
        self._entries[(user_id, room_id)] = (read_pos, upto, notif, highlight)
