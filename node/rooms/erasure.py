"""Serving an erased user's events (client-server API "Account deactivation", ``erase``).

https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3accountdeactivate :
"any users (or servers) which join the room after the erasure request are served redacted
copies of the events sent by this account.  Users which had visibility on those events
prior to the erasure are still able to see unredacted copies.  No redactions are sent".

The erasure is a row of ``erased_users`` (written by ``node.accounts.erasure`` with the
deactivation) carrying the events stream position of the moment.  An event of an erased
sender is served as it was when the history visibility rules (``visibility.is_visible``)
let the requester see it with their memberships and the room's history visibility *as they
stood at that position*; otherwise its content is the redacted form of
``federation.events.redaction``.  The stored event is not touched: it is signed, and other
servers may still need it.

The hot path pays one dict look-up of the sender; only an erased sender's events are
looked at further.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence

from sqlalchemy import select

from federation.events.model import Event
from federation.events.redaction import redacted_view
from schema.erasure import erased_users

from .event_meta import meta
from .visibility import Timeline, is_visible

Points = Sequence[tuple[int, str]]


class MembershipView(Protocol):
    """What deciding needs of the rooms service (``user_queries.UserQueries``), without a
    database round trip."""

    def cached_visibility_timelines(
        self, room_id: str, user_id: str
    ) -> tuple[Points, Points] | None: ...

    def joined_since(self, room_id: str, user_id: str) -> int | None: ...

    async def visibility_timelines(
        self, room_id: str, user_id: str
    ) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]: ...


def _all(conn: Any) -> dict[str, int]:
    return {
        r.user_id: int(r.stream_ordering)
        for r in conn.execute(select(erased_users.c.user_id, erased_users.c.stream_ordering))
    }


def _one(conn: Any, user_id: str) -> int | None:
    value = conn.execute(
        select(erased_users.c.stream_ordering).where(erased_users.c.user_id == user_id)
    ).scalar()
    return None if value is None else int(value)


def saw_before_erasure(
    event: Event, user_id: str, erased_at: int, memberships: Points, history: Points
) -> bool:
    """Whether ``user_id`` could see ``event`` with the timelines as they were at the
    erasure's stream position ``erased_at`` (pure)."""
    stream = meta(event).stream_ordering
    if stream is None or stream > erased_at:
        return False  # sent (or received) after the erasure: nobody saw it before
    mem = [p for p in memberships if p[0] <= erased_at]
    hv = [p for p in history if p[0] <= erased_at]
    return is_visible(event, user_id, Timeline(mem, None), Timeline(hv, "shared"))


def erased_content(event: Event) -> dict:
    """The content of ``event``'s redacted form (room-version rules)."""
    content = redacted_view(event.pdu, event.room_version).get("content", {})
    return dict(content)


class StateAt(Protocol):
    async def get_state_at(self, room_id: str, stream: int) -> dict[tuple[str, str], Event]: ...


async def server_was_joined(rooms: StateAt, room_id: str, origin: str, erased_at: int) -> bool:
    """Whether ``origin`` had a joined user in the room at the erasure's position: the
    spec's servers "which join the room after the erasure request are served redacted
    copies" (server-server reads: ``/event``, ``/backfill``, ``/get_missing_events``)."""
    state = await rooms.get_state_at(room_id, erased_at)
    suffix = ":" + origin
    return any(
        etype == "m.room.member" and skey.endswith(suffix) and ev.membership == "join"
        for (etype, skey), ev in state.items()
    )


class ErasedSenders:
    """The erased users of this node, in memory: ``user_id -> erasure stream position``."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.erased: dict[str, int] = {}

    def load_sync(self) -> None:
        """Read every erasure (blocking; wiring only)."""
        self.erased = self.db.run_sync(_all)

    async def refresh(self, user_id: str) -> None:
        """Pick up ``user_id``'s erasure after a deactivation (API or CLI)."""
        pos = await self.db.run(_one, user_id)
        if pos is not None:
            self.erased[user_id] = pos

    async def prepare(
        self, view: MembershipView, room_id: str, user_id: str, events: Iterable[Event]
    ) -> None:
        """Before formatting ``events`` for ``user_id`` on a path that has not read the
        user's visibility timelines (an incremental ``/sync``, ``/notifications``): read them
        if an erased sender is among the events, so ``served_content`` decides exactly
        rather than from the current membership alone."""
        erased = self.erased
        if erased and any(ev.sender in erased for ev in events):
            if view.cached_visibility_timelines(room_id, user_id) is None:
                await view.visibility_timelines(room_id, user_id)

    def served_content(
        self, event: Event, user_id: str | None, view: MembershipView
    ) -> dict | None:
        """The redacted content to serve ``user_id`` in place of ``event``'s, or None to
        serve it as it is.  The (memberships, history visibility) timelines come from the
        rooms service's cache; without them, a requester joined without a break since before
        the erasure saw everything they see now (the event already passed the visibility
        rules), and anyone else gets the redacted form: an erasure errs on the side of the
        erased user."""
        erased_at = self.erased.get(event.sender)
        if erased_at is None or user_id == event.sender:
            return None
        if user_id is not None:
            found = view.cached_visibility_timelines(event.room_id, user_id)
            if found is not None:
                if saw_before_erasure(event, user_id, erased_at, *found):
                    return None
            else:
                since = view.joined_since(event.room_id, user_id)
                stream = meta(event).stream_ordering
                if (
                    since is not None
                    and since <= erased_at
                    and stream is not None
                    and stream <= erased_at
                ):
                    return None
        return erased_content(event)
