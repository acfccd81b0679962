"""Inbound PDUs: the checks on receipt, missing events, state, and persistence.

Spec: server-server API "Checks performed on receipt of a PDU" (steps 1-6, see
``pdu_checks``), "Rejection" (a rejected event is stored but neither shown to clients nor
used as a prev event, and the state is calculated as if it were not there), "Soft failure"
(passes the state before it, fails the current state: stored, takes part in state
resolution, not shown, not a forward extremity), "Backfilling and retrieving missing
events" (``get_missing_events`` for unknown ``prev_events``), "Retrieving events"
(``/state`` at an event whose predecessors cannot be fetched), "Retrieving event
authorisation information" (``/event_auth`` for unknown ``auth_events``), "Room State
Resolution" (forks are merged with the room version's algorithm).

``Ingest`` API (the membership handshakes call the last two when joining a remote room):

* ``await receive_pdus(origin, pdus) -> {event_id: {} | {"error": str}}``;
* ``await persist_outlier_and_state(room_version, state_pdus, auth_chain_pdus, origin,
  room_id=None) -> {event_id: Event}``: checks (1-4) and stores events as outliers;
* ``await persist_joined_room(room_version, join_pdu, state_pdus, auth_chain_pdus, origin)
  -> room_id``: a ``send_join`` response: the state and auth chain as outliers, then the
  join event as the room's first (or newest) timeline event with that state before it;
* ``await persist_backfilled(origin, room_id, pdus) -> [Event]``: history from
  ``/backfill`` (checks 1-4), stored below every stream ordering of the room so
  ``/messages`` pages back into it; current state and extremities do not change.

Work per PDU, in spec order: policy (sender's server) -> 1-3 format, signatures, hashes ->
4 auth events (fetched with ``/event_auth`` when missing) -> missing prev events (fetched
before taking the room lock) -> under the room's lock: state before (the prev events'
states, resolved when they differ) -> 5 -> 6 -> new state groups, current state and
forward extremities -> queued with the rooms persister (same batches as local events).

``Ingest`` is a facade over one collaborator per pipeline stage, each a class of its own
module that is handed exactly what it uses: ``Checks`` (``checks``: policy, ACL, 1-3, one
PDU or a batch), ``Persist`` (``persist``: outliers, joined rooms, backfill; uses
``Checks``), ``Gaps`` (``gaps``: missing auth events, stored through ``Persist``, and
missing prev events), ``StateCommit`` (``state``: state before, 5, 6, soft failure,
commit) and ``Receipt`` (``receipt``: ``/send`` and the per-PDU driver over the others);
``_common`` holds the logger, the outcome counter and small helpers.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer

from federation.events.model import Event
from federation.room_versions import RoomVersion
from node.rooms.state_cache import RoomState

from ..pdu_checks import signature_checker
from ..policy import ServerPolicy
from ..remote_fetch import RemoteEvents
from ..state_resolution import StateResolver
from ..verifier import SignatureVerifier
from ._common import MAX_STATE_FETCHES, STORE_FAILED, Outcomes, log
from .checks import Checks
from .gaps import Gaps
from .persist import Persist
from .receipt import PreparedPdus, Receipt
from .state import StateCommit

__all__ = ["Ingest", "MAX_STATE_FETCHES", "STORE_FAILED", "log"]


class Ingest:
    """The inbound PDU pipeline: builds its stages (module docstring) and answers for
    them; what the rest of the node calls is here."""

    def __init__(
        self,
        *,
        rooms: Any,
        state_store: Any,
        keyring: Any,
        client: Any,
        policy: ServerPolicy,
        server_name: str,
        max_missing_events: int = 20,
        verifier: SignatureVerifier | None = None,
    ) -> None:
        self.rooms = rooms
        self.state_store = state_store
        self.server_name = server_name
        self.resolver = StateResolver(rooms.get_events)
        self.outcomes = Outcomes()
        is_signed_by = signature_checker(keyring)
        remote = RemoteEvents(client)
        self.checks = Checks(
            policy=policy,
            keyring=keyring,
            # Step 2's ed25519 work, on worker threads (inline when none is given).
            verifier=verifier if verifier is not None else SignatureVerifier(None, 0),
            outcomes=self.outcomes,
        )
        self.persist = Persist(
            rooms=rooms,
            state_store=state_store,
            keyring=keyring,
            remote=remote,
            checks=self.checks,
            is_signed_by=is_signed_by,
        )
        self.gaps = Gaps(
            rooms=rooms,
            state_store=state_store,
            keyring=keyring,
            remote=remote,
            policy=policy,
            is_signed_by=is_signed_by,
            persist=self.persist,
            max_missing=max_missing_events,
        )
        self.state = StateCommit(
            rooms=rooms,
            state_store=state_store,
            resolver=self.resolver,
            is_signed_by=is_signed_by,
            outcomes=self.outcomes,
        )
        self.receipt = Receipt(
            rooms=rooms,
            state_store=state_store,
            checks=self.checks,
            gaps=self.gaps,
            state=self.state,
            is_signed_by=is_signed_by,
            outcomes=self.outcomes,
        )

    @property
    def stats(self) -> dict[str, int]:
        """PDUs accepted, rejected, soft-failed and dropped since start."""
        return self.outcomes.stats

    # --- /send (receipt.py) ---------------------------------------------------------------
    async def receive_pdus(self, origin: str, pdus: Sequence[Any]) -> dict[str, dict]:
        return await self.receipt.receive_pdus(origin, pdus)

    async def prepare_pdus(self, origin: str, pdus: Sequence[Any]) -> PreparedPdus:
        return await self.receipt.prepare_pdus(origin, pdus)

    async def process_prepared(
        self, prepared: PreparedPdus, statuses: dict
    ) -> tuple[dict[str, dict], list[tuple[str, defer.Deferred]]]:
        return await self.receipt.process_prepared(prepared, statuses)

    async def written(
        self, results: dict[str, dict], writes: Sequence[tuple[str, defer.Deferred]], origin: str
    ) -> dict[str, dict]:
        return await self.receipt.written(results, writes, origin)

    async def process_pdu(
        self, origin: str, room: RoomState, pdu: dict, *, fetch_missing: bool = True
    ) -> str | None:
        return await self.receipt.process_pdu(origin, room, pdu, fetch_missing=fetch_missing)

    # --- events fetched in bulk (persist.py) ----------------------------------------------
    async def persist_outlier_and_state(
        self,
        room_version: RoomVersion | str,
        state_pdus: Sequence[dict],
        auth_chain_pdus: Sequence[dict],
        origin: str,
        *,
        room_id: str | None = None,
        new_room: dict | None = None,
    ) -> dict[str, Event]:
        return await self.persist.persist_outlier_and_state(
            room_version, state_pdus, auth_chain_pdus, origin, room_id=room_id, new_room=new_room
        )

    async def persist_joined_room(
        self,
        room_version: RoomVersion | str,
        join_pdu: dict,
        state_pdus: Sequence[dict],
        auth_chain_pdus: Sequence[dict],
        origin: str,
    ) -> str:
        return await self.persist.persist_joined_room(
            room_version, join_pdu, state_pdus, auth_chain_pdus, origin
        )

    async def persist_backfilled(
        self, origin: str, room_id: str, pdus: Sequence[Any]
    ) -> list[Event]:
        return await self.persist.persist_backfilled(origin, room_id, pdus)
