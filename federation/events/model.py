"""The PDU model shared by auth rules, state resolution, the node and the transport.

Spec: server-server API "PDUs"; room versions 10-12 event format.  An ``Event`` wraps the
PDU's JSON (exactly as signed, plus ``unsigned``) and its room version; it never touches I/O.
Event IDs are derived from the reference hash (``$`` + URL-safe unpadded Base64).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..room_versions import RoomVersion

StateKey = tuple[str, str]  # (type, state_key)
StateMap = dict[StateKey, str]  # a room state: state key -> event ID


class Event:
    """A PDU in a known room version.  Treat ``pdu`` as read-only.

    The field properties read the JSON with the types that the PDU format checks
    (``format.py``) guarantee for a received or built event.
    """

    __slots__ = (
        "pdu",
        "room_version",
        "_event_id",
        "rejected_reason",
        "content_hash_mismatch",
        "meta",
    )

    def __init__(
        self, pdu: dict[str, Any], room_version: RoomVersion, *, event_id: str | None = None
    ) -> None:
        self.pdu = pdu
        self.room_version = room_version
        self._event_id = event_id
        # Set by whoever persists the event: why it was rejected (None when accepted).
        self.rejected_reason: str | None = None
        # Set by the checks on receipt: the content hash did not match, so ``pdu`` is the
        # redacted copy (server-server API "Checks performed on receipt of a PDU", 3).
        self.content_hash_mismatch = False
        # The server's own bookkeeping (stream ordering, state groups...), never part of the
        # PDU: the core only carries it.  ``node/`` keeps a typed object here
        # (``node.rooms.event_meta``); None until it is first needed, so an event costs no
        # extra object on paths that never use it.
        self.meta: object | None = None

    # --- identity --------------------------------------------------------------------
    @property
    def event_id(self) -> str:
        if self._event_id is None:
            from .hashes import compute_event_id

            self._event_id = compute_event_id(self.pdu, self.room_version)
        return self._event_id

    @property
    def room_id(self) -> str:
        # Absent only from a v12 create event; the PDU format checks guarantee a string else.
        rid: str | None = self.pdu.get("room_id")
        if (
            rid is None
            and self.type == "m.room.create"
            and self.room_version.event_format.room_id_is_create_event_hash
        ):
            return "!" + self.event_id[1:]
        return rid  # type: ignore[return-value]  # present by the format checks (see above)

    # --- fields ----------------------------------------------------------------------
    @property
    def type(self) -> str:
        value: str = self.pdu["type"]
        return value

    @property
    def sender(self) -> str:
        value: str = self.pdu["sender"]
        return value

    @property
    def content(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.pdu.get("content", {})
        return value

    @property
    def state_key(self) -> str | None:
        return self.pdu.get("state_key")

    @property
    def is_state(self) -> bool:
        return "state_key" in self.pdu

    @property
    def key(self) -> StateKey:
        """(type, state_key) for a state event."""
        return (self.pdu["type"], self.pdu["state_key"])

    @property
    def prev_event_ids(self) -> list[str]:
        value: list[str] = self.pdu.get("prev_events", [])
        return value

    @property
    def auth_event_ids(self) -> list[str]:
        value: list[str] = self.pdu.get("auth_events", [])
        return value

    @property
    def depth(self) -> int:
        value: int = self.pdu.get("depth", 0)
        return value

    @property
    def origin_server_ts(self) -> int:
        value: int = self.pdu.get("origin_server_ts", 0)
        return value

    @property
    def redacts(self) -> str | None:
        """The redacted event ID: in ``content`` from v11 (protected by redaction there), top
        level before.  A top-level copy in a v11+ PDU is unsigned-by-redaction and ignored."""
        if self.room_version.redaction.v11_rules:
            value = self.content.get("redacts")
        else:
            value = self.pdu.get("redacts")
        return value if isinstance(value, str) else None

    @property
    def membership(self) -> str | None:
        return self.content.get("membership") if self.type == "m.room.member" else None

    @property
    def sender_domain(self) -> str:
        return self.sender.split(":", 1)[1]

    def __repr__(self) -> str:
        sk = f" {self.state_key!r}" if self.is_state else ""
        return f"<Event {self.event_id} {self.type}{sk} by {self.sender}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.event_id == self.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)
