"""Sync stream tokens (client-server API "Syncing": ``since`` / ``next_batch`` / ``prev_batch``).

A sync token is the position of a client in several independent streams, written
``s<events>_<typing>_<receipts>_<account_data>_<presence>_<to_device>_<device_lists>``, e.g.
``s1234_5_17_3_2_9_4``:

- ``events``: the ``stream_ordering`` of the last event included (``events`` table);
- ``typing``: the in-memory typing serial (resets when the node restarts; a ``since`` ahead of the
  current serial is treated as 0, i.e. the client gets the current typing state again);
- ``receipts``: ``receipts.stream_id``;
- ``account_data``: ``account_data.stream_id``;
- ``presence``: the in-memory presence serial (``node/sync/presence.py``; restarts like typing);
- ``to_device``: ``e2ee_to_device.stream_id`` (a device's messages up to it are acknowledged);
- ``device_lists``: ``e2ee_device_list_stream.stream_id`` (``node/e2ee/device_lists.py``).

Trailing parts may be missing (an older, shorter token: they read as 0).  ``prev_batch`` tokens
for ``/rooms/{roomId}/messages`` use only the events part, ``s<stream_ordering>``; a full sync
token is equally valid there (``events_position`` reads its events part).  A token names the
position *after* the event with that stream ordering: paging backwards from ``s12`` starts with
event 12, syncing from ``s12`` returns events after 12.

Used by ``/sync`` (``node.sync``) and by room pagination and ``/members`` (``node.rooms``), so
this module sits below both areas rather than inside either.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from federation.errors import InvalidParam

STREAMS = (
    "events",
    "typing",
    "receipts",
    "account_data",
    "presence",
    "to_device",
    "device_lists",
)


@dataclass(frozen=True)
class StreamToken:
    events: int = 0
    typing: int = 0
    receipts: int = 0
    account_data: int = 0
    presence: int = 0
    to_device: int = 0
    device_lists: int = 0

    def __str__(self) -> str:
        return "s" + "_".join(str(getattr(self, name)) for name in STREAMS)

    def copy_with(self, **changes: int) -> "StreamToken":
        return replace(self, **changes)

    def advanced_past(self, other: "StreamToken") -> bool:
        """True if any stream of ``self`` is ahead of ``other``."""
        return any(getattr(self, f.name) > getattr(other, f.name) for f in fields(self))

    def max(self, other: "StreamToken") -> "StreamToken":
        return StreamToken(*(max(getattr(self, n), getattr(other, n)) for n in STREAMS))


def _parts(token: str, what: str) -> list[int]:
    if not isinstance(token, str) or len(token) < 2 or token[0] != "s" or len(token) > 200:
        raise InvalidParam(f"Invalid {what} token")
    out = []
    for part in token[1:].split("_"):
        # isdigit() also accepts non-ASCII digits; require plain ASCII 0-9.
        if not part or not part.isascii() or not part.isdigit() or len(part) > 18:
            raise InvalidParam(f"Invalid {what} token")
        out.append(int(part))
    return out


def parse_sync_token(token: str) -> StreamToken:
    """Parse a ``since`` token; any malformed token is 400 ``M_INVALID_PARAM``."""
    parts = _parts(token, "sync")
    if len(parts) > len(STREAMS):
        raise InvalidParam("Invalid sync token")
    return StreamToken(*parts)


def events_position(token: str) -> int:
    """The events part of a sync or pagination token (``s12`` or ``s12_4_7_3``)."""
    parts = _parts(token, "pagination")
    if len(parts) > len(STREAMS):
        raise InvalidParam("Invalid pagination token")
    return parts[0]


def events_token(stream_ordering: int) -> str:
    """A ``prev_batch`` / pagination token for a position in the events stream."""
    return f"s{max(0, stream_ordering)}"
