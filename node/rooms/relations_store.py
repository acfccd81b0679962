"""Storage of event relationships (``schema/relations.py``): the rows written with each
event batch and the queries behind ``/relations``, ``/threads``, bundled aggregations and
threaded receipts.

Spec: client-server API "Forming relationships between events", "Aggregations of child
events" (https://spec.matrix.org/v1.16/client-server-api/#aggregations-of-child-events),
"Relationships API", "Threading", "Event replacements", "Reference relations".

Writes happen inside ``store_write.write_events`` (the persister's one transaction per
batch): a batch without relations costs a dict lookup per event and no statement.  A
redaction deletes its target's row ("when a child event is redacted then the relationship
is broken") and recomputes the thread's latest reply when the target was one.

Every read is bounded: parent lists are chunked, replacements come back one per
(parent, sender, type), references at most ``MAX_REFERENCES`` per parent, pages at most
the caller's limit, and recursion stops at ``MAX_DEPTH``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from federation.events.model import Event
from node.storage.bulk import insert_rows
from schema.events import event_txn_ids as txns
from schema.events import events
from schema.relations import event_relations as rel
from schema.relations import event_threads as thr

from .event_meta import committed_stream, meta
from .relations_extract import ANNOTATION, REFERENCE, REPLACE, THREAD, relation_of

COLUMNS = (
    "event_id",
    "room_id",
    "relates_to_id",
    "rel_type",
    "type",
    "sender",
    "origin_server_ts",
    "stream_ordering",
    "replace_ok",
    "aggregation_key",
)
CHUNK = 500  # parent IDs per IN (...) list
MAX_REFERENCES = 50  # m.reference children bundled per parent (oldest first)
MAX_DEPTH = 3  # "Homeservers SHOULD traverse at least 3 levels of relationships"


# ======================================================================================
# Writes (inside the persister's transaction)
# ======================================================================================
def _hidden(ev: Event) -> bool:
    return ev.rejected_reason is not None or meta(ev).outlier


def write_relation_rows(conn: Connection, batch: Sequence[Event]) -> None:
    """The relation rows of ``batch`` (visible events only), the threads they advance,
    and the rows their redactions break."""
    rows = []
    latest: dict[tuple[str, str], int] = {}
    redacted: list[tuple[str, str]] = []
    for ev in batch:
        target = meta(ev).redacts_target
        if target is not None:
            redacted.append((ev.room_id, target))
        content = ev.pdu.get("content")
        if not isinstance(content, dict) or "m.relates_to" not in content:
            continue  # the hot path: no relation
        if _hidden(ev):
            continue
        r = relation_of(ev)
        if r is None:
            continue
        stream = committed_stream(ev)
        rows.append(
            (
                ev.event_id,
                ev.room_id,
                r.parent_id,
                r.rel_type,
                ev.type,
                ev.sender,
                ev.origin_server_ts,
                stream,
                r.replace_ok,
                r.key,
            )
        )
        if r.rel_type == THREAD:
            key = (ev.room_id, r.parent_id)
            latest[key] = max(stream, latest.get(key, stream))
    if rows:
        insert_rows(conn, "event_relations", COLUMNS, rows, ignore_conflicts=True)
    if latest:
        _advance_threads(conn, latest)
    if redacted:
        _break_redacted(conn, redacted)


def _advance_threads(conn: Connection, latest: dict[tuple[str, str], int]) -> None:
    """Upsert each thread's latest reply (never moving it back: a backfilled reply is
    older than what the row holds)."""
    dialect = conn.dialect.name
    for (room_id, root), stream in latest.items():
        values = {"room_id": room_id, "thread_id": root, "latest_stream_ordering": stream}
        if dialect == "postgresql":
            pg = postgresql.insert(thr).values(**values)
            conn.execute(
                pg.on_conflict_do_update(
                    index_elements=[thr.c.room_id, thr.c.thread_id],
                    set_={"latest_stream_ordering": pg.excluded.latest_stream_ordering},
                    where=thr.c.latest_stream_ordering < pg.excluded.latest_stream_ordering,
                )
            )
        else:
            lite = sqlite.insert(thr).values(**values)
            conn.execute(
                lite.on_conflict_do_update(
                    index_elements=[thr.c.room_id, thr.c.thread_id],
                    set_={"latest_stream_ordering": lite.excluded.latest_stream_ordering},
                    where=thr.c.latest_stream_ordering < lite.excluded.latest_stream_ordering,
                )
            )


def _break_redacted(conn: Connection, targets: list[tuple[str, str]]) -> None:
    """Redacted children relate no more; a thread whose latest reply went points at the
    reply before it (or disappears with its last reply)."""
    for room_id, target in targets:
        row = conn.execute(
            select(rel.c.relates_to_id, rel.c.rel_type).where(
                rel.c.event_id == target, rel.c.room_id == room_id
            )
        ).first()
        if row is None:
            continue
        conn.execute(delete(rel).where(rel.c.event_id == target))
        if row.rel_type != THREAD:
            continue
        top = conn.execute(
            select(func.max(rel.c.stream_ordering)).where(
                rel.c.relates_to_id == row.relates_to_id,
                rel.c.rel_type == THREAD,
                rel.c.room_id == room_id,
            )
        ).scalar()
        key = and_(thr.c.room_id == room_id, thr.c.thread_id == row.relates_to_id)
        if top is None:
            conn.execute(delete(thr).where(key))
        else:
            conn.execute(update(thr).where(key).values(latest_stream_ordering=int(top)))


# ======================================================================================
# Aggregations
# ======================================================================================
@dataclass
class ThreadRows:
    count: int = 0
    latest_id: str | None = None
    latest_stream: int | None = None
    senders: set[str] = field(default_factory=set)


@dataclass
class ParentRows:
    """What the database knows of one parent's children in its room."""

    thread: ThreadRows | None = None
    # (origin_server_ts, event_id, sender, type) of the newest replacement per
    # (sender, type) that passes the replacement-only rules.
    replacements: list[tuple[int, str, str, str]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


def aggregation_rows(conn: Connection, parents: dict[str, str]) -> dict[str, ParentRows]:
    """``parents``: parent event ID -> its room ID.  Only parents with children in their
    own room appear in the answer."""
    out: dict[str, ParentRows] = {}
    ids = sorted(parents)
    for chunk in _chunks(ids):
        present = conn.execute(
            select(rel.c.relates_to_id, rel.c.room_id, rel.c.rel_type, func.count())
            .where(rel.c.relates_to_id.in_(chunk))
            .group_by(rel.c.relates_to_id, rel.c.room_id, rel.c.rel_type)
        ).all()
        kinds: dict[str, set[str]] = {}
        for parent, room_id, rel_type, count in present:
            if parents.get(parent) != room_id:
                continue  # "the parent and child being in different rooms": ignored
            kinds.setdefault(rel_type, set()).add(parent)
            if rel_type == THREAD:
                out.setdefault(parent, ParentRows()).thread = ThreadRows(count=int(count))
        if THREAD in kinds:
            _thread_rows(conn, sorted(kinds[THREAD]), parents, out)
        if REPLACE in kinds:
            _replace_rows(conn, sorted(kinds[REPLACE]), parents, out)
        if REFERENCE in kinds:
            _reference_rows(conn, sorted(kinds[REFERENCE]), parents, out)
    return out


def _thread_rows(
    conn: Connection, ids: list[str], parents: dict[str, str], out: dict[str, ParentRows]
) -> None:
    rn = (
        func.row_number()
        .over(
            partition_by=(rel.c.relates_to_id, rel.c.room_id),
            order_by=rel.c.stream_ordering.desc(),
        )
        .label("rn")
    )
    sub = (
        select(rel.c.relates_to_id, rel.c.room_id, rel.c.event_id, rel.c.stream_ordering, rn)
        .where(rel.c.relates_to_id.in_(ids), rel.c.rel_type == THREAD)
        .subquery()
    )
    for parent, room_id, event_id, stream, _ in conn.execute(select(sub).where(sub.c.rn == 1)):
        t = out[parent].thread if parents.get(parent) == room_id else None
        if t is not None:
            t.latest_id, t.latest_stream = event_id, int(stream)
    senders = conn.execute(
        select(rel.c.relates_to_id, rel.c.room_id, rel.c.sender)
        .where(rel.c.relates_to_id.in_(ids), rel.c.rel_type == THREAD)
        .distinct()
    )
    for parent, room_id, sender in senders:
        t = out[parent].thread if parents.get(parent) == room_id else None
        if t is not None:
            t.senders.add(sender)


def _replace_rows(
    conn: Connection, ids: list[str], parents: dict[str, str], out: dict[str, ParentRows]
) -> None:
    rn = (
        func.row_number()
        .over(
            partition_by=(rel.c.relates_to_id, rel.c.room_id, rel.c.sender, rel.c.type),
            order_by=(rel.c.origin_server_ts.desc(), rel.c.event_id.desc()),
        )
        .label("rn")
    )
    sub = (
        select(
            rel.c.relates_to_id,
            rel.c.room_id,
            rel.c.origin_server_ts,
            rel.c.event_id,
            rel.c.sender,
            rel.c.type,
            rn,
        )
        .where(
            rel.c.relates_to_id.in_(ids),
            rel.c.rel_type == REPLACE,
            rel.c.replace_ok.is_(True),
        )
        .subquery()
    )
    for parent, room_id, ts, event_id, sender, etype, _ in conn.execute(
        select(sub).where(sub.c.rn == 1)
    ):
        if parents.get(parent) == room_id:
            out.setdefault(parent, ParentRows()).replacements.append(
                (int(ts), event_id, sender, etype)
            )


def _reference_rows(
    conn: Connection, ids: list[str], parents: dict[str, str], out: dict[str, ParentRows]
) -> None:
    rn = (
        func.row_number()
        .over(
            partition_by=(rel.c.relates_to_id, rel.c.room_id),
            order_by=rel.c.stream_ordering.asc(),
        )
        .label("rn")
    )
    sub = (
        select(rel.c.relates_to_id, rel.c.room_id, rel.c.event_id, rel.c.stream_ordering, rn)
        .where(rel.c.relates_to_id.in_(ids), rel.c.rel_type == REFERENCE)
        .subquery()
    )
    q = select(sub).where(sub.c.rn <= MAX_REFERENCES).order_by(sub.c.stream_ordering)
    for parent, room_id, event_id, _stream, _ in conn.execute(q):
        if parents.get(parent) == room_id:
            out.setdefault(parent, ParentRows()).references.append(event_id)


# ======================================================================================
# /relations
# ======================================================================================
def children_page(
    conn: Connection,
    room_id: str,
    parent_id: str,
    rel_type: str | None,
    event_type: str | None,
    *,
    recurse: bool,
    after: int | None,
    upto: int | None,
    direction: str,
    limit: int,
) -> list[tuple[str, int]]:
    """(event ID, stream ordering) of the children of ``parent_id`` in ``room_id`` with
    ``after < stream <= upto`` (either bound may be None), newest first for ``"b"``,
    oldest first for ``"f"``; at most ``limit``.  With ``recurse``, children of children
    up to ``MAX_DEPTH`` levels, through matching events only ("Events that would match
    the filter, but whose only relation to the original given event is through a
    non-matching intermediate event, will not be included")."""

    def matching(t: Any) -> list:
        conds = [t.c.room_id == room_id]
        if rel_type is not None:
            conds.append(t.c.rel_type == rel_type)
        if event_type is not None:
            conds.append(t.c.type == event_type)
        return conds

    if recurse:
        base = select(rel.c.event_id, literal(1).label("depth")).where(
            rel.c.relates_to_id == parent_id, *matching(rel)
        )
        tree = base.cte("tree", recursive=True)
        child = rel.alias("child")
        tree = tree.union_all(
            select(child.c.event_id, (tree.c.depth + 1).label("depth")).where(
                child.c.relates_to_id == tree.c.event_id,
                tree.c.depth < MAX_DEPTH,
                *matching(child),
            )
        )
        q = select(rel.c.event_id, rel.c.stream_ordering).join(
            tree, tree.c.event_id == rel.c.event_id
        )
    else:
        q = select(rel.c.event_id, rel.c.stream_ordering).where(
            rel.c.relates_to_id == parent_id, *matching(rel)
        )
    if after is not None:
        q = q.where(rel.c.stream_ordering > after)
    if upto is not None:
        q = q.where(rel.c.stream_ordering <= upto)
    order = rel.c.stream_ordering.desc() if direction == "b" else rel.c.stream_ordering.asc()
    q = q.order_by(order).limit(limit)
    return [(r[0], int(r[1])) for r in conn.execute(q)]


# ======================================================================================
# /threads and threaded receipts
# ======================================================================================
def threads_page(
    conn: Connection,
    room_id: str,
    *,
    before: int | None,
    limit: int,
    participant: str | None,
) -> list[tuple[str, int]]:
    """(thread root ID, latest reply's stream ordering) of ``room_id``'s threads whose
    latest reply is below ``before``, most recently active first.  ``participant``: only
    threads that user started (sent the root) or replied to."""
    q = select(thr.c.thread_id, thr.c.latest_stream_ordering).where(thr.c.room_id == room_id)
    if before is not None:
        q = q.where(thr.c.latest_stream_ordering < before)
    if participant is not None:
        replied = exists().where(
            rel.c.relates_to_id == thr.c.thread_id,
            rel.c.rel_type == THREAD,
            rel.c.room_id == room_id,
            rel.c.sender == participant,
        )
        started = exists().where(
            events.c.event_id == thr.c.thread_id,
            events.c.room_id == room_id,
            events.c.sender == participant,
        )
        q = q.where(or_(replied, started))
    q = q.order_by(thr.c.latest_stream_ordering.desc()).limit(limit)
    return [(r[0], int(r[1])) for r in conn.execute(q)]


def thread_of(conn: Connection, room_id: str, event_id: str) -> str:
    """The thread ``event_id`` is in: a thread root's event ID, or ``"main"``.  Spec
    "Threaded read receipts": an event is in a thread if it has a ``rel_type`` of
    ``m.thread``, or if following its relations (at most 3 hops) leads to one; thread
    roots and everything else are in the main timeline."""
    current = event_id
    for _ in range(MAX_DEPTH):
        row = conn.execute(
            select(rel.c.relates_to_id, rel.c.rel_type).where(
                rel.c.event_id == current, rel.c.room_id == room_id
            )
        ).first()
        if row is None:
            return "main"
        if row.rel_type == THREAD:
            return str(row.relates_to_id)
        current = row.relates_to_id
    return "main"


def has_annotation(
    conn: Connection,
    room_id: str,
    parent_id: str,
    sender: str,
    etype: str,
    key: str,
    txn: tuple[str, str] | None = None,
) -> bool:
    """Has ``sender`` an (unredacted) annotation of ``parent_id`` with this event type and
    key?  Spec "Avoiding duplicate annotations".  One sent with ``txn`` (device ID,
    transaction ID) does not count: that is the same request again, which gets the
    first answer ("Transaction identifiers")."""
    q = select(rel.c.event_id).where(
        rel.c.relates_to_id == parent_id,
        rel.c.rel_type == ANNOTATION,
        rel.c.room_id == room_id,
        rel.c.sender == sender,
        rel.c.type == etype,
        rel.c.aggregation_key == key,
    )
    if txn is not None:
        q = q.where(
            ~exists().where(
                txns.c.event_id == rel.c.event_id,
                txns.c.user_id == sender,
                txns.c.device_id == txn[0],
                txns.c.txn_id == txn[1],
            )
        )
    row = conn.execute(q.limit(1)).first()
    return row is not None
