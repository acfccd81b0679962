"""The ``filter`` query parameter of ``/messages`` and ``/context``: a JSON
``RoomEventFilter`` (client-server API "Filtering")."""

from __future__ import annotations

from typing import Any

from federation.canonical_json import parse_json
from node.filtering import EventFilter, parse_event_filter


def room_event_filter(req: Any) -> EventFilter | None:
    raw = req.query("filter")
    if raw is None or raw == "":
        return None
    return parse_event_filter(parse_json(raw), "filter.")
