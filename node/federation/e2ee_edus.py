"""Inbound E2EE EDUs (server-server API "Send-to-device messaging" and "Device
Management": ``m.direct_to_device``, ``m.device_list_update``, ``m.signing_key_update``).

- ``m.direct_to_device``: queued for our users' devices by the e2ee area (the sender
  must be a user of the origin; ``message_id`` makes it idempotent per origin).
- ``m.device_list_update`` / ``m.signing_key_update``: the origin's user changed devices
  or keys; local users sharing a room with them see the user in ``device_lists.changed``
  and query the keys again (this node keeps no copy of remote keys, so there is nothing
  to update or resynchronise; ``prev_id`` gaps need no repair).  Updates about users of
  other servers than the origin are ignored.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from federation.identifiers import is_valid_user_id

Handler = Callable[[str, Any], Awaitable[None]]


def handlers(e2ee: Any) -> dict[str, Handler]:
    if e2ee is None:
        return {}

    async def to_device(origin: str, content: Any) -> None:
        await e2ee.to_device.receive_edu(origin, content)

    async def key_update(origin: str, content: Any) -> None:
        if not isinstance(content, dict):
            return
        user_id = content.get("user_id")
        if not is_valid_user_id(user_id) or user_id.split(":", 1)[1] != origin:
            return
        await e2ee.device_lists.keys_changed(user_id)

    return {
        "m.direct_to_device": to_device,
        "m.device_list_update": key_update,
        "m.signing_key_update": key_update,
    }
