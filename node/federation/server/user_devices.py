"""``GET /_matrix/federation/v1/user/devices/{userId}`` (spec: server-server API "Device
Management", ``user_devices.yaml``): the devices of one of our users, as a remote server
asks for them before it follows the user's ``m.device_list_update`` EDUs.

1. ``userId`` must be a user of this server (400 ``M_INVALID_PARAM`` otherwise, see
   ``user_common``); a user ID of ours with no account is 404 ``M_NOT_FOUND``.
2. ``devices``: every device of the user (oldest first), ``device_id`` plus
   ``device_display_name`` when the device has a name (the client-server API, "Device
   management": "The display names of devices are publicly visible") and the operator
   allows it: ``federation.share_device_names`` is off by default, since a school's device
   names ("Anna's iPhone") tell other servers about pupils; the field is optional.
3. ``keys``: the device keys the device uploaded with ``/keys/upload`` (``node/e2ee``).  A
   device that never uploaded any has none to give and the field is left out rather than
   filled with anything invented (receivers skip such devices).
4. ``stream_id``: the position of the user's latest key change in the device-list stream,
   the ``stream_id`` of the ``m.device_list_update`` EDUs we send for them (0: none yet).
5. ``master_key`` / ``self_signing_key``: the user's cross-signing keys, when stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from federation.errors import NotFound
from federation.transport import endpoints as E
from node.accounts import store as accounts_store
from node.e2ee import stream_store

from ..xmatrix_auth import serve
from .user_common import local_user_id

if TYPE_CHECKING:
    from node.federation.context import FederationContext

_CROSS_SIGNING = (("master_keys", "master_key"), ("self_signing_keys", "self_signing_key"))


def device_entry(row: dict, share_names: bool = False, keys: dict | None = None) -> dict:
    """One ``User Device`` of the response from a ``devices`` row (rules 2, 3)."""
    out: dict[str, Any] = {"device_id": row["device_id"]}
    if share_names and row.get("display_name") is not None:
        out["device_display_name"] = row["display_name"]
    if keys is not None:
        out["keys"] = keys
    return out


def devices_of(conn: Connection, user_id: str) -> list[dict] | None:
    """The user's device rows, or None when the user has no account here."""
    if not accounts_store.user_exists(conn, user_id):
        return None
    return accounts_store.list_devices(conn, user_id)


def register(routes: Any, fctx: FederationContext) -> None:
    db = fctx.ctx.db

    async def user_devices(req: Any, origin: str, userId: str) -> tuple[int, dict]:
        user_id = local_user_id(userId, fctx.server_name)  # 1.
        rows = await db.run(devices_of, user_id)
        share_names = fctx.config.share_device_names
        if rows is None:
            raise NotFound("User does not exist")
        keys: dict = {"device_keys": {user_id: {}}}
        stream_id = 0
        if fctx.e2ee is not None:
            keys = await fctx.e2ee.keys.local_keys({user_id: []}, None, names=False)
            stream_id = await db.run(stream_store.user_stream_id, user_id)
        device_keys = keys["device_keys"].get(user_id, {})
        out: dict[str, Any] = {
            "user_id": user_id,
            "stream_id": stream_id,  # 4.
            "devices": [
                device_entry(r, share_names, _without_unsigned(device_keys.get(r["device_id"])))
                for r in rows
            ],  # 2., 3.
        }
        for field, key in _CROSS_SIGNING:
            if user_id in keys.get(field, {}):
                out[key] = keys[field][user_id]  # 5.
        return 200, out

    serve(routes, E.USER_DEVICES, user_devices)


def _without_unsigned(obj: dict | None) -> dict | None:
    return None if obj is None else {k: v for k, v in obj.items() if k != "unsigned"}
