"""Bundled aggregations (``unsigned.m.relations``) and the child/thread listings.

Spec: client-server API "Aggregations of child events"
(https://spec.matrix.org/v1.16/client-server-api/#aggregations-of-child-events):
``m.thread`` {``latest_event``, ``count``, ``current_user_participated``} ("Server-side
aggregation of m.thread relationships"), ``m.replace`` = the most recent *valid*
replacement, served as a normal event, and never on a redacted original ("Server-side
aggregation of m.replace relationships"), ``m.reference`` {``chunk``: [{``event_id``}]}.
State events get no bundle.  The ``latest_event`` of a thread carries its own bundle.

Bundles are added to events *after* they are formatted (``add_bundles`` on the served
dicts), so every serving path -- /sync, /messages, /context, /event, /relations,
/threads -- costs one call and the formatting code stays synchronous.

Cost: what the database says about a parent (``ParentRows``) is cached per event ID,
non-empty answers and "no children" apart.  An event just persisted has no children yet
(its ID is new), so it is known empty at once: a live /sync of new messages does no
database read for aggregations.  A new relation drops its parent's entry; a redaction
drops every non-empty entry (it can only remove children).  A read that overlapped a
change is used but not cached (generation counter).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Protocol, Sequence

from federation.errors import MatrixError, NotFound
from federation.events.model import Event

from .event_meta import meta
from .relations_extract import ANNOTATION, REPLACE, THREAD, Original, relation_of, replaces
from .relations_store import ParentRows, aggregation_rows, has_annotation

EMPTY_KEEP = 20_000  # event IDs known to have no children
BUNDLES_KEEP = 5_000  # parents with children
RECENT_PARENTS_KEEP = 10_000  # parents named by recent relations (maybe not yet known)


class RoomEvents(Protocol):
    """The part of ``RoomService`` bundling uses."""

    db: Any

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]: ...

    def format_client_event(
        self,
        event: Event,
        *,
        include_room_id: bool = True,
        user_id: str | None = None,
        device_id: str | None = None,
        requester: Any = None,
    ) -> dict: ...


def _trim(d: OrderedDict, keep: int) -> None:
    while len(d) > keep:
        d.popitem(last=False)


def _original(room_id: str, d: dict) -> Original:
    content = d.get("content")
    rel = content.get("m.relates_to") if isinstance(content, dict) else None
    unsigned = d.get("unsigned")
    return Original(
        room_id,
        d.get("sender", ""),
        d.get("type", ""),
        "state_key" in d,
        isinstance(rel, dict) and rel.get("rel_type") == REPLACE,
        isinstance(unsigned, dict) and "redacted_because" in unsigned,
    )


def _bundleable(d: Any) -> bool:
    return (
        isinstance(d, dict)
        and isinstance(d.get("event_id"), str)
        and isinstance(d.get("unsigned"), dict)
        and "state_key" not in d  # "State events do not currently receive bundled aggregations"
    )


class Relations:
    def __init__(self, rooms: RoomEvents) -> None:
        self.rooms = rooms
        self._bundles: OrderedDict[str, tuple[str, ParentRows]] = OrderedDict()
        self._empty: OrderedDict[str, None] = OrderedDict()
        self._recent_parents: OrderedDict[str, None] = OrderedDict()
        self._gen = 0
        self.reads = 0  # database reads for aggregations (tests: the cache works)

    # --- cache upkeep (persister hook) ---------------------------------------------------
    def on_committed(self, evs: Sequence[Event]) -> None:
        """Runs after each persisted batch (``EventPersister.on_committed``)."""
        redaction = False
        for ev in evs:
            m = meta(ev)
            if m.redacts_target is not None:
                redaction = True
            content = ev.pdu.get("content")
            if isinstance(content, dict) and "m.relates_to" in content:
                r = relation_of(ev)
                if r is not None:
                    self._gen += 1
                    self._bundles.pop(r.parent_id, None)
                    self._empty.pop(r.parent_id, None)
                    self._recent_parents[r.parent_id] = None
                    _trim(self._recent_parents, RECENT_PARENTS_KEEP)
        if redaction:
            self._gen += 1
            self._bundles.clear()
        for ev in evs:
            m = meta(ev)
            if m.outlier or m.backfilled or ev.rejected_reason is not None:
                continue
            # Its ID is new: nothing relates to it unless a child came first (a remote
            # child received before its parent), which names it in a recent relation.
            if ev.event_id not in self._recent_parents:
                self._empty[ev.event_id] = None
        _trim(self._empty, EMPTY_KEEP)

    async def _rows(self, parents: dict[str, str]) -> dict[str, ParentRows]:
        out: dict[str, ParentRows] = {}
        missing: dict[str, str] = {}
        for eid, room_id in parents.items():
            if eid in self._empty:
                continue
            hit = self._bundles.get(eid)
            if hit is not None:
                if hit[0] == room_id:
                    out[eid] = hit[1]
                continue
            missing[eid] = room_id
        if not missing:
            return out
        gen = self._gen
        self.reads += 1
        found = await self.rooms.db.read(aggregation_rows, missing)
        out.update(found)
        if gen == self._gen:
            for eid, room_id in missing.items():
                rows = found.get(eid)
                if rows is None:
                    self._empty[eid] = None
                else:
                    self._bundles[eid] = (room_id, rows)
            _trim(self._empty, EMPTY_KEEP)
            _trim(self._bundles, BUNDLES_KEEP)
        return out

    # --- bundling ------------------------------------------------------------------------
    async def add_bundles(
        self,
        items: Sequence[tuple[str, dict]],
        requester: Any,
        *,
        include_room_id: bool = True,
    ) -> None:
        """Add ``unsigned.m.relations`` to served events: ``items`` are (room ID, the
        event as formatted for ``requester``).  Dicts without ``unsigned`` (projected
        away by a filter's ``event_fields``, federation format) are left alone."""
        served = [(room_id, d) for room_id, d in items if _bundleable(d)]
        if not served:
            return
        parents = {d["event_id"]: room_id for room_id, d in served}
        rows = await self._rows(parents)
        if not rows:
            return
        user_id = getattr(requester, "user_id", None)
        wanted: dict[str, ParentRows] = {}
        latest: dict[str, str] = {}  # thread's latest event ID -> room
        for room_id, d in served:
            r = rows.get(d["event_id"])
            if r is None:
                continue
            wanted[d["event_id"]] = r
            if r.thread is not None and r.thread.latest_id is not None:
                latest[r.thread.latest_id] = room_id
        latest_rows = await self._rows(latest) if latest else {}
        need = set(latest)
        for r in list(wanted.values()) + list(latest_rows.values()):
            need.update(x[1] for x in r.replacements)
        evs = await self.rooms.get_events(sorted(need)) if need else {}

        def fmt(ev: Event) -> dict:
            return self.rooms.format_client_event(
                ev, include_room_id=include_room_id, requester=requester
            )

        for room_id, d in served:
            r = wanted.get(d["event_id"])
            if r is None:
                continue
            out = self._render(room_id, d, r, evs, fmt)
            thread = r.thread
            if thread is not None and thread.latest_id in evs:
                latest_ev = evs[thread.latest_id]
                latest_d = fmt(latest_ev)
                lr = latest_rows.get(thread.latest_id)
                if lr is not None:
                    nested = self._render(room_id, latest_d, lr, evs, fmt)
                    if nested:
                        latest_d["unsigned"]["m.relations"] = nested
                out["m.thread"] = {
                    "latest_event": latest_d,
                    "count": thread.count,
                    "current_user_participated": user_id is not None
                    and (user_id == d.get("sender") or user_id in thread.senders),
                }
            if out:
                d["unsigned"]["m.relations"] = out

    @staticmethod
    def _render(room_id: str, d: dict, r: ParentRows, evs: dict[str, Event], fmt: Any) -> dict:
        """The ``m.replace`` and ``m.reference`` aggregations of one served event."""
        out: dict = {}
        if r.replacements:
            orig = _original(room_id, d)
            best: tuple[int, str] | None = None
            for ts, event_id, sender, etype in r.replacements:
                if event_id in evs and replaces(orig, room_id, sender, etype, True):
                    if best is None or (ts, event_id) > best:
                        best = (ts, event_id)
            if best is not None:
                out["m.replace"] = fmt(evs[best[1]])
        if r.references:
            out["m.reference"] = {"chunk": [{"event_id": e} for e in r.references]}
        return out

    async def bundle_sync(self, rooms_out: dict, requester: Any) -> None:
        """Bundle the timelines of a ``/sync`` response's joined and left rooms (one
        batched lookup for the whole response)."""
        items: list[tuple[str, dict]] = []
        for section in ("join", "leave"):
            for room_id, entry in (rooms_out.get(section) or {}).items():
                timeline = entry.get("timeline") if isinstance(entry, dict) else None
                if isinstance(timeline, dict):
                    items.extend((room_id, d) for d in timeline.get("events", ()))
        if items:
            await self.add_bundles(items, requester, include_room_id=False)


async def check_relation_send(
    service: Any,
    user_id: str,
    room_id: str,
    etype: str,
    content: Any,
    txn: tuple[str, str] | None = None,
) -> None:
    """What the server refuses of a client's new child event (client-server API):

    * "Validation of m.thread relationships": a thread off an event whose own
      ``m.relates_to`` has a ``rel_type`` (threads do not nest) -- 400 ``M_UNKNOWN``;
    * "Avoiding duplicate annotations": a second annotation of an event by the same
      user with the same event type and key (unless the first was redacted) -- 400
      ``M_DUPLICATE_ANNOTATION``.

    Checked only for a sender joined to the room and a parent in that room, so the
    answer tells nobody else anything; events without a relation cost one dict lookup.
    """
    if not isinstance(content, dict):
        return
    rel = content.get("m.relates_to")
    if not isinstance(rel, dict):
        return
    rel_type = rel.get("rel_type")
    parent_id = rel.get("event_id")
    if rel_type not in (THREAD, ANNOTATION) or not isinstance(parent_id, str):
        return
    try:
        room = await service.get_room(room_id)
    except NotFound:
        return
    if room.membership(user_id) != "join":
        return
    if rel_type == ANNOTATION:
        key = rel.get("key")
        if isinstance(key, str) and await service.db.read(
            has_annotation, room_id, parent_id, user_id, etype, key, txn
        ):
            raise MatrixError(
                "You have already sent this annotation",
                errcode="M_DUPLICATE_ANNOTATION",
                http_status=400,
            )
        return
    root = await service.get_event(parent_id)
    if root is None or root.room_id != room_id:
        return
    root_rel = root.content.get("m.relates_to")
    if isinstance(root_rel, dict) and "rel_type" in root_rel:
        raise MatrixError(
            "Cannot start a thread from an event that has a relation itself",
            errcode="M_UNKNOWN",
            http_status=400,
        )
