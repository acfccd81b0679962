"""Recording an erasure (client-server API "Account deactivation", ``erase: true``).

https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3accountdeactivate :
"any users (or servers) which join the room after the erasure request are served redacted
copies of the events sent by this account.  Users which had visibility on those events
prior to the erasure are still able to see unredacted copies" and "the server should
additionally erase any non-event data associated with the user, such as account data".

Written in the deactivation's own transaction (``store.deactivate_user``), so the CLI, which
works on the database while the node may run, records it the same way.  The row keeps the
events stream position of the moment: serving events is decided against it
(``node.rooms.erasure``), not against clocks that remote events may lie about.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, insert, select

from schema.erasure import erased_users
from schema.events import events
from schema.sync import account_data


def record_erasure(conn: Any, user_id: str, now_ms: int | None = None) -> None:
    """Store the erasure (once: a second erase keeps the first position) and delete the
    user's account data (global and per room)."""
    stream = int(
        conn.execute(select(func.coalesce(func.max(events.c.stream_ordering), 0))).scalar()
    )
    values = {
        "user_id": user_id,
        "erased_ts": int(time.time() * 1000) if now_ms is None else now_ms,
        "stream_ordering": stream,
    }
    known = select(erased_users.c.user_id).where(erased_users.c.user_id == user_id)
    if conn.execute(known).first() is None:
        conn.execute(insert(erased_users).values(**values))
    conn.execute(delete(account_data).where(account_data.c.user_id == user_id))
