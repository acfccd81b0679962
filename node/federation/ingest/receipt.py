"""Inbound PDUs, receipt: ``/send`` transactions and the per-PDU pipeline driver.

Spec: server-server API "Checks performed on receipt of a PDU" (steps 1-3 in ``checks``;
step 4 here, fetching missing auth and prev events through ``gaps``; under the room's
lock, 5-6 in ``state``), "Transactions" (per-PDU results of ``/send``).
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer

from federation.errors import NotFound
from federation.events.model import Event
from node.rooms.state_cache import RoomState

from .. import store
from ..pdu_checks import CREATE_KEY, Dropped, check_against_auth_events
from ..verifier import SignatureVerifier
from ._common import _NONE, STORE_FAILED, Outcomes, SignedBy, _depth, log
from .checks import Checks, _Verdicts
from .gaps import Gaps
from .state import StateCommit


class Receipt:
    """``receive_pdus`` and ``process_pdu``: each PDU through checks 1-3 (``checks``),
    step 4 with the gaps filled (``gaps``) and, under the room's lock, 5-6 and the
    hand-over to the persister (``state``)."""

    def __init__(
        self,
        *,
        rooms: Any,
        state_store: Any,
        checks: Checks,
        gaps: Gaps,
        state: StateCommit,
        is_signed_by: SignedBy,
        outcomes: Outcomes,
    ) -> None:
        self.rooms = rooms  # node.rooms.RoomService: rooms, events, the persister
        self.db = rooms.db
        self.state_store = state_store
        self.checks = checks
        self.gaps = gaps
        self.state = state
        self.is_signed_by = is_signed_by
        self.outcomes = outcomes

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
        prepared = PreparedPdus(origin, self.checks.verifier)
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
                ev, jobs = await self.checks.prepare(origin, room, pdu)
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
                    self.outcomes.count("dropped")
                else:
                    failure = await prepared.verdicts.get(it.verdict)
                    if failure is not None:
                        self.outcomes.count("dropped")
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
            ev = await self.checks.check(origin, room, pdu)
        except Dropped as exc:
            return exc.reason
        outcome, d = await self._process_checked(origin, room, ev, fetch_missing=fetch_missing)
        if d is not None:
            self.rooms.persister.flush()  # maybe under a transaction's hold
            await d
        return outcome

    async def _process_fetched(self, origin: str, room: RoomState, pdu: dict) -> None:
        """A missing prev event ``get_missing_events`` brought: processed like a received
        one, without fetching what it misses in turn."""
        await self.process_pdu(origin, room, pdu, fetch_missing=False)

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
            self.outcomes.count("dropped")
            return "A room's m.room.create event cannot be received into the room", None

        # 4. auth rules against the event's own auth events
        auth_map = await self.gaps.auth_events(origin, room, ev)
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
            await self.gaps.fill_prev_gaps(origin, room, ev, self._process_fetched)
        async with room.lock:
            d, outcome = await self.state.commit(
                room,
                ev,
                rejected,
                auth_map,
                memo_key=memo_key,
                auth_memo=auth_memo,
                replaces_outlier=status is not None,
            )
        return outcome, d


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

    def __init__(self, origin: str, verifier: SignatureVerifier) -> None:
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
