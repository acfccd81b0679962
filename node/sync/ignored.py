"""``/sync`` and ignored users (client-server API "Ignoring Users",
https://spec.matrix.org/v1.16/client-server-api/#ignoring-users).

"Following an update of the ``m.ignored_user_list``, the sync API for all clients should
immediately start ignoring (or un-ignoring) the user": the account data store hands every
write of the list to the rooms area's ``IgnoredUsers`` (``attach``), and each ``/sync``
computation reads the user's set once (``SyncRun.ignored``).  Then:

- timelines (joined and left rooms) leave out the ignored senders' non-state events, inside
  the timeline filter, so a timeline still fills up to its limit ("Servers must still send
  state events sent by ignored users to clients");
- invites sent by ignored users are not listed ("Servers must not send room invites from
  ignored users to clients"); the invite stays, so un-ignoring shows it again.

"Clients are responsible for determining if they should hide previously sent events or to
start a new sync stream": the server does not rewind anything; events sent while a user was
ignored are not replayed after un-ignoring, as the spec says ("it should not send events
that were missed while the user was ignored"), until the client syncs afresh.
"""

from __future__ import annotations

from typing import Any, Callable

from federation.events.model import Event
from node.rooms.ignored import IGNORED_TYPE, check_content, hides


def attach(account_data: Any, rooms: Any) -> None:
    """Keep the rooms area's lists current and refuse lists it could not honour."""
    account_data.checks[IGNORED_TYPE] = check_content
    account_data.watchers[IGNORED_TYPE] = rooms.ignored.set_content


def without_ignored(
    allow: Callable[[Event], bool], ignored: frozenset[str]
) -> Callable[[Event], bool]:
    """``allow`` that also refuses the ignored senders' non-state events."""
    if not ignored:
        return allow
    return lambda ev: not hides(ev, ignored) and allow(ev)


def hidden_invite(invite: Event, ignored: frozenset[str]) -> bool:
    """An invite (the user's member event) sent by someone they ignore."""
    return bool(ignored) and invite.sender in ignored
