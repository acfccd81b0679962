"""Space children that live only on other servers, for the client ``/hierarchy``.

Spec: client-server API "Spaces" > "Server behaviour": "In the case where the server does
not have access to the state of a child room, it can request the information over
federation with the ``GET /hierarchy`` API. The response to this endpoint should be
cached for a period of time ... the local data should be used instead of the remote
server's data"; ``space_hierarchy.yaml`` (client): "The servers listed in the ``via``
array should be contacted to attempt to fill in missing rooms"; server-server
``space_hierarchy.yaml``: the answer's ``inaccessible_children`` "should not be
re-requested".

``RemoteHierarchy.cached`` / ``fetch`` give a ``RemoteRoom`` (the summary of the child,
its ``m.space.child`` list and the summaries the same answer gave for *its* children) or
``None`` (nobody could tell us, or it is inaccessible).  Answers, including failures, are
cached per (room ID, ``suggested_only``) with an injected clock: ``TTL_MS`` for answers and
inaccessible rooms, ``FAILURE_TTL_MS`` when no server answered.  The cache keeps the
client's pagination stable (every page re-walks the tree from the root).  Summaries a
server gives for the children of the room we asked about are only used as children of
that room (a server cannot plant answers for unrelated rooms).

The pure parts: ``clean_summary`` (keeps only well-typed ``RoomSummary`` fields of an
untrusted answer), ``child_refs`` (valid, ordered children of stripped ``m.space.child``
events), ``user_may_see`` (the client rule on a summary, for a room we have no state of).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError

if TYPE_CHECKING:
    from node.federation.context import FederationContext

log = logging.getLogger("parta.federation.hierarchy")

TTL_MS = 5 * 60_000
FAILURE_TTL_MS = 60_000
CACHE_SIZE = 2_000
MAX_VIA = 3  # servers tried per child room (each with ``timeout``)
MAX_CHILDREN = 250  # children taken from one answer

_ORDER = re.compile(r"^[\x20-\x7E]{1,50}$")
_STR_FIELDS = (
    "name",
    "topic",
    "canonical_alias",
    "avatar_url",
    "join_rule",
    "room_type",
    "room_version",
    "encryption",
)


class RemoteRoom:
    """A room known only from another server's ``/hierarchy`` answer."""

    __slots__ = ("room_id", "room_type", "summary", "children_state", "known")

    def __init__(
        self, summary: dict, children_state: list[dict], known: dict[str, "RemoteRoom | None"]
    ) -> None:
        self.room_id = summary["room_id"]
        self.room_type = summary.get("room_type")
        self.summary = summary  # RoomSummary fields only
        self.children_state = children_state  # stripped m.space.child events (+ts)
        self.known = known  # child ID -> its room (None: inaccessible)

    def children(self, suggested_only: bool) -> list[dict]:
        return child_refs(self.children_state, suggested_only)

    def visible_to(self, joined_rooms: set[str]) -> bool:
        return user_may_see(self.summary, joined_rooms)


# --- pure helpers --------------------------------------------------------------------------


def _child_event(ev: Any) -> dict | None:
    if not isinstance(ev, dict) or ev.get("type") != "m.space.child":
        return None
    sk, content, ts = ev.get("state_key"), ev.get("content"), ev.get("origin_server_ts")
    if not isinstance(sk, str) or not sk.startswith("!") or not isinstance(content, dict):
        return None
    sender = ev.get("sender")
    return {
        "type": "m.space.child",
        "state_key": sk,
        "content": content,
        "sender": sender if isinstance(sender, str) else "",
        "origin_server_ts": ts if isinstance(ts, int) and not isinstance(ts, bool) else 0,
    }


def child_refs(children_state: list[dict], suggested_only: bool) -> list[dict]:
    """Valid children (non-empty ``via`` of strings; ``suggested`` when asked), ordered as
    "Ordering of children within a space" says: valid ``order`` first (lexicographic), then
    ``origin_server_ts``, then room ID."""
    out = []
    for ev in children_state:
        via = ev["content"].get("via")
        if not isinstance(via, list) or not via or not all(isinstance(v, str) for v in via):
            continue
        if suggested_only and ev["content"].get("suggested") is not True:
            continue
        out.append(ev)

    def key(ev: dict) -> tuple:
        order = ev["content"].get("order")
        valid = isinstance(order, str) and _ORDER.match(order) is not None
        return (0 if valid else 1, order if valid else "", ev["origin_server_ts"], ev["state_key"])

    return sorted(out, key=key)


def clean_summary(raw: Any) -> tuple[dict, list[dict]] | None:
    """(summary, children_state) from an untrusted ``RoomSummary`` object; None when it
    has no usable ``room_id``."""
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("room_id"), str)
        or not raw["room_id"].startswith("!")
    ):
        return None
    out: dict[str, Any] = {"room_id": raw["room_id"]}
    for k in _STR_FIELDS:
        if isinstance(raw.get(k), str):
            out[k] = raw[k]
    n = raw.get("num_joined_members")
    out["num_joined_members"] = (
        n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0
    )
    for k in ("world_readable", "guest_can_join"):
        out[k] = raw.get(k) is True
    out.setdefault("join_rule", "public")  # PublishedRoomsChunk's default
    allowed = raw.get("allowed_room_ids")
    if isinstance(allowed, list):
        ids = [a for a in allowed if isinstance(a, str)]
        if ids:
            out["allowed_room_ids"] = ids
    state = raw.get("children_state")
    kids = []
    if isinstance(state, list) and out.get("room_type") == "m.space":
        for ev in state[:MAX_CHILDREN]:
            clean = _child_event(ev)
            if clean is not None:
                kids.append(clean)
    return out, kids


