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

Modules, one per pipeline stage: ``receipt`` (``/send``, checks 1-3, batches), ``gaps``
(missing auth and prev events), ``state`` (state before, 5, 6, soft failure, commit),
``persist`` (outliers, joined rooms, backfill); ``_common`` (logger and helpers).
"""

from __future__ import annotations

from typing import Any

from .. import fed_metrics
from ..pdu_checks import signature_checker
from ..remote_fetch import RemoteEvents
from ..state_resolution import StateResolver
from ..verifier import SignatureVerifier
from ._common import MAX_STATE_FETCHES, STORE_FAILED, log
from .gaps import GapsMixin
from .persist import PersistMixin
from .receipt import ReceiptMixin
from .state import StateMixin

__all__ = ["Ingest", "MAX_STATE_FETCHES", "STORE_FAILED", "log"]


class Ingest(ReceiptMixin, StateMixin, GapsMixin, PersistMixin):
    """The inbound PDU pipeline; stages live in ``receipt``, ``gaps``, ``state`` and
    ``persist``."""

    def __init__(
        self,
        *,
        rooms: Any,
        state_store: Any,
        keyring: Any,
        client: Any,
        policy: Any,
        server_name: str,
        max_missing_events: int = 20,
        verifier: SignatureVerifier | None = None,
    ) -> None:
        self.rooms = rooms
        self.db = rooms.db
        self.state_store = state_store
        self.keyring = keyring
        self.remote = RemoteEvents(client)
        self.policy = policy
        self.server_name = server_name
        self.max_missing = max_missing_events
        self.resolver = StateResolver(rooms.get_events)
        self.is_signed_by = signature_checker(keyring)
        # Step 2's ed25519 work, on worker threads (inline when none is given).
        self.verifier = verifier if verifier is not None else SignatureVerifier(None, 0)
        self.stats = {"accepted": 0, "rejected": 0, "soft_failed": 0, "dropped": 0}

    def _count(self, outcome: str) -> None:
        self.stats[outcome] += 1
        fed_metrics.pdu(outcome)
