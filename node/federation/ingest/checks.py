"""Inbound PDUs, checks 1-3 on receipt: format, signatures, hashes.

Spec: server-server API "Checks performed on receipt of a PDU" (steps 1-3, see
``pdu_checks``), after the server policy on the sender's server and the room's server ACL
("Server Access Control Lists (ACLs)").  One PDU at a time for ``/send`` (``prepare`` hands
back its ed25519 verifications, ``check`` runs them here), or a batch fetched from a
server (outliers, backfill: ``check_batch``).  The verifications of a batch run on the
``SignatureVerifier``'s threads in chunks of ``VERIFY_CHUNK`` (``_Verdicts``).
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer

from federation.events.model import Event
from federation.room_versions import RoomVersion
from node.rooms.state_cache import RoomState

from .. import acl_check
from ..pdu_checks import Dropped, VerifyJob, prepare_format_signatures_hashes, run_verify_jobs
from ..policy import ServerPolicy
from ..verifier import SignatureVerifier, run_batch
from ._common import Outcomes, _domain, log


class Checks:
    """Steps 1-3 of received PDUs (and the policy and ACL before them)."""

    def __init__(
        self,
        *,
        policy: ServerPolicy,
        keyring: Any,
        verifier: SignatureVerifier,
        outcomes: Outcomes,
    ) -> None:
        self.policy = policy
        self.keyring = keyring  # fetches and caches the servers' signing keys
        # Step 2's ed25519 work, on worker threads (inline when it has none).
        self.verifier = verifier
        self.outcomes = outcomes

    async def check(self, origin: str, room: RoomState, pdu: dict) -> Event:
        """Policy and steps 1-3; ``Dropped`` when the PDU is not to be stored at all."""
        try:
            ev, jobs = await self.prepare(origin, room, pdu)
        except Dropped:
            self.outcomes.count("dropped")
            raise
        failure = run_verify_jobs(jobs)  # one event: cheaper than a thread hand-over
        if failure is not None:
            self.outcomes.count("dropped")
            log.info("event=pdu_dropped origin=%s reason=%s", origin, failure)
            raise Dropped(f"Signature check failed: {failure}")
        return ev

    async def prepare(
        self, origin: str, room: RoomState, pdu: dict
    ) -> tuple[Event, list[VerifyJob]]:
        """Policy and steps 1-3 but for the signature verifications themselves (returned,
        to be run before the event is used); ``Dropped`` when the PDU is not to be stored
        at all (the caller counts it)."""
        # The sender's server must be one we federate with (policy; the origin was
        # checked when the request was authenticated).
        sender_server = _domain(pdu.get("sender"))
        if sender_server is not None and not self.policy.allow_inbound(sender_server):
            raise Dropped(f"Events from {sender_server} are not accepted by this server")
        # Server ACLs (server-server API "Server Access Control Lists (ACLs)"): a PDU from a
        # sending server the room's current ACL denies is ignored, with an error.
        if not acl_check.server_allowed(room, origin):
            raise Dropped(acl_check.denied_message(origin))
        # 1.-3. format, signatures (sender's server, and others required), hashes
        try:
            ev, jobs = await prepare_format_signatures_hashes(pdu, room.room_version, self.keyring)
        except Dropped as exc:
            log.info("event=pdu_dropped origin=%s reason=%s", origin, exc.reason)
            raise
        if ev.room_id != room.room_id:
            raise Dropped("The event is not in the room it claims")
        return ev, jobs

    async def check_batch(
        self, pdus: Sequence[Any], rv: RoomVersion, origin: str, room_id: str | None, drop_log: str
    ) -> dict[str, Event]:
        """Checks 1-3 (format, signatures, hashes) of a batch of PDUs fetched from
        ``origin``, by event ID (first copy wins).  Non-objects, events whose sender's server
        the policy refuses, and (with ``room_id``) events of other rooms are skipped; check
        failures are logged as ``event=<drop_log>``.  The signatures are verified on the
        verifier's threads, in chunks, while the next PDUs are prepared."""
        verdicts = _Verdicts(self.verifier)
        prepared: list[tuple[Event, int]] = []
        for pdu in pdus:
            if not isinstance(pdu, dict):
                continue
            sender_server = _domain(pdu.get("sender"))
            if sender_server is not None and not self.policy.allow_inbound(sender_server):
                continue
            try:
                ev, jobs = await prepare_format_signatures_hashes(pdu, rv, self.keyring)
            except Dropped as exc:
                log.info("event=%s origin=%s reason=%s", drop_log, origin, exc.reason)
                continue
            if room_id is not None and ev.room_id != room_id:
                continue
            prepared.append((ev, verdicts.add(jobs)))
        verdicts.flush()
        checked: dict[str, Event] = {}
        for ev, slot in prepared:
            failure = await verdicts.get(slot)
            if failure is not None:
                log.info(
                    "event=%s origin=%s reason=Signature check failed: %s",
                    drop_log,
                    origin,
                    failure,
                )
                continue
            checked.setdefault(ev.event_id, ev)
        return checked


# Events per verification batch handed to a verifier thread: large enough that the
# hand-over is cheap per event, small enough that the threads start while the reactor is
# still preparing the rest of a 50-PDU transaction.
VERIFY_CHUNK = 8
INLINE_VERIFY_MAX = 2  # batches this small are verified on the reactor thread


class _Verdicts:
    """Step 2 verdicts of a batch of events, verified ``VERIFY_CHUNK`` events at a time on
    the verifier's threads.  ``add(jobs)`` returns a slot; ``await get(slot)`` its result
    (None: the signatures hold).  Results are awaited in any order, each chunk once."""

    def __init__(self, verifier: Any) -> None:
        self.verifier = verifier
        self._open: list[list[VerifyJob]] = []
        self._chunks: list[defer.Deferred] = []
        self._tasks: list[Any] = []  # the verifier's VerifyTask per chunk, or None
        self._results: list[list | None] = []

    def add(self, jobs: list[VerifyJob]) -> int:
        slot = len(self._chunks) * VERIFY_CHUNK + len(self._open)
        self._open.append(jobs)
        if len(self._open) >= VERIFY_CHUNK:
            self.flush()
        return slot

    def flush(self) -> None:
        if self._open:
            if not self._chunks and len(self._open) <= INLINE_VERIFY_MAX:
                # A transaction of one or two PDUs (the usual case between schools in a
                # conversation): a thread hand-over costs more than the verification.
                self._chunks.append(defer.succeed(run_batch(self._open)))
                self._tasks.append(None)
            else:
                task = self.verifier.submit(self._open)
                self._chunks.append(task.deferred)
                self._tasks.append(task)
            self._results.append(None)
            self._open = []

    async def get(self, slot: int) -> Any:
        chunk, index = divmod(slot, VERIFY_CHUNK)
        results = self._results[chunk]
        if results is None:
            if not self._chunks[chunk].called:
                self._help(chunk)
            results = self._results[chunk] = await self._chunks[chunk]
        return results[index]

    def _help(self, chunk: int) -> None:
        """About to wait for ``chunk``: run this batch's chunks that no verifier thread has
        started yet here, the last first (the threads take them from the front), until
        ``chunk`` is done or being verified by a thread."""
        for j in range(len(self._tasks) - 1, chunk - 1, -1):
            if self._chunks[chunk].called:
                return
            task = self._tasks[j]
            if task is not None:
                task.try_run_here()
