"""``FederationSender``: which events and EDUs go to which servers, queued durably.

Spec: server-server API "PDUs" / "Transactions" (a server sends the events it originates
to the other servers in the room), "Joining Rooms" ("The resident server must also send
the event to other servers participating in the room"), "Typing Notifications",
"Receipts".

* Every LOCAL event (the sender is one of our users) committed by the rooms persister
  (``on_persisted``) is queued for each server in the room: the domains of the joined
  members, plus the target's server of a membership event (an invitee's server, a kicked
  or banned user's server, which is no longer joined after the event).
* Events we persist on behalf of a remote server as its resident (send_join,
  send_leave, send_knock) are forwarded explicitly with ``send_event_to_room``.
* Typing and public read receipts of local users go to the room's other servers as EDUs.

The queue rows and the fan-out's read position in the event stream are written in one
transaction; on start the events committed after that position are fanned out first, so
a crash between commit and queueing loses nothing and queues nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

from twisted.internet import defer

from federation.errors import NotFound
from federation.events.model import Event
from node.rooms.event_meta import meta

from . import queue
from .edus import receipt_edu, typing_edu
from .transaction_sender import TransactionSender

log = logging.getLogger("parta.federation.outbound")

MEMBER = "m.room.member"
CATCH_UP_BATCH = 500
POSITION_SAVE_DELAY_S = 1.0  # remote-only batches: the fan-out position is saved lazily


def domain_of(user_id: str) -> str:
    return user_id.partition(":")[2]


class FederationSender:
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        server_name: str,
        rooms: Any,
        policy: Any,
        transactions: TransactionSender,
    ) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.rooms = rooms
        self.policy = policy
        self.transactions = transactions
        self._pending: list[Event] = []
        self._draining = False
        self._ready = False
        self._skip: set[str] = set()
        self._position = 0
        self._position_saved = 0
        self._floor: int | None = None  # below the first event a failed batch held
        self._save_call: Any = None
        self._saving = False  # a delayed position save is being written
        self._drained: list[defer.Deferred] = []
        # room_id -> (the room in memory, its members_version, the remote servers with
        # joined members): recomputed when the room's membership changed, so fanning an
        # ordinary event out of a room of thousands costs a lookup, not a member scan.
        self._servers: dict[str, tuple[Any, int, frozenset[str]]] = {}

    # --- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Fan out what was committed after the stored position, then go live."""
        position = await self.db.run(queue.get_position)
        if position is None:  # first start: nothing older is sent
            position = await self.db.run(queue.max_stream_ordering)
            await self.db.run(queue.set_position, position)
        self._position = self._position_saved = position
        while True:
            rows = await self.db.run(queue.events_after, self._position, CATCH_UP_BATCH)
            if not rows:
                break
            local = [r[1] for r in rows if domain_of(r[5]) == self.server_name]
            evs = await self.rooms.get_events(local) if local else {}
            ordered = [evs[eid] for eid in local if eid in evs]
            await self._fan_out(ordered, position=rows[-1][0])
        self._ready = True
        await self.transactions.start()
        self._kick()

    def stop(self) -> None:
        if self._save_call is not None and self._save_call.active():
            self._save_call.cancel()
            self._save_call = None
        self.transactions.stop()

    # --- hooks ----------------------------------------------------------------------------
    def on_persisted(self, evs: Sequence[Event]) -> None:
        """Rooms persister hook (synchronous): queue the batch for the fan-out loop."""
        self._pending.extend(evs)
        self._kick()

    def skip_event(self, event_id: str) -> None:
        """Do not fan ``event_id`` out when it is persisted (e.g. our own join persisted
        from a send_join response: the resident server distributes it)."""
        self._skip.add(event_id)

    def on_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        """``TypingManager`` listener."""
        if domain_of(user_id) != self.server_name:
            return
        defer.ensureDeferred(self._edu_to_room(room_id, *typing_edu(room_id, user_id, typing)))

    def on_receipt(
        self,
        room_id: str,
        receipt_type: str,
        user_id: str,
        event_id: str,
        ts: int,
        thread_id: str | None = None,
    ) -> None:
        """``ReceiptStore`` listener."""
        if domain_of(user_id) != self.server_name:
            return
        edu = receipt_edu(room_id, receipt_type, user_id, event_id, ts, thread_id)
        if edu is not None:
            defer.ensureDeferred(self._edu_to_room(room_id, *edu))

    def destination_up(self, destination: str) -> None:
        """The remote server is reachable again (it just talked to us): catch up now."""
        self.transactions.destination_up(destination)

    # --- explicit sends -------------------------------------------------------------------
    async def destinations_for_room(self, room_id: str) -> set[str]:
        """Domains with joined members in the room, without ours."""
        try:
            room = await self.rooms.get_room(room_id)
        except NotFound:
            self._servers.pop(room_id, None)
            return set()
        return set(self._room_servers(room))

    def _room_servers(self, room: Any) -> frozenset[str]:
        """The remote servers with joined members in ``room`` (a ``RoomState``), from the
        cache while the room's membership is unchanged."""
        version = room.members_version
        hit = self._servers.get(room.room_id)
        if hit is not None and hit[0] is room and hit[1] == version:
            return hit[2]
        out = {domain_of(u) for u in room.joined}
        out.discard(self.server_name)
        servers = frozenset(out)
        self._servers[room.room_id] = (room, version, servers)
        return servers

    async def send_event_to_room(self, event: Event, exclude: Iterable[str] = ()) -> None:
        """Queue a persisted event for the room's servers except ``exclude``."""
        dests = await self._destinations_for_event(event)
        dests -= set(exclude)
        await self.send_pdu(event, dests)

    async def send_pdu(self, event: Event, destinations: Iterable[str]) -> None:
        so = meta(event).stream_ordering or 0
        rows = [
            (d, so, event.event_id)
            for d in sorted(set(destinations))
            if d != self.server_name and self._allowed(d)
        ]
        if rows:
            await self.db.run(queue.enqueue_pdus, rows)
            for d, _, _ in rows:
                self.transactions.wake(d)

    async def send_edu(
        self,
        destinations: Iterable[str],
        edu_type: str,
        content: dict,
        coalesce_key: str | None = None,
    ) -> None:
        rows = [
            (d, edu_type, content, coalesce_key)
            for d in sorted(set(destinations))
            if d != self.server_name and self._allowed(d)
        ]
        if rows:
            await self.db.run(queue.enqueue_edus, rows)
            for d, _, _, _ in rows:
                self.transactions.wake(d)

    async def flushed(self) -> None:
        """Wait until everything handed to ``on_persisted`` so far is queued (tests)."""
        if not self._draining and not self._pending:
            return
        d: defer.Deferred = defer.Deferred()
        self._drained.append(d)
        await d

    # --- internals ------------------------------------------------------------------------
    def _allowed(self, destination: str) -> bool:
        try:
            if self.policy.allow_outbound(destination):
                return True
        except Exception:  # a broken policy refuses
            log.exception("event=policy_failed destination=%s", destination)
        log.info(
            "event=federation_outbound_refused destination=%s reason=server_policy", destination
        )
        return False

    async def _edu_to_room(
        self, room_id: str, edu_type: str, content: dict, key: str | None
    ) -> None:
        try:
            dests = await self.destinations_for_room(room_id)
            await self.send_edu(dests, edu_type, content, key)
        except Exception:  # EDUs are best effort
            log.exception("event=federation_edu_queue_failed room_id=%s type=%s", room_id, edu_type)

    async def _destinations_for_event(self, ev: Event) -> set[str]:
        dests = await self.destinations_for_room(ev.room_id)
        if ev.type == MEMBER and ev.state_key and ev.state_key.startswith("@"):
            dests.add(domain_of(ev.state_key))
        dests.discard(self.server_name)
        return dests

    def _kick(self) -> None:
        if self._ready and not self._draining and not self._saving and self._pending:
            self._draining = True
            defer.ensureDeferred(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._fan_out(batch)
                except Exception:  # the position is not advanced: the
                    # next start re-reads these events from the stream.
                    log.exception("event=federation_fanout_failed events=%d", len(batch))
        finally:
            self._draining = False
            waiters, self._drained = self._drained, []
            for d in waiters:
                d.callback(None)
            self._kick()

    async def _fan_out(self, evs: Sequence[Event], position: int | None = None) -> None:
        rows: list[tuple[str, int, str]] = []
        top = position or 0
        for ev in evs:
            so = meta(ev).stream_ordering or 0
            if position is None and so and so <= self._position:
                continue  # already read by the start-up catch-up
            top = max(top, so)
            if ev.event_id in self._skip:
                self._skip.discard(ev.event_id)
                continue
            if meta(ev).outlier or domain_of(ev.sender) != self.server_name:
                continue
            for d in sorted(await self._destinations_for_event(ev)):
                if self._allowed(d):
                    rows.append((d, so, ev.event_id))
        new_position = top if top > self._position else None
        if new_position is not None:
            self._position = new_position
        if not rows:
            # Nothing to send (events of other servers): the position is saved a moment
            # later, not by a write per received batch; after a crash the start-up
            # catch-up re-reads those events and finds nothing local, as here.
            if new_position is not None:
                self._save_position_later()
            return
        saveable = self._saveable(self._position)
        try:
            await self.db.run(queue.enqueue_pdus, rows, saveable)
        except Exception:
            # These events are not queued: no position at or past them may be saved in this
            # process's life, so the next start's catch-up reads them again.
            floor = min(so for _, so, _ in rows) - 1
            self._floor = floor if self._floor is None else min(self._floor, floor)
            raise
        self._position_saved = max(self._position_saved, saveable)
        for d in sorted({r[0] for r in rows}):
            self.transactions.wake(d)

    def _save_position_later(self) -> None:
        if self._save_call is None:
            self._save_call = self.clock.call_later(POSITION_SAVE_DELAY_S, self._save_position)

    def _saveable(self, position: int) -> int:
        """``position``, or less when a batch failed to queue (see ``_fan_out``)."""
        return position if self._floor is None else min(position, self._floor)

    def _save_position(self) -> defer.Deferred:
        self._save_call = None
        position = self._saveable(self._position)
        if position <= self._position_saved:
            return defer.succeed(None)
        if self._draining or not self._ready:
            # A batch (or the start-up catch-up) may be queueing rows at this position
            # right now; a separate write could commit before them (or, if older, after
            # them).  Position writes stay one at a time: try again later.
            self._save_position_later()
            return defer.succeed(None)
        self._saving = True  # and no batch starts until this write is done

        def saved(_: Any) -> None:
            self._position_saved = max(self._position_saved, position)

        def failed(f: Any) -> None:
            log.warning("event=fanout_position_save_failed error=%s", f.getErrorMessage())

        def done(_: Any) -> None:
            self._saving = False
            self._kick()

        d = defer.ensureDeferred(self.db.run(queue.set_position, position))
        return d.addCallbacks(saved, failed).addBoth(done)
