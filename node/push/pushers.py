"""Pushers (client-server API "Client behaviour" > ``GET /pushers``, ``POST /pushers/set``,
https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3pushersset).

A pusher is (user, ``app_id``, ``pushkey``) plus where to send (``data.url``).  Only
``kind: "http"`` is offered (this node sends no e-mail notifications); ``kind: null``
deletes.  Without ``append: true``, setting a pusher removes the pushers of *other* users
with the same app ID and pushkey (a device that changed hands stops getting the previous
user's notifications).  The URL must be ``http(s)://host[:port]/.../_matrix/push/v1/notify``
("MUST be an HTTPS URL with a path of /_matrix/push/v1/notify"; plain HTTP is accepted
for gateways on a private network or loopback, which the address filter still has to
allow).  Each user has at most ``max_pushers`` pushers; field lengths follow the spec
(``app_id`` 64 characters, ``pushkey`` 512 bytes) and ``data`` is at most 4 KiB.

All pushers are kept in memory (loaded at start): evaluation asks "does this user have a
pusher?" for every notification, synchronously.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import and_, delete, insert, select, update

from federation.errors import InvalidParam, MatrixError
from schema.push import pushers

from .ruleset import MissingParam

NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_DATA_BYTES = 4096
MAX_URL = 2048


@dataclass
class Pusher:
    id: int
    user_id: str
    app_id: str
    pushkey: str
    pushkey_ts: int
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict

    @property
    def url(self) -> str:
        return self.data["url"]

    def client_view(self) -> dict:
        out = {
            "pushkey": self.pushkey,
            "kind": "http",
            "app_id": self.app_id,
            "app_display_name": self.app_display_name,
            "device_display_name": self.device_display_name,
            "lang": self.lang,
            "data": dict(self.data),
        }
        if self.profile_tag is not None:
            out["profile_tag"] = self.profile_tag
        return out

    def device(self, tweaks: dict) -> dict:
        """The ``devices`` entry of a notify request: ``data`` without ``url``."""
        return {
            "app_id": self.app_id,
            "pushkey": self.pushkey,
            "pushkey_ts": self.pushkey_ts,
            "data": {k: v for k, v in self.data.items() if k != "url"},
            "tweaks": dict(tweaks),
        }


def check_url(url: object) -> str:
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidParam("data.url must be the push gateway's URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidParam("data.url is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidParam("data.url must be an http(s) URL")
    if not parts.path.endswith(NOTIFY_PATH) or parts.fragment or parts.username:
        raise InvalidParam(f"data.url must have the path {NOTIFY_PATH}")
    if port is not None and not 0 < port < 65536:
        raise InvalidParam("data.url has an invalid port")
    return url


def _string(body: dict, key: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise MissingParam(f"Missing '{key}'")
        return None
    if not isinstance(value, str):
        raise InvalidParam(f"'{key}' must be a string")
    if len(value.encode()) > limit:
        raise InvalidParam(f"'{key}' is longer than {limit} bytes")
    return value


@dataclass
class PusherRequest:
    app_id: str
    pushkey: str
    delete: bool
    append: bool = False
    app_display_name: str = ""
    device_display_name: str = ""
    profile_tag: str | None = None
    lang: str = ""
    data: dict | None = None


def parse_request(body: dict) -> PusherRequest:
    """Check a ``POST /pushers/set`` body (400 on any mistake)."""
    if "kind" not in body:
        raise MissingParam("Missing 'kind'")
    kind = body["kind"]
    app_id = _string(body, "app_id", 64)
    pushkey = _string(body, "pushkey", 512)
    assert app_id is not None and pushkey is not None
    if kind is None:
        return PusherRequest(app_id, pushkey, delete=True)
    if kind != "http":
        raise InvalidParam("Only 'http' pushers are supported")
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise InvalidParam("'append' must be true or false")
    data = body.get("data")
    if data is None:
        raise MissingParam("Missing 'data'")
    if not isinstance(data, dict):
        raise InvalidParam("'data' must be an object")
    check_url(data.get("url"))
    if "format" in data and data["format"] != "event_id_only":
        raise InvalidParam("data.format must be 'event_id_only' when given")
    if len(orjson.dumps(data)) > MAX_DATA_BYTES:
        raise MatrixError(
            f"'data' is larger than {MAX_DATA_BYTES} bytes", errcode="M_TOO_LARGE", http_status=413
        )
    return PusherRequest(
        app_id,
        pushkey,
        delete=False,
        append=append,
        app_display_name=_string(body, "app_display_name", 255) or "",
        device_display_name=_string(body, "device_display_name", 255) or "",
        profile_tag=_string(body, "profile_tag", 255, required=False),
        lang=_string(body, "lang", 64) or "",
        data=data,
    )


def _row_to_pusher(row: Any) -> Pusher:
    return Pusher(
        id=int(row.id),
        user_id=row.user_id,
        app_id=row.app_id,
        pushkey=row.pushkey,
        pushkey_ts=int(row.pushkey_ts),
        app_display_name=row.app_display_name,
        device_display_name=row.device_display_name,
        profile_tag=row.profile_tag,
        lang=row.lang,
        data=orjson.loads(row.data),
    )


def _load_all(conn: Any) -> list[Pusher]:
    return [_row_to_pusher(r) for r in conn.execute(select(pushers).order_by(pushers.c.id))]


def _key(user_id: str, app_id: str, pushkey: str) -> Any:
    c = pushers.c
    return and_(c.user_id == user_id, c.app_id == app_id, c.pushkey == pushkey)


def _set(conn: Any, user_id: str, req: PusherRequest, ts: int) -> list[Pusher]:
    """Write one pusher; returns the current pushers of every user touched."""
    c = pushers.c
    values = {
        "kind": "http",
        "pushkey_ts": ts,
        "app_display_name": req.app_display_name,
        "device_display_name": req.device_display_name,
        "profile_tag": req.profile_tag,
        "lang": req.lang,
        "data": orjson.dumps(req.data).decode(),
    }
    found = conn.execute(
        update(pushers).where(_key(user_id, req.app_id, req.pushkey)).values(**values)
    ).rowcount
    if not found:
        conn.execute(
            insert(pushers).values(
                user_id=user_id, app_id=req.app_id, pushkey=req.pushkey, **values
            )
        )
    if not req.append:
        conn.execute(
            delete(pushers).where(
                c.app_id == req.app_id, c.pushkey == req.pushkey, c.user_id != user_id
            )
        )
    return _load_all(conn)


def _delete(conn: Any, user_id: str, app_id: str, pushkey: str) -> list[Pusher]:
    conn.execute(delete(pushers).where(_key(user_id, app_id, pushkey)))
    return _load_all(conn)


def _delete_ids(conn: Any, ids: list[int]) -> list[Pusher]:
    conn.execute(delete(pushers).where(pushers.c.id.in_(ids)))
    return _load_all(conn)


class PusherStore:
    def __init__(self, db: Any, clock: Any, max_pushers: int = 10) -> None:
        self.db = db
        self.clock = clock
        self.max_pushers = max_pushers
        self._by_user: dict[str, list[Pusher]] = {}
        self._by_id: dict[int, Pusher] = {}

    def _replace(self, all_pushers: list[Pusher]) -> None:
        by_user: dict[str, list[Pusher]] = {}
        for p in all_pushers:
            by_user.setdefault(p.user_id, []).append(p)
        self._by_user = by_user
        self._by_id = {p.id: p for p in all_pushers}

    def load_sync(self) -> None:
        self._replace(self.db.run_sync(_load_all))

    def for_user(self, user_id: str) -> list[Pusher]:
        return self._by_user.get(user_id, [])

    def get(self, pusher_id: int) -> Pusher | None:
        return self._by_id.get(pusher_id)

    async def set(self, user_id: str, body: dict) -> None:
        req = parse_request(body)
        if req.delete:
            self._replace(await self.db.run(_delete, user_id, req.app_id, req.pushkey))
            return
        mine = self.for_user(user_id)
        exists = any(p.app_id == req.app_id and p.pushkey == req.pushkey for p in mine)
        if not exists and len(mine) >= self.max_pushers:
            raise MatrixError(
                f"At most {self.max_pushers} pushers per user",
                errcode="M_RESOURCE_LIMIT_EXCEEDED",
            )
        ts = self.clock.time_ms() // 1000
        self._replace(await self.db.run(_set, user_id, req, ts))

    async def remove(self, ids: list[int]) -> None:
        """Drop pushers whose pushkeys the gateway rejected."""
        if ids:
            self._replace(await self.db.run(_delete_ids, ids))
