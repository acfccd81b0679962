"""Server-side key backups (client-server API "Server-side key backups":
https://spec.matrix.org/v1.16/client-server-api/#server-side-key-backups).

The server keeps what the client encrypted: a backup *version* (``algorithm``,
``auth_data``) and per room and Megolm session a ``KeyBackupData``.  Rules:

1. Versions are opaque strings to clients; here decimal numbers, per user, never reused
   (a deleted version keeps its number).  ``GET /room_keys/version`` is the latest live
   one; no backup is 404 ``M_NOT_FOUND``.
2. Only ``auth_data`` can change; a different ``algorithm``, or a body ``version`` that is
   not the path's, is 400 ``M_INVALID_PARAM``.
3. Keys are written only to the latest version; another existing version is 403
   ``M_WRONG_ROOM_KEYS_VERSION`` with ``current_version``; an unknown one 404.
4. A session already stored is replaced only by a better key (``SessionKey.better_than``).
5. Every answer to a write carries ``etag`` (changes whenever the stored keys change) and
   ``count``.
6. Limits: ``MAX_KEYS_PER_VERSION`` sessions per version, ``MAX_SESSION_DATA_BYTES`` per
   session, ``MAX_AUTH_DATA_BYTES`` of ``auth_data`` (413 ``M_TOO_LARGE``).
"""

from __future__ import annotations

from typing import Any

import orjson

from federation.errors import BadJSON, InvalidParam, MatrixError, NotFound

from . import backup_store as store
from .backup_store import SessionKey
from .checks import TooLarge

MAX_KEYS_PER_VERSION = 100_000
MAX_SESSION_DATA_BYTES = 16_384
MAX_AUTH_DATA_BYTES = 16_384
MAX_ID_BYTES = 255
MAX_INT = 2**53 - 1


class WrongVersion(MatrixError):
    errcode = "M_WRONG_ROOM_KEYS_VERSION"
    http_status = 403


