"""Which thread an event belongs to, for threaded notification counts (client-server API
"Receiving notifications", https://spec.matrix.org/v1.16/client-server-api/#receiving-notifications).

An event with an ``m.thread`` relation belongs to the thread of its root; anything else to
the main timeline, ``"main"``.  (The spec suggests following other relations up to three
hops to find a thread; the events that would need it -- reactions, edits -- do not notify
under the default rules, so one hop is enough here.)
"""

from __future__ import annotations

from typing import Any, Mapping

MAIN = "main"


def thread_of(content: Mapping[str, Any] | Any) -> str:
    if not isinstance(content, Mapping):
        return MAIN
    rel = content.get("m.relates_to")
    if isinstance(rel, Mapping) and rel.get("rel_type") == "m.thread":
        root = rel.get("event_id")
        if isinstance(root, str) and root.startswith("$") and len(root) <= 255:
            return root
    return MAIN