def user_may_see(summary: dict, joined_rooms: set[str]) -> bool:
    """The client ``/hierarchy`` rule for a room we hold no state of (so no membership):
    public or knockable join rules, ``restricted`` with a joined allowed room, or
    ``world_readable``."""
    rule = summary.get("join_rule")
    if rule in ("public", "knock", "knock_restricted"):
        return True
    if rule == "restricted" and any(
        r in joined_rooms for r in summary.get("allowed_room_ids") or ()
    ):
        return True
    return summary.get("world_readable") is True


def parse_answer(room_id: str, body: Any) -> RemoteRoom | None:
    """A ``/hierarchy`` answer about ``room_id`` as a ``RemoteRoom`` (None if malformed)."""
    if not isinstance(body, dict):
        return None
    top = clean_summary(body.get("room"))
    if top is None or top[0]["room_id"] != room_id:
        return None
    wanted = {ev["state_key"] for ev in top[1]}
    known: dict[str, RemoteRoom | None] = {}
    inaccessible = body.get("inaccessible_children")
    if isinstance(inaccessible, list):
        for rid in inaccessible[:MAX_CHILDREN]:
            if isinstance(rid, str) and rid in wanted:
                known[rid] = None
    children = body.get("children")
    if isinstance(children, list):
        for raw in children[:MAX_CHILDREN]:
            got = clean_summary(raw)
            if got is not None and got[0]["room_id"] in wanted and got[0]["room_id"] not in known:
                known[got[0]["room_id"]] = RemoteRoom(got[0], got[1], {})
    return RemoteRoom(top[0], top[1], known)


# --- the fetcher ---------------------------------------------------------------------------


class RemoteHierarchy:
    def __init__(
        self,
        *,
        client: Any,
        clock: Any,
        server_name: str,
        policy: Any = None,
        timeout: float = 5.0,
        ttl_ms: int = TTL_MS,
        failure_ttl_ms: int = FAILURE_TTL_MS,
    ) -> None:
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.policy = policy
        self.timeout = timeout
        self.ttl_ms = ttl_ms
        self.failure_ttl_ms = failure_ttl_ms
        self._cache: OrderedDict[tuple[str, bool], tuple[int, RemoteRoom | None]] = OrderedDict()

    def cached(
        self, room_id: str, suggested_only: bool, parent: RemoteRoom | None = None
    ) -> tuple[bool, RemoteRoom | None]:
        """(hit, room) without any request: the parent's answer first, then the cache."""
        if parent is not None and room_id in parent.known:
            return True, parent.known[room_id]
        hit = self._cache.get((room_id, suggested_only))
        if hit is not None and hit[0] > self.clock.time_ms():
            return True, hit[1]
        return False, None

    async def fetch(self, room_id: str, via: list[str], suggested_only: bool) -> RemoteRoom | None:
        """Ask up to ``MAX_VIA`` of the ``via`` servers (not us, not refused by policy);
        the first good answer wins.  Never raises for network or remote errors."""
        result: RemoteRoom | None = None
        answered = False
        tried = 0
        for server in dict.fromkeys(via):
            if tried >= MAX_VIA:
                break
            if not isinstance(server, str) or not server or server == self.server_name:
                continue
            if self.policy is not None and not self.policy.allow_outbound(server):
                continue
            tried += 1
            try:
                status, body = await self.client.request(
                    server,
                    E.HIERARCHY.method,
                    E.HIERARCHY.path(room_id),
                    query={"suggested_only": "true" if suggested_only else "false"},
                    timeout=self.timeout,
                )
            except FederationRequestError as exc:
                log.info(
                    "event=hierarchy_remote_failed room=%s server=%s error=%s",
                    room_id,
                    server,
                    exc.message,
                )
                continue
            except Exception:  # a bad answer never fails the client request
                log.exception("event=hierarchy_remote_error room=%s server=%s", room_id, server)
                continue
            if status == 200:
                result = parse_answer(room_id, body)
                if result is not None:
                    answered = True
                    break
            elif status == 404:
                answered = True  # "cannot peek/join" or unknown there: try on
        ttl = self.ttl_ms if answered else self.failure_ttl_ms
        self._store(room_id, suggested_only, result, ttl)
        return result

    def _store(
        self, room_id: str, suggested_only: bool, value: RemoteRoom | None, ttl: int
    ) -> None:
        key = (room_id, suggested_only)
        self._cache[key] = (self.clock.time_ms() + ttl, value)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def build(fctx: FederationContext) -> RemoteHierarchy:
    """The rooms service's remote look-ups for the client ``/hierarchy``
    (``RoomHooks.remote_hierarchy``)."""
    return RemoteHierarchy(
        client=fctx.client,
        clock=fctx.ctx.clock,
        server_name=fctx.ctx.server_name,
        policy=fctx.policy,
    )
