"""Inbound PDUs, receipt: ``/send`` transactions and the per-PDU pipeline driver.

Spec: server-server API "Checks performed on receipt of a PDU" (steps 1-3: format,
signatures, hashes, see ``pdu_checks``; then step 4 and, under the room's lock, 5-6 in
``state``), "Transactions" (per-PDU results of ``/send``).  Also the batch form of steps
1-3 for events fetched from a server (outliers, backfill).
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer

from federation.errors import NotFound
from federation.events.model import Event
from federation.room_versions import RoomVersion
from node.rooms.state_cache import RoomState

from .. import acl_check, store
from ..pdu_checks import (
    CREATE_KEY,
    Dropped,
    VerifyJob,
    check_against_auth_events,
    prepare_format_signatures_hashes,
    run_verify_jobs,
)
from ..verifier import run_batch
from ._common import _NONE, STORE_FAILED, IngestParts, _depth, _domain, log


class ReceiptMixin(IngestParts):
    """``receive_pdus``, ``process_pdu`` and the checks on receipt (part of ``Ingest``)."""

    # ======================================================================================
    # /send
    # ======================================================================================
    async def receive_pdus(self, origin: str, pdus: Sequence[Any]) -> dict[str, dict]:
        """Process a transaction's PDUs; per-PDU results keyed by event ID.  PDUs of rooms
        we are not in (their room version is unknown, so is their ID) get no entry.
        (``prepare_pdus`` + ``event_status`` + ``process_prepared`` + the writes.)"""
        prepared = await self.prepare_pdus(origin, pdus)
        statuses = await self.db.read(store.event_status, prepared.event_ids())
        results, writes = await self.process_prepared(prepared, statuses)
        return await self.written(results, writes, origin)

    async def prepare_pdus(self, origin: str, pdus: Sequence[Any]) -> "PreparedPdus":
        """Policy and steps 1 and 3 of a transaction's PDUs, PDU by PDU; their ed25519
        verifications (step 2) go to the verifier's threads in chunks while the reactor
        prepares the next PDUs.  Nothing is stored or counted yet."""
        prepared = PreparedPdus(origin, self.verifier)
        for pdu in pdus:
            if not isinstance(pdu, dict) or not isinstance(pdu.get("room_id"), str):
                continue
            room_id = pdu["room_id"]
            room = prepared.rooms.get(room_id)
            if room is None:
                try:
                    room = prepared.rooms[room_id] = await self.rooms.get_room(room_id)
                except NotFound:
                    log.info("event=pdu_for_unknown_room origin=%s room=%s", origin, room_id)
                    continue
            item = _Item(_depth(pdu))
            try:
                ev, jobs = await self._prepare(origin, room, pdu)
                item.ev, item.event_id = ev, ev.event_id
                item.verdict = prepared.verdicts.add(jobs)
            except Dropped as exc:
                item.error = exc.reason
                try:
                    item.event_id = Event(pdu, room.room_version).event_id
                except Exception:  # noqa: BLE001 - too malformed to even have an ID
                    log.info("event=pdu_without_id origin=%s room=%s", origin, room_id)
                    continue
            prepared.by_room.setdefault(room_id, []).append(item)
        prepared.verdicts.flush()
        return prepared

    async def process_prepared(
        self, prepared: "PreparedPdus", statuses: dict
    ) -> tuple[dict[str, dict], list[tuple[str, defer.Deferred]]]:
        """Steps 2 (the verdicts), 4-6 and the hand-over to the persister, room by room in
        depth order: (per-PDU results, [(event ID, Deferred of its write)]).
        ``statuses``: ``store.event_status`` of ``prepared.event_ids()``."""
        origin = prepared.origin
        results: dict[str, dict] = {}
        pending: list[tuple[str, defer.Deferred]] = []
        auth_memo: dict = {}
        for room_id, items in prepared.by_room.items():
            items.sort(key=lambda it: it.depth)
            for it in items:
                if it.event_id in results:
                    continue  # a second copy of one event: the first one's result
                error, d = it.error, None
                if it.ev is None:
                    self._count("dropped")
                else:
                    failure = await prepared.verdicts.get(it.verdict)
                    if failure is not None:
                        self._count("dropped")
                        error = f"Signature check failed: {failure}"
                        log.info("event=pdu_dropped origin=%s reason=%s", origin, error)
                    else:
                        try:
                            error, d = await self._process_checked(
                                origin,
                                prepared.rooms[room_id],
                                it.ev,
                                fetch_missing=True,
                                status=statuses.get(it.event_id, _NONE),
                                auth_memo=auth_memo,
                            )
                        except Exception:  # noqa: BLE001 - one PDU must not fail the rest
                            log.exception(
                                "event=pdu_failed origin=%s event_id=%s", origin, it.event_id
                            )
                            error, d = "Internal error while processing the event", None
                results[it.event_id] = {} if error is None else {"error": error}
                if d is not None:
                    pending.append((it.event_id, d))
        return results, pending

    async def written(
        self, results: dict[str, dict], writes: Sequence[tuple[str, defer.Deferred]], origin: str
    ) -> dict[str, dict]:
        """Wait for the writes ``process_prepared`` handed over; a failed one turns its
        PDU's result into an error."""
        self.rooms.persister.flush()
        if not writes:
            return results
        # One wait for all of them (not a coroutine resumption per event).
        outcomes = await defer.DeferredList([d for _, d in writes], consumeErrors=True)
        for (event_id, _), (ok, value) in zip(writes, outcomes, strict=True):
            if not ok:
                log.error(
                    "event=pdu_persist_failed origin=%s event_id=%s error=%s",
                    origin,
                    event_id,
                    value.getErrorMessage(),
                )
                results[event_id] = {"error": STORE_FAILED}
        return results

    async def process_pdu(
        self, origin: str, room: RoomState, pdu: dict, *, fetch_missing: bool = True
    ) -> str | None:
        """All checks for one PDU of a room we are in, and its persistence; None when it
        was accepted (or soft-failed, or already known), else why it was dropped or
        rejected."""
        try:
            ev = await self._check(origin, room, pdu)
        except Dropped as exc:
            return exc.reason
        outcome, d = await self._process_checked(origin, room, ev, fetch_missing=fetch_missing)
        if d is not None:
            self.rooms.persister.flush()  # maybe under a transaction's hold
            await d
        return outcome

    async def _check(self, origin: str, room: RoomState, pdu: dict) -> Event:
        """Policy and steps 1-3; ``Dropped`` when the PDU is not to be stored at all."""
        try:
            ev, jobs = await self._prepare(origin, room, pdu)
        except Dropped:
            self._count("dropped")
            raise
        failure = run_verify_jobs(jobs)  # one event: cheaper than a thread hand-over
        if failure is not None:
            self._count("dropped")
            log.info("event=pdu_dropped origin=%s reason=%s", origin, failure)
            raise Dropped(f"Signature check failed: {failure}")
        return ev

    async def _prepare(
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

    async def _process_checked(
        self,
        origin: str,
        room: RoomState,
        ev: Event,
        *,
        fetch_missing: bool,
        status: Any = None,
        auth_memo: dict | None = None,
    ) -> tuple[str | None, defer.Deferred | None]:
        """Steps 4-6 and persistence of a checked event, without waiting for the write:
        (outcome, Deferred of the write).  ``status``: the stored event's
        ``event_status`` when already looked up (``_NONE``: not stored), None to look it
        up here.  ``auth_memo``: step 4 outcomes of this batch (see ``_auth_memo_key``)."""
        if self.state_store.known_groups([ev.event_id]):
            return None, None  # processed moments ago (the write may still be queued)
        if status is None:
            status = (await self.db.run(store.event_status, [ev.event_id])).get(ev.event_id)
        elif status is _NONE:
            status = None
        if status is not None and (status[2] or status[1] or not status[0]):
            return None, None  # already processed (or rejected before): nothing to do
        if ev.type == "m.room.create":
            self._count("dropped")
            return "A room's m.room.create event cannot be received into the room", None

        # 4. auth rules against the event's own auth events
        auth_map = await self._auth_events(origin, room, ev)
        memo_key = _auth_memo_key(ev) if auth_memo is not None else None
        if memo_key is not None and auth_memo is not None and memo_key in auth_memo:
            rejected = auth_memo[memo_key]
        else:
            rejected = check_against_auth_events(
                ev, auth_map, room.state.get(CREATE_KEY), self.is_signed_by
            )
            if (
                memo_key is not None
                and auth_memo is not None
                and len(auth_map) == len(ev.auth_event_ids)
            ):
                auth_memo[memo_key] = rejected
        # Missing prev events: fetched before taking the room's lock.
        if fetch_missing:
            await self._fill_prev_gaps(origin, room, ev)
        async with room.lock:
            d, outcome = await self._commit(
                room,
                ev,
                rejected,
                auth_map,
                memo_key=memo_key,
                auth_memo=auth_memo,
                replaces_outlier=status is not None,
            )
        return outcome, d

    async def _check_batch(
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

# Non-state events of these types have auth rules that read their content or state key
# (or are decided by rule 1): never memoised.
_NOT_MEMOISED = frozenset(
    ("m.room.create", "m.room.member", "m.room.power_levels", "m.room.third_party_invite")
)


def _auth_memo_key(ev: Event) -> tuple | None:
    """Step 4 for a non-state event of an ordinary type reads only its type, sender, room
    and auth events (the rules never look at its content), so within one transaction -
    where those auth events cannot change - events agreeing on these share the outcome."""
    if ev.is_state or ev.type in _NOT_MEMOISED:
        return None
    return (ev.type, ev.sender, ev.room_id, tuple(ev.auth_event_ids))


class PreparedPdus:
    """A transaction's PDUs after ``prepare_pdus``: by room, with their pending verdicts."""

    def __init__(self, origin: str, verifier: Any) -> None:
        self.origin = origin
        self.rooms: dict[str, RoomState] = {}
        self.by_room: dict[str, list[_Item]] = {}
        self.verdicts = _Verdicts(verifier)

    def event_ids(self) -> list[str]:
        """The IDs of the PDUs that passed the checks so far (to look their status up)."""
        return [it.event_id for items in self.by_room.values() for it in items if it.ev is not None]


class _Item:
    """One PDU of a transaction on its way through the pipeline."""

    __slots__ = ("depth", "event_id", "ev", "error", "verdict")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.event_id: str = ""
        self.ev: Event | None = None
        self.error: str | None = None
        self.verdict = -1


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
