"""Who each user ignores (client-server API "Ignoring Users").

https://spec.matrix.org/v1.16/client-server-api/#ignoring-users : the ``m.ignored_user_list``
global account data (``{"ignored_users": {user_id: {}}}``); "Once ignored, the client will
no longer receive events sent by that user, with the exception of state events", "Servers
must not send room invites from ignored users to clients", and "Following an update of the
``m.ignored_user_list``, the sync API for all clients should immediately start ignoring (or
un-ignoring) the user".

The lists live here, in the rooms area, because rooms (``/messages``, ``/context``,
relations), push (``/notifications``) and sync all read them; the account data store (sync)
reports every change (``set_content``) and refuses lists over ``MAX_IGNORED``.  All lists
are read once at start-up (only users who have one are kept), so deciding is one dict and
one set look-up per event, never a database read.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import orjson
from sqlalchemy import select

from federation.errors import InvalidParam
from federation.events.model import Event
from federation.identifiers import is_valid_user_id
from schema.sync import account_data

IGNORED_TYPE = "m.ignored_user_list"
MAX_IGNORED = 1000  # users one account may ignore (the account data PUT refuses more)

EMPTY: frozenset[str] = frozenset()


def parse(content: object) -> frozenset[str]:
    """The user IDs of an ``m.ignored_user_list`` content (malformed parts ignored, at most
    ``MAX_IGNORED``)."""
    users = content.get("ignored_users") if isinstance(content, Mapping) else None
    if not isinstance(users, Mapping):
        return EMPTY
    out = [u for u in users if is_valid_user_id(u)]
    return frozenset(out[:MAX_IGNORED])


def check_content(content: Mapping[str, Any]) -> None:
    """Refuse an ``m.ignored_user_list`` the server would not honour in full."""
    users = content.get("ignored_users")
    if isinstance(users, Mapping) and len(users) > MAX_IGNORED:
        raise InvalidParam(f"At most {MAX_IGNORED} users can be ignored")


def _all(conn: Any) -> dict[str, str]:
    t = account_data
    rows = conn.execute(
        select(t.c.user_id, t.c.content).where(t.c.type == IGNORED_TYPE, t.c.room_id == "")
    )
    return {r.user_id: r.content for r in rows}


def hides(event: Event, ignored: frozenset[str]) -> bool:
    """Whether ``event`` is kept from a user who ignores ``ignored``: their non-state
    events."""
    return bool(ignored) and event.sender in ignored and event.state_key is None


class IgnoredUsers:
    """``user_id -> frozenset of ignored user IDs``, complete in memory."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._lists: dict[str, frozenset[str]] = {}
        # The reverse index: sender -> the users who ignore them (push: one look-up per
        # event rather than one per member).
        self._ignorers: dict[str, set[str]] = {}

    def load_sync(self) -> None:
        """Read every list (blocking; wiring only)."""
        lists = {}
        for user_id, text in self.db.run_sync(_all).items():
            try:
                found = parse(orjson.loads(text))
            except orjson.JSONDecodeError:
                continue
            if found:
                lists[user_id] = found
        self._lists = {}
        self._ignorers = {}
        for user_id, found in lists.items():
            self._store(user_id, found)

    def of(self, user_id: str) -> frozenset[str]:
        return self._lists.get(user_id, EMPTY)

    def ignorers_of(self, sender: str) -> set[str] | None:
        """The users who ignore ``sender`` (None: nobody).  Read, never mutate."""
        return self._ignorers.get(sender)

    def set_content(self, user_id: str, content: Mapping[str, Any]) -> None:
        """The user's list changed (account data written)."""
        self._store(user_id, parse(content))

    def _store(self, user_id: str, found: frozenset[str]) -> None:
        for sender in self._lists.pop(user_id, EMPTY) - found:
            users = self._ignorers.get(sender)
            if users is not None:
                users.discard(user_id)
                if not users:
                    del self._ignorers[sender]
        if found:
            self._lists[user_id] = found
            for sender in found:
                self._ignorers.setdefault(sender, set()).add(user_id)

    def visible_to(self, user_id: str, events: Iterable[Event]) -> list[Event]:
        """``events`` without those ``user_id`` ignores."""
        ignored = self._lists.get(user_id)
        if not ignored:
            return list(events)
        return [ev for ev in events if not hides(ev, ignored)]
