"""Removing the keys and messages of devices that no longer exist.

A device is deleted by the accounts area (logout, ``DELETE /devices``, a password change
that logs the other devices out, deactivation), which knows nothing about E2EE.  Its
keys stop being served at once (queries join with ``devices``), and the accounts area's
``device_deleted`` listener (``drop_deleted``, registered by the wiring) deletes what is
left of that user's deleted devices right after: device keys, one-time and fallback keys
and queued to-device messages (school computers shared by a class log in and out every
day: without it, every login would leave its 50 or so one-time keys behind for good).
This sweep, every ``SWEEP_SECONDS``, catches the rest (devices deleted by the CLI, or
while a listener failed).  A device whose keys were removed is a device-list change for
its user (client-server API "Tracking the device list for a user": "removed an existing
device with identity keys"), so the users sharing a room with them refresh their lists,
and other servers get an ``m.device_list_update`` with ``deleted: true``.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.engine import Connection

from schema.accounts import devices
from schema.e2ee import e2ee_device_keys, e2ee_fallback_keys, e2ee_one_time_keys, e2ee_to_device

from .device_lists import DeviceLists

log = logging.getLogger("parta.e2ee")

SWEEP_SECONDS = 300
MAX_DEVICES_PER_SWEEP = 1000
_TABLES = (e2ee_device_keys, e2ee_one_time_keys, e2ee_fallback_keys, e2ee_to_device)


def sweep_orphans(
    conn: Connection,
    limit: int,
    user_id: str | None = None,
    device_ids: Sequence[str] | None = None,
) -> list[tuple[str, str, bool]]:
    """Delete the E2EE rows of up to ``limit`` devices that no longer exist (only
    ``user_id``'s, and of those only ``device_ids``, when given); returns (user, device,
    had device keys)."""
    found: dict[tuple[str, str], bool] = {}
    for table in _TABLES:
        if len(found) >= limit:
            break
        gone = ~exists().where(
            and_(devices.c.user_id == table.c.user_id, devices.c.device_id == table.c.device_id)
        )
        q = select(table.c.user_id, table.c.device_id).where(gone)
        if user_id is not None:  # the primary keys start with user_id
            q = q.where(table.c.user_id == user_id)
        if device_ids is not None:
            q = q.where(table.c.device_id.in_(list(device_ids)))
        rows = conn.execute(q.distinct().limit(limit - len(found)))
        for user_id, device_id in rows:
            found.setdefault((user_id, device_id), table is e2ee_device_keys)
    for (user_id, device_id), _had in found.items():
        for table in _TABLES:
            conn.execute(
                delete(table).where(table.c.user_id == user_id, table.c.device_id == device_id)
            )
    return [(u, d, had) for (u, d), had in found.items()]


class DeviceSweep:
    def __init__(self, *, db: Any, clock: Any, device_lists: DeviceLists, keys: Any) -> None:
        self.db = db
        self.clock = clock
        self.device_lists = device_lists
        self.keys = keys
        self._call: Any = None

    async def run_once(self) -> int:
        removed = await self.db.run(sweep_orphans, MAX_DEVICES_PER_SWEEP)
        return await self._removed(removed)

    async def drop_deleted(self, user_id: str, device_ids: Sequence[str] | None) -> None:
        """The accounts area's ``device_deleted`` listener: the same clean-up for one
        user's devices just deleted (``None``: all of them), so the users sharing a room
        with them see the change in their next ``/sync`` rather than minutes later."""
        if device_ids is not None:
            device_ids = list(device_ids)[:MAX_DEVICES_PER_SWEEP]
            if not device_ids:
                return
        removed = await self.db.run(sweep_orphans, MAX_DEVICES_PER_SWEEP, user_id, device_ids)
        await self._removed(removed)

    async def _removed(self, removed: list[tuple[str, str, bool]]) -> int:
        for user_id, device_id, had_keys in removed:
            self.keys.forget_counts(user_id, device_id)
            if had_keys:
                edu = {
                    "user_id": user_id,
                    "device_id": device_id,
                    "stream_id": 0,
                    "prev_id": [],
                    "deleted": True,
                }
                await self.device_lists.keys_changed(user_id, ("m.device_list_update", edu))
        if removed:
            log.info("event=e2ee_devices_swept count=%d", len(removed))
        return len(removed)

    def start(self) -> None:
        self._call = self.clock.call_later(SWEEP_SECONDS, self._tick)

    def _tick(self) -> None:
        from twisted.internet import defer

        d = defer.ensureDeferred(self.run_once())
        d.addErrback(lambda f: log.warning("event=e2ee_sweep_failed error=%s", f.value))
        self._call = self.clock.call_later(SWEEP_SECONDS, self._tick)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
