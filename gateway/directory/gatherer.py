"""Gathering what each enrolled school publishes, over federation (city services).

For every member of the current roster but the gateway itself, ``DirectoryGatherer`` asks

* ``GET /_matrix/federation/v1/publicRooms`` (spec: server-server API "Published Room
  Directory"), following ``next_batch`` up to ``MAX_PAGES`` pages: the school's public
  rooms in the ``PublishedRoomsChunk`` format;
* ``GET /_parta/v1/stats`` (``node/federation/server/stats.py``): the users/rooms counts
  and the directors the school announces (a Synapse school answers 404: no counts).

Both through the node's outbound ``FederationHttpClient`` (X-Matrix signed, TLS verified,
behind the roster policy), at most ``concurrency`` schools at a time, every
``interval_s`` (``task.LoopingCall`` on the injected reactor) and on demand
(``gather_all`` / ``gather``; concurrent calls share one round).  Results are cached per
server with the time gathered; a failed request keeps the last good data and records the
error.  Servers that leave the roster are forgotten at the next round.

Everything a school sends is checked and trimmed before it is cached (``clean_room``,
``clean_stats``): known fields with the right types only, bounded strings, and directors
only on the school's own server (a school cannot announce another server's users).
``on_stats`` listeners (e.g. ``directors.DirectorInviter``) are called after each stats
answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from twisted.internet import defer, task

from federation.transport import endpoints as E

log = logging.getLogger("parta.gateway.directory")

PAGE_LIMIT = 100
MAX_PAGES = 20  # at most 2000 rooms per school
REQUEST_TIMEOUT_S = 20.0
MAX_TEXT = 1000  # characters kept of a name / topic
MAX_ID = 255
MAX_DIRECTORS = 50
MAX_STAFF = 1000  # role attestations kept per school

_STR_FIELDS = {
    "room_id": MAX_ID,
    "name": MAX_TEXT,
    "topic": MAX_TEXT,
    "canonical_alias": MAX_ID,
    "avatar_url": MAX_ID,
    "join_rule": 64,
    "room_type": MAX_ID,
}
_BOOL_FIELDS = ("world_readable", "guest_can_join")


@dataclass
class Gathered:
    """What the gateway knows of one school (times in ms)."""

    rooms: list[dict] | None = None
    rooms_ts: int | None = None
    stats: dict | None = None
    stats_ts: int | None = None
    error: str | None = None  # the last failure, cleared by the next success
    error_ts: int | None = None
    attempts: int = 0

    def summary(self) -> dict:
        return {
            "rooms": None if self.rooms is None else len(self.rooms),
            "rooms_ts": self.rooms_ts,
            # The staff attestations are the staff directory's (directory.staff), not a count.
            "stats": None
            if self.stats is None
            else {k: v for k, v in self.stats.items() if k != "staff"},
            "stats_ts": self.stats_ts,
            "error": self.error,
            "error_ts": self.error_ts,
        }


# --- checking what a school sends ----------------------------------------------------------


def clean_room(raw: Any) -> dict | None:
    """A ``PublishedRoomsChunk`` with known fields of the right type only (None when it
    has no usable ``room_id``)."""
    if not isinstance(raw, dict):
        return None
    room_id = raw.get("room_id")
    if not isinstance(room_id, str) or not room_id.startswith("!") or len(room_id) > MAX_ID:
        return None
    out: dict[str, Any] = {}
    for key, limit in _STR_FIELDS.items():
        value = raw.get(key)
        if isinstance(value, str) and value:
            out[key] = value[:limit]
    n = raw.get("num_joined_members")
    out["num_joined_members"] = (
        n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 else 0
    )
    for key in _BOOL_FIELDS:
        out[key] = raw.get(key) is True
    out.setdefault("join_rule", "public")
    return out


def clean_stats(raw: Any, server_name: str) -> dict | None:
    """``{users, rooms, public_rooms, reports, directors, staff}`` from a stats answer;
    counts that are not non-negative integers become None, directors outside
    ``server_name`` are dropped."""
    if not isinstance(raw, dict):
        return None

    def count(key: str) -> int | None:
        v = raw.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53 else None

    directors: list[str] = []
    announced = raw.get("directors")
    for uid in announced if isinstance(announced, list) else []:
        if (
            isinstance(uid, str)
            and uid.startswith("@")
            and len(uid) <= MAX_ID
            and uid.partition(":")[2] == server_name
            and uid not in directors
        ):
            directors.append(uid)
        if len(directors) >= MAX_DIRECTORS:
            break
    staff = raw.get("staff")  # role attestations, verified by directory.staff
    return {
        "users": count("users"),
        "rooms": count("rooms"),
        "public_rooms": count("public_rooms"),
        "reports": count("reports"),
        "directors": directors,
        "staff": [d for d in staff[:MAX_STAFF] if isinstance(d, dict)]
        if isinstance(staff, list)
        else [],
    }


def _share(d: defer.Deferred) -> defer.Deferred:
    """A new Deferred firing with ``d``'s result, leaving ``d``'s own chain as it is
    (``d`` never fails: gathering catches everything)."""
    out: defer.Deferred = defer.Deferred()

    def pass_on(result: Any) -> Any:
        out.callback(result)
        return result

    d.addCallback(pass_on)
    return out


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:300]


# --- the gatherer --------------------------------------------------------------------------

StatsListener = Callable[[str, dict], Awaitable[None]]


class DirectoryGatherer:
    """See module docstring.  ``members()`` returns the servers to ask (awaitable)."""

    def __init__(
        self,
        *,
        client: Any,
        clock: Any,
        server_name: str,
        members: Callable[[], Awaitable[Iterable[str]]],
        interval_s: float,
        concurrency: int = 16,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.members = members
        self.interval_s = interval_s
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.cache: dict[str, Gathered] = {}
        self.on_stats: list[StatsListener] = []
        self.rounds = 0
        self._round: defer.Deferred | None = None
        self._one: dict[str, defer.Deferred] = {}
        self._loop: task.LoopingCall | None = None

    # --- life cycle ------------------------------------------------------------------------
    def start(self, reactor: Any, *, now: bool = True) -> None:
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = reactor
        self._loop.start(self.interval_s, now=now).addErrback(
            lambda f: log.error("event=directory_loop_died error=%s", f.getErrorMessage())
        )

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _tick(self) -> defer.Deferred:
        d = self.gather_all()
        d.addErrback(
            lambda f: log.error("event=directory_round_failed error=%s", f.getErrorMessage())
        )
        return d

    # --- PublicRoomsSource -----------------------------------------------------------------
    async def public_rooms(self, server_name: str) -> list[dict] | None:
        entry = self.cache.get(server_name)
        return None if entry is None else entry.rooms

    def get(self, server_name: str) -> Gathered | None:
        return self.cache.get(server_name)

    # --- gathering -------------------------------------------------------------------------
    def gather_all(self) -> defer.Deferred:
        """One round over every member (a round already running is shared); fires with
        the cache."""
        running = self._round
        if running is None:
            running = self._round = defer.ensureDeferred(self._gather_all())

            def done(result: Any) -> Any:
                self._round = None
                return result

            running.addBoth(done)
        return _share(running)

    async def _gather_all(self) -> dict[str, Gathered]:
        try:
            servers = sorted(s for s in set(await self.members()) if s != self.server_name)
        except Exception:  # try again at the next round
            log.exception("event=directory_members_failed")
            return self.cache
        for gone in set(self.cache) - set(servers):
            del self.cache[gone]
        sem = defer.DeferredSemaphore(max(1, self.concurrency))
        await defer.gatherResults([sem.run(self.gather, s) for s in servers], consumeErrors=True)
        self.rounds += 1
        log.info(
            "event=directory_gathered servers=%d ok=%d rooms=%d",
            len(servers),
            sum(1 for s in servers if self.cache.get(s) and not self.cache[s].error),
            sum(len(self.cache[s].rooms or ()) for s in servers if s in self.cache),
        )
        return self.cache

    def gather(self, server_name: str) -> defer.Deferred:
        """Ask one server now (shared with a request for it already in flight); fires with
        its ``Gathered``."""
        running = self._one.get(server_name)
        if running is None:
            running = self._one[server_name] = defer.ensureDeferred(self._gather_one(server_name))

            def done(result: Any) -> Any:
                self._one.pop(server_name, None)
                return result

            running.addBoth(done)
        return _share(running)

    async def _gather_one(self, server: str) -> Gathered:
        entry = self.cache.setdefault(server, Gathered())
        entry.attempts += 1
        errors = []
        try:
            rooms = await self._fetch_rooms(server)
            entry.rooms, entry.rooms_ts = rooms, self.clock.time_ms()
        except Exception as exc:  # noqa: BLE001 - one school must not stop the round
            errors.append(f"publicRooms: {_describe(exc)}")
        try:
            stats = await self._fetch_stats(server)
            if stats is not None:
                entry.stats, entry.stats_ts = stats, self.clock.time_ms()
        except Exception as exc:  # noqa: BLE001 - one school must not stop the round
            errors.append(f"stats: {_describe(exc)}")
        if errors:
            entry.error, entry.error_ts = "; ".join(errors), self.clock.time_ms()
            log.info("event=directory_gather_failed server=%s error=%s", server, entry.error)
        else:
            entry.error = entry.error_ts = None
        if entry.stats is not None and not any(e.startswith("stats") for e in errors):
            for fn in list(self.on_stats):
                try:
                    await fn(server, entry.stats)
                except Exception:  # a listener must not break gathering
                    log.exception("event=directory_stats_listener_failed server=%s", server)
        return entry

    async def _fetch_rooms(self, server: str) -> list[dict]:
        rooms: list[dict] = []
        seen: set[str] = set()
        since: str | None = None
        for _ in range(MAX_PAGES):
            query: dict[str, Any] = {"limit": PAGE_LIMIT}
            if since:
                query["since"] = since
            body = await self.client.request_ok(
                server,
                E.PUBLIC_ROOMS.method,
                E.PUBLIC_ROOMS.path(),
                query=query,
                timeout=self.timeout_s,
            )
            chunk = body.get("chunk")
            if not isinstance(chunk, list):
                raise ValueError("publicRooms answer has no 'chunk' list")
            for raw in chunk:
                room = clean_room(raw)
                if room is not None and room["room_id"] not in seen:
                    seen.add(room["room_id"])
                    rooms.append(room)
            nxt = body.get("next_batch")
            if not isinstance(nxt, str) or not nxt or nxt == since or not chunk:
                break
            since = nxt
        return rooms

    async def _fetch_stats(self, server: str) -> dict | None:
        status, body = await self.client.request(
            server, E.PARTA_STATS.method, E.PARTA_STATS.path(), timeout=self.timeout_s
        )
        if status in (404, 405) or (status == 400 and body.get("errcode") == "M_UNRECOGNIZED"):
            return None  # not a Parta node (e.g. Synapse): no counts, not an error
        if status != 200:
            raise ValueError(f"HTTP {status} {body.get('errcode') or ''}".strip())
        return clean_stats(body, server)