def parse_version(value: Any) -> int:
    """A version string as this server hands them out; anything else names no backup."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise NotFound("Unknown backup version")
    return int(value)


def _size(value: Any, limit: int, what: str) -> None:
    if len(orjson.dumps(value)) > limit:
        raise TooLarge(f"{what} may be at most {limit} bytes")


def _id(value: str, what: str) -> str:
    if not value or "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InvalidParam(f"Invalid {what}")
    return value


def _room(value: str) -> str:
    """A room ID of any room version (``!`` and at most 255 bytes; the room may be gone)."""
    if not value.startswith("!"):
        raise InvalidParam("Invalid room ID")
    return _id(value, "room ID")


def session_key(obj: Any) -> SessionKey:
    """A ``KeyBackupData`` object (all four fields required)."""
    if not isinstance(obj, dict):
        raise BadJSON("Key data must be an object")
    ints = []
    for field in ("first_message_index", "forwarded_count"):
        v = obj.get(field)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_INT:
            raise BadJSON(f"'{field}' must be a non-negative integer")
        ints.append(v)
    if not isinstance(obj.get("is_verified"), bool):
        raise BadJSON("'is_verified' must be a boolean")
    data = obj.get("session_data")
    if not isinstance(data, dict):
        raise BadJSON("'session_data' must be an object")
    _size(data, MAX_SESSION_DATA_BYTES, "session_data")
    return SessionKey(ints[0], ints[1], obj["is_verified"], data)


def _algorithm_and_auth(body: dict) -> tuple[str, dict]:
    algorithm = body.get("algorithm")
    if not isinstance(algorithm, str) or not algorithm:
        raise MatrixError("Missing 'algorithm'", errcode="M_MISSING_PARAM")
    _id(algorithm, "algorithm")
    auth_data = body.get("auth_data")
    if not isinstance(auth_data, dict):
        raise MatrixError("Missing 'auth_data' object", errcode="M_MISSING_PARAM")
    _size(auth_data, MAX_AUTH_DATA_BYTES, "auth_data")
    return algorithm, auth_data


class KeyBackups:
    def __init__(self, db: Any) -> None:
        self.db = db

    # --- versions -------------------------------------------------------------------------
    async def create(self, user_id: str, body: dict) -> dict:
        algorithm, auth_data = _algorithm_and_auth(body)
        version = await self.db.run(store.create_version, user_id, algorithm, auth_data)
        return {"version": str(version)}

    async def info(self, user_id: str, version: str | None) -> dict:
        wanted = None if version is None else parse_version(version)

        def read(conn: Any) -> tuple[store.Version | None, int]:
            v = store.get_version(conn, user_id, wanted)
            return v, (store.count(conn, user_id, v.version) if v is not None else 0)

        v, n = await self.db.run(read)
        if v is None:
            raise NotFound("Unknown backup version" if version else "No current backup version")
        return {
            "algorithm": v.algorithm,
            "auth_data": v.auth_data,
            "count": n,
            "etag": str(v.etag),
            "version": str(v.version),
        }

    async def update(self, user_id: str, version: str, body: dict) -> dict:
        number = parse_version(version)
        algorithm, auth_data = _algorithm_and_auth(body)
        if "version" in body and body["version"] != version:
            raise InvalidParam("The body's version does not match the path's")

        def txn(conn: Any) -> None:
            v = store.get_version(conn, user_id, number)
            if v is None:
                raise NotFound("Unknown backup version")
            if v.algorithm != algorithm:
                raise InvalidParam("Algorithm does not match")
            store.update_auth_data(conn, user_id, number, auth_data)

        await self.db.run(txn)
        return {}

    async def delete(self, user_id: str, version: str) -> dict:
        number = parse_version(version)
        if not await self.db.run(store.delete_version, user_id, number):
            raise NotFound("Unknown backup version")
        return {}

    # --- keys -----------------------------------------------------------------------------
    async def put(
        self,
        user_id: str,
        version: Any,
        keys: list[tuple[str, str, SessionKey]],
    ) -> dict:
        number = parse_version(version)

        def txn(conn: Any) -> dict:
            current = store.get_version(conn, user_id, None)
            if current is None or (
                current.version != number and store.get_version(conn, user_id, number) is None
            ):
                raise NotFound("Unknown backup version")
            if current.version != number:
                raise WrongVersion("Wrong backup version.", current_version=str(current.version))
            if not store.put_keys(conn, user_id, number, keys, MAX_KEYS_PER_VERSION):
                raise TooLarge(f"A backup may hold at most {MAX_KEYS_PER_VERSION} sessions")
            v = store.get_version(conn, user_id, number)
            assert v is not None
            return {"etag": str(v.etag), "count": store.count(conn, user_id, number)}

        return await self.db.run(txn)

    async def get(
        self,
        user_id: str,
        version: Any,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict:
        number = parse_version(version)

        def read(conn: Any) -> dict | None:
            if store.get_version(conn, user_id, number) is None:
                return None
            return store.get_keys(conn, user_id, number, room_id, session_id)

        found = await self.db.run(read)
        if found is None:
            raise NotFound("Unknown backup version")
        if session_id is not None:
            assert room_id is not None
            key = found.get(room_id, {}).get(session_id)
            if key is None:
                raise NotFound("No key found for this session")
            return key
        if room_id is not None:
            return {"sessions": found.get(room_id, {})}
        return {"rooms": {r: {"sessions": s} for r, s in found.items()}}

    async def remove(
        self,
        user_id: str,
        version: Any,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict:
        number = parse_version(version)

        def txn(conn: Any) -> dict:
            v = store.get_version(conn, user_id, number)
            if v is None:
                raise NotFound("Unknown backup version")
            store.delete_keys(conn, user_id, number, room_id, session_id)
            v = store.get_version(conn, user_id, number)
            assert v is not None
            return {"etag": str(v.etag), "count": store.count(conn, user_id, number)}

        return await self.db.run(txn)

    # --- request bodies -------------------------------------------------------------------
    @staticmethod
    def parse_rooms(body: dict) -> list[tuple[str, str, SessionKey]]:
        """``PUT /room_keys/keys``: ``{"rooms": {roomId: {"sessions": {sessionId: ...}}}}``."""
        rooms = body.get("rooms")
        if not isinstance(rooms, dict):
            raise MatrixError("Missing 'rooms' object", errcode="M_MISSING_PARAM")
        out = []
        for room_id, entry in rooms.items():
            if not isinstance(entry, dict):
                raise BadJSON("Each room must be an object with 'sessions'")
            out.extend(KeyBackups.parse_sessions(_room(room_id), entry))
            if len(out) > MAX_KEYS_PER_VERSION:
                raise TooLarge("Too many sessions in one request")
        return out

    @staticmethod
    def parse_sessions(room_id: str, body: dict) -> list[tuple[str, str, SessionKey]]:
        """``PUT /room_keys/keys/{roomId}``: ``{"sessions": {sessionId: KeyBackupData}}``."""
        sessions = body.get("sessions")
        if not isinstance(sessions, dict):
            raise MatrixError("Missing 'sessions' object", errcode="M_MISSING_PARAM")
        return [
            (_room(room_id), _id(sid, "session ID"), session_key(data))
            for sid, data in sessions.items()
        ]

    @staticmethod
    def check_ids(room_id: str, session_id: str | None = None) -> None:
        _room(room_id)
        if session_id is not None:
            _id(session_id, "session ID")
