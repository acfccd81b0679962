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
3. ``keys`` (the device's identity keys, as uploaded with ``/keys/upload``): this node
   stores no E2EE keys (no ``/keys/upload``), so no device has any and the field is left
   out rather than filled with anything invented.  The schema lists ``keys`` as required;
   a device that never uploaded keys has none to give, and servers that federate today
   (Synapse among them) send such devices the same way and skip them on receipt.
4. ``stream_id``: the position of the user's latest ``m.device_list_update`` EDU, which
   receivers compare with later EDUs.  This node sends no such EDUs yet (there is no
   device-list stream), so it is 0 for every user; whoever adds the EDUs must number a
   user's updates from 1 and answer the latest one here.
5. ``master_key`` / ``self_signing_key``: only if stored; cross-signing keys are not
   stored, so they are never present.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from federation.errors import NotFound
from federation.transport import endpoints as E
from node.accounts import store as accounts_store

from ..xmatrix_auth import serve
from .user_common import local_user_id

if TYPE_CHECKING:
    from node.federation.context import FederationContext

# No device-list stream yet: no m.device_list_update EDU was ever sent (rule 4).
NO_DEVICE_LIST_UPDATES = 0


def device_entry(row: dict, share_names: bool = False) -> dict:
    """One ``User Device`` of the response from a ``devices`` row (rules 2, 3)."""
    out: dict[str, Any] = {"device_id": row["device_id"]}
    if share_names and row.get("display_name") is not None:
        out["device_display_name"] = row["display_name"]
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
        share_names = bool(getattr(fctx.config, "share_device_names", False))
        if rows is None:
            raise NotFound("User does not exist")
        return 200, {
            "user_id": user_id,
            "stream_id": NO_DEVICE_LIST_UPDATES,  # 4.
            "devices": [device_entry(r, share_names) for r in rows],
        }  # 2., 3.

    serve(routes, E.USER_DEVICES, user_devices)
