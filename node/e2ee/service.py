"""``E2eeService``: the E2EE area's parts (client-server API "End-to-End Encryption",
"Send-to-Device messaging"; server-server API "End-to-End Encryption", "Device
Management") and what ``/sync`` asks of them.

The server holds public keys, opaque to-device messages and encrypted backups only; it
never sees a message key.  Parts: ``keys`` (upload / query / claim), ``to_device``,
``device_lists``, ``cross_signing`` and ``backups``.  ``sync_section`` fills the
``to_device``, ``device_lists``, ``device_one_time_keys_count`` and
``device_unused_fallback_key_types`` fields of a ``/sync`` answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from twisted.internet import defer

from federation.identifiers import is_valid_user_id
from node.stream_tokens import StreamToken

from . import stream_store
from .backup import KeyBackups
from .cross_signing import CrossSigning
from .device_lists import DeviceLists
from .hooks import RemoteKeys, RoomsView, UsersNotifier
from .keys import KeyService, with_zero_count
from .sweep import DeviceSweep
from .to_device import ToDevice


@dataclass
class SyncSection:
    to_device: list[dict] = field(default_factory=list)
    to_device_pos: int = 0
    changed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    otk_counts: dict[str, int] = field(default_factory=dict)
    fallback_types: list[str] = field(default_factory=list)

    @property
    def has_news(self) -> bool:
        return bool(self.to_device or self.changed or self.left)

    def fill(self, response: dict) -> None:
        response["to_device"] = {"events": self.to_device}
        response["device_lists"] = {"changed": self.changed, "left": self.left}
        response["device_one_time_keys_count"] = with_zero_count(self.otk_counts)
        response["device_unused_fallback_key_types"] = self.fallback_types


class E2eeService:
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        server_name: str,
        rooms: RoomsView,
        notifier: UsersNotifier,
        accounts: Any = None,
    ) -> None:
        self.db = db
        self.server_name = server_name
        self.notifier = notifier
        self.accounts = accounts  # for the UIA of /keys/device_signing/upload
        self.device_lists = DeviceLists(
            db=db, rooms=rooms, notifier=notifier, server_name=server_name
        )
        self.keys = KeyService(
            db=db, server_name=server_name, device_lists=self.device_lists, clock=clock
        )
        self.to_device = ToDevice(db=db, clock=clock, notifier=notifier, server_name=server_name)
        self.cross_signing = CrossSigning(db=db, device_lists=self.device_lists)
        self.cross_signing.remote_master = self._remote_master
        self.backups = KeyBackups(db)
        self.sweep = DeviceSweep(db=db, clock=clock, device_lists=self.device_lists, keys=self.keys)
        self._started = False
        self._start_lock = defer.DeferredLock()

    def attach_federation(self, remote: RemoteKeys) -> None:
        """The federation wiring's implementation of remote key look-ups and EDUs."""
        self.keys.remote = remote
        self.to_device.remote = remote
        self.device_lists.remote = remote

    async def _remote_master(self, viewer: str, user_id: str) -> dict | None:
        """Another server's user's master key, as their server answers a keys query."""
        if not is_valid_user_id(user_id):
            return None
        found = await self.keys.query(viewer, {"device_keys": {user_id: []}})
        master = found.get("master_keys", {}).get(user_id)
        return master if isinstance(master, dict) else None

    def on_persisted(self, evs: Iterable[Any]) -> None:
        """Rooms persister hook (membership changes feed the device-list stream)."""
        self.device_lists.on_persisted(evs)

    async def start(self) -> None:
        """Seed the notifier with the streams' positions (once, before the first sync)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                to_device, device_lists = await self.db.run(stream_store.positions)
                self.notifier.set_current("to_device", to_device)
                self.notifier.set_current("device_lists", device_lists)
                self.device_lists.loaded(device_lists)
                self._started = True

    async def sync_section(
        self,
        user_id: str,
        device_id: str | None,
        since: StreamToken | None,
        upper: StreamToken,
        joined: Iterable[str],
    ) -> SyncSection:
        out = SyncSection(to_device_pos=upper.to_device)
        if device_id is not None:
            acked = since.to_device if since is not None else 0
            out.to_device, out.to_device_pos = await self.to_device.take(
                user_id, device_id, acked, upper.to_device
            )
            out.otk_counts, out.fallback_types = await self.keys.counts(user_id, device_id)
        if since is not None:
            out.changed, out.left = await self.device_lists.changes(
                user_id, since.device_lists, upper.device_lists, joined
            )
        return out

    async def key_changes(self, user_id: str, since: int, upper: int) -> dict:
        """``GET /keys/changes`` between two device-list positions."""
        changed, left = await self.device_lists.changes(user_id, since, upper)
        return {"changed": changed, "left": left}
