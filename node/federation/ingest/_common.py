"""Shared pieces of the inbound PDU pipeline (server-server API "Checks performed on
receipt of a PDU"): the logger, limits and small PDU helpers used by every stage."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from twisted.internet import defer

    from federation.events.model import Event
    from federation.room_versions import RoomVersion
    from node.rooms.state_cache import RoomState
    from node.rooms.state_store import StateMap

    from ..remote_fetch import RemoteEvents
    from ..state_resolution import StateResolver
    from ..verifier import SignatureVerifier

log = logging.getLogger("parta.federation.ingest")

MAX_STATE_FETCHES = 3  # prev events whose state we ask for, per PDU
_NONE = object()  # "looked up: not stored"
STORE_FAILED = "Internal error while storing the event"  # a PDU result


def _depth(pdu: Any) -> int:
    d = pdu.get("depth") if isinstance(pdu, dict) else None
    return d if isinstance(d, int) and not isinstance(d, bool) else 0


def _domain(user_id: Any) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return user_id.split(":", 1)[1]
    return None


class IngestParts:
    """What the pipeline's stages (the mixins of ``Ingest``) share: the attributes that
    ``Ingest.__init__`` sets and the methods one stage calls on another.

    Declarations for the type checker only: nothing here exists at run time, every name
    resolves on the ``Ingest`` instance, so the stages stay separate modules."""

    rooms: Any  # the rooms service (node.rooms), its DB and event cache
    db: Any
    state_store: Any
    keyring: Any
    remote: RemoteEvents
    policy: Any  # the roster policy: which servers may take part
    server_name: str
    max_missing: int
    resolver: StateResolver
    is_signed_by: Callable[[Event, str], bool]
    verifier: SignatureVerifier
    stats: dict[str, int]

    if TYPE_CHECKING:

        def _count(self, outcome: str) -> None: ...

        async def process_pdu(
            self, origin: str, room: RoomState, pdu: dict, *, fetch_missing: bool = True
        ) -> str | None: ...

        async def _check_batch(
            self,
            pdus: Sequence[Any],
            rv: RoomVersion,
            origin: str,
            room_id: str | None,
            drop_log: str,
        ) -> dict[str, Event]: ...

        async def _auth_events(
            self, origin: str, room: RoomState, ev: Event
        ) -> dict[str, Event]: ...

        async def _fill_prev_gaps(self, origin: str, room: RoomState, ev: Event) -> None: ...

        @staticmethod
        def _state_map(
            rv: RoomVersion, state_pdus: Sequence[dict], pool: Mapping[str, Event]
        ) -> StateMap: ...

        async def _state_events(
            self, ids: Mapping[tuple[str, str], str], keys: Sequence[tuple[str, str]]
        ) -> dict[tuple[str, str], Event]: ...

        async def _commit(
            self,
            room: RoomState,
            ev: Event,
            rejected: str | None,
            auth_map: Mapping[str, Event] | None = None,
            *,
            replaces_outlier: bool,
            memo_key: tuple | None = None,
            auth_memo: dict | None = None,
        ) -> tuple[defer.Deferred | None, str | None]: ...

        async def persist_outlier_and_state(
            self,
            room_version: RoomVersion | str,
            state_pdus: Sequence[dict],
            auth_chain_pdus: Sequence[dict],
            origin: str,
            *,
            room_id: str | None = None,
            new_room: dict | None = None,
        ) -> dict[str, Event]: ...
