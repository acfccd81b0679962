"""Per-room facts about the local joined members that push evaluation needs for every event,
kept between events while the room's membership and the users' rules are unchanged.

Push rules are processed "for each of the local users in the room (excluding the sender)"
(client-server API "Push Notifications" > "Server behaviour",
https://spec.matrix.org/v1.16/client-server-api/#server-behaviour-14).  Most members of a
big room (a school's announcements room) have never changed their rules: they all get the
answer of the server-default rules, decided once per event, unless the event names them.
What tells them apart -- who is local, who has rules of their own, each member's local part
and display name for the body-mention rules -- depends only on the room's member events and
on the users' rule changes, so it is computed once per membership change (the room's
``members_version``) or rule change, not once per event.
"""

from __future__ import annotations

from typing import Callable, Mapping

from federation.events.model import Event

MEMBER = "m.room.member"


class RoomMembers:
    """The local joined members of one room, split into those with the server-default rules
    and those with rules of their own."""

    __slots__ = ("room", "version", "rules_version", "local", "index", "own", "names")

    def __init__(
        self,
        room: object,
        version: int,
        rules_version: int,
        local: tuple[str, ...],
        own: frozenset[str],
        names: tuple[tuple[str, str, str | None], ...],
    ) -> None:
        self.room = room
        self.version = version
        self.rules_version = rules_version
        self.local = local  # in the room's joined-set order
        self.index = {u: i for i, u in enumerate(local)}
        self.own = own  # local members with rules of their own
        # (user ID, lower-cased local part, lower-cased display name or None)
        self.names = names


def build(
    room: object,
    version: int,
    rules_version: int,
    joined: set[str],
    state: Mapping[tuple[str, str], Event],
    suffix: str,
    has_own_rules: Callable[[str], bool],
) -> RoomMembers:
    local = tuple(u for u in joined if u.endswith(suffix))
    names = []
    for user_id in local:
        member = state.get((MEMBER, user_id))
        name = member.content.get("displayname") if member is not None else None
        lowered = name.lower() if isinstance(name, str) and name else None
        names.append((user_id, user_id[1:].split(":", 1)[0].lower(), lowered))
    own = frozenset(u for u in local if has_own_rules(u))
    return RoomMembers(room, version, rules_version, local, own, tuple(names))


def named_users(ev: Event, members: RoomMembers) -> set[str]:
    """Members the server-default rules may answer differently for than for anyone else
    (a superset: a plain substring test stands in for the word-boundary match)."""
    named: set[str] = set()
    if ev.state_key:
        named.add(ev.state_key)
    content = ev.content
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict):
        ids = mentions.get("user_ids")
        if isinstance(ids, list):
            named.update(i for i in ids if isinstance(i, str))
        return named
    body = content.get("body")
    if isinstance(body, str) and body:
        text = body.lower()
        for user_id, localpart, name in members.names:
            if localpart in text or (name is not None and name in text):
                named.add(user_id)
    return named
