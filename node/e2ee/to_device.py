"""Send-to-device messaging (client-server API "Send-to-Device messaging":
https://spec.matrix.org/v1.16/client-server-api/#send-to-device-messaging; server-server
API "Send-to-device messaging", ``m.direct_to_device``).

Rules:

1. ``PUT /sendToDevice/{eventType}/{txnId}`` is idempotent per (user, device, txnId): the
   transaction ID is recorded in the transaction that queues the messages, so a retry
   queues nothing and sends no EDU again (IDs are kept ``KEEP_TXN_MS``).
2. ``messages`` maps user -> device -> content; ``*`` means every device of the user.
   Our users' messages are queued per existing device (unknown devices are skipped);
   other servers' users go out as one ``m.direct_to_device`` EDU per server.
3. A queued message is delivered in the device's ``/sync`` ``to_device.events``
   (``{sender, type, content}``), at most ``SYNC_LIMIT`` per answer, until the device
   acknowledges it by syncing with a later ``since`` token; then it is deleted.
4. Received EDUs: the sender must be a user of the origin server; ``message_id`` makes
   them idempotent per origin; they are queued like local messages.
5. Limits: ``MAX_MESSAGES`` messages per request or EDU and ``MAX_REMOTE_SERVERS``
   other servers per request (413 ``M_TOO_LARGE``),
   ``MAX_QUEUED_PER_DEVICE`` waiting per device (more are dropped, logged: a device that
   never syncs cannot fill the disk).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from twisted.internet import defer

from federation.errors import BadJSON, InvalidParam, MatrixError
from federation.identifiers import is_valid_user_id
from node.accounts import store as accounts_store

from . import key_store, stream_store
from .checks import TooLarge
from .hooks import RemoteKeys, UsersNotifier

log = logging.getLogger("parta.e2ee")

STREAM = "to_device"
MAX_MESSAGES = 10_000
MAX_QUEUED_PER_DEVICE = 1_000
SYNC_LIMIT = 100
KEEP_TXN_MS = 24 * 3600 * 1000
MAX_TYPE_BYTES = 255
EDU_TYPE = "m.direct_to_device"
MAX_EMPTY_KNOWN = 100_000
MAX_REMOTE_SERVERS = 100


def _server(user_id: str) -> str:
    return user_id.split(":", 1)[1]


def check_event_type(event_type: str) -> str:
    if (
        not event_type
        or "\x00" in event_type
        or len(event_type.encode("utf-8", "surrogatepass")) > MAX_TYPE_BYTES
    ):
        raise InvalidParam("Invalid event type")
    return event_type


def parse_messages(messages: Any) -> list[tuple[str, str, dict]]:
    """``{user: {device or "*": content}}`` -> (user, device, content) rows."""
    if not isinstance(messages, dict):
        raise MatrixError("Missing 'messages' object", errcode="M_MISSING_PARAM")
    out = []
    for user_id, by_device in messages.items():
        if not is_valid_user_id(user_id):
            raise InvalidParam(f"{user_id[:300]!r} is not a valid user ID")
        if not isinstance(by_device, dict):
            raise BadJSON(f"messages[{user_id!r}] must map device IDs to contents")
        for device_id, content in by_device.items():
            if not device_id or "\x00" in device_id or len(device_id) > 255:
                raise InvalidParam("Invalid device ID")
            if not isinstance(content, dict):
                raise BadJSON("Each message content must be an object")
            out.append((user_id, device_id, content))
            if len(out) > MAX_MESSAGES:
                raise TooLarge(f"At most {MAX_MESSAGES} messages may be sent at once")
    return out


class ToDevice:
    def __init__(self, *, db: Any, clock: Any, notifier: UsersNotifier, server_name: str) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.server_name = server_name
        self.remote: RemoteKeys | None = None
        # Messages are numbered and committed in order (see DeviceLists._lock).
        self._lock = defer.DeferredLock()
        # Devices known to have nothing queued: their /sync skips the database.
        self._empty: set[tuple[str, str]] = set()
        self._queued = 0  # bumped on every queueing: a read that overlapped one proves nothing

    async def _expand(self, rows: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
        """Our users' rows for existing devices (``*``: all of them); rule 2."""

        def read(conn: Any) -> list[tuple[str, str, dict]]:
            out: list[tuple[str, str, dict]] = []
            all_devices: dict[str, list[str]] = {}
            wanted = [(u, d) for u, d, _c in rows if d != "*"]
            known = key_store.existing_devices(conn, wanted)
            for user_id, device_id, event in rows:
                if device_id == "*":
                    if user_id not in all_devices:
                        all_devices[user_id] = accounts_store.device_ids_of(conn, user_id)
                    out.extend((user_id, d, event) for d in all_devices[user_id])
                elif (user_id, device_id) in known:
                    out.append((user_id, device_id, event))
            return out

        return await self.db.run(read)

    async def _queue(
        self, rows: list[tuple[str, str, dict]], txn: tuple[str, str, str] | None
    ) -> bool:
        """Queue and notify; False when ``txn`` was handled before (rule 1)."""
        async with self._lock:
            if txn is not None and await self.db.run(stream_store.txn_seen, *txn):
                return False
            local = await self._expand(rows) if rows else []
            last, dropped = await self.db.run(
                stream_store.queue_messages,
                local,
                txn,
                self.clock.time_ms(),
                MAX_QUEUED_PER_DEVICE,
                KEEP_TXN_MS,
            )
        self._queued += 1
        for key in {(u, d) for u, d, _e in local}:
            self._empty.discard(key)
        for user_id, device_id in set(dropped):
            log.warning("event=to_device_dropped user_id=%s device_id=%s", user_id, device_id)
        if last:
            self.notifier.notify_users({u for u, _d, _e in local}, STREAM, last)
        return True

    async def send(
        self, sender: str, sender_device: str | None, event_type: str, txn_id: str, body: dict
    ) -> None:
        check_event_type(event_type)
        rows = parse_messages(body.get("messages"))
        local = [
            (u, d, {"sender": sender, "type": event_type, "content": c})
            for u, d, c in rows
            if _server(u) == self.server_name
        ]
        servers = {_server(u) for u, _d, _c in rows} - {self.server_name}
        if len(servers) > MAX_REMOTE_SERVERS:
            raise TooLarge(f"Messages may go to at most {MAX_REMOTE_SERVERS} other servers")
        txn = (sender, sender_device or "", txn_id)
        if not await self._queue(local, txn):
            return
        remote: dict[str, dict[str, dict[str, dict]]] = {}
        for user_id, device_id, content in rows:
            if _server(user_id) != self.server_name:
                remote.setdefault(_server(user_id), {}).setdefault(user_id, {})[device_id] = content
        if remote and self.remote is not None:
            for server, messages in remote.items():
                self.remote.send_edu(
                    [server],
                    EDU_TYPE,
                    {
                        "sender": sender,
                        "type": event_type,
                        "message_id": secrets.token_urlsafe(16),
                        "messages": messages,
                    },
                )

    async def receive_edu(self, origin: str, content: Any) -> None:
        """An ``m.direct_to_device`` EDU from ``origin`` (rule 4)."""
        if not isinstance(content, dict):
            return
        sender, event_type, message_id = (
            content.get("sender"),
            content.get("type"),
            content.get("message_id"),
        )
        if (
            not is_valid_user_id(sender)
            or _server(sender) != origin
            or not isinstance(event_type, str)
            or not isinstance(message_id, str)
            or not message_id
            or len(message_id) > 255
            or "\x00" in message_id
        ):
            return
        check_event_type(event_type)
        rows = parse_messages(content.get("messages"))
        local = [
            (u, d, {"sender": sender, "type": event_type, "content": c})
            for u, d, c in rows
            if _server(u) == self.server_name
        ]
        await self._queue(local, (origin, "", message_id))

    async def take(
        self, user_id: str, device_id: str, acked: int, upper: int
    ) -> tuple[list[dict], int]:
        """Rule 3: (events, the position the next token carries)."""
        key = (user_id, device_id)
        if key in self._empty:
            return [], upper
        serial = self._queued
        got = await self.db.run(
            stream_store.take_messages, user_id, device_id, acked, upper, SYNC_LIMIT
        )
        if not got and serial == self._queued:
            if len(self._empty) >= MAX_EMPTY_KNOWN:
                self._empty.clear()
            self._empty.add(key)
        if len(got) >= SYNC_LIMIT:
            return [e for _s, e in got], got[-1][0]
        return [e for _s, e in got], upper
