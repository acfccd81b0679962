"""Device management (client-server "Device Management", device_management.yaml).

``GET /devices``, ``GET/PUT/DELETE /devices/{deviceId}``, ``POST /delete_devices``.
Rules: (1) a device of another user or an unknown one is 404 ``M_NOT_FOUND`` for GET/PUT
(clients may not create devices with PUT; only application services may); (2) deletion uses
UIA ``m.login.password`` for the requesting user and revokes the devices' access tokens;
deleting an already-deleted device succeeds.
"""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON

from ..uia import PASSWORD
from ._common import CLIENT_V3, device_id_param, device_name
from ._stages import password_stage


def register(router: Any, accounts: Any) -> None:
    handlers = {PASSWORD: password_stage(accounts)}

    async def list_devices(req: Any) -> tuple[int, dict]:
        return 200, {"devices": await accounts.list_devices(req.user_id)}

    async def get_device(req: Any, deviceId: str) -> tuple[int, dict]:
        return 200, await accounts.get_device(req.user_id, device_id_param(deviceId, "deviceId"))

    async def put_device(req: Any, deviceId: str) -> tuple[int, dict]:
        device_id_param(deviceId, "deviceId")
        body = req.json()
        if "display_name" in body:
            await accounts.update_device(req.user_id, deviceId, device_name(body, "display_name"))
        else:
            await accounts.get_device(req.user_id, deviceId)  # 404 if unknown (rule 1)
        return 200, {}

    async def _delete(req: Any, body: dict, device_ids: list[str]) -> tuple[int, dict]:
        session = await accounts.uia.authenticate(  # rule 2
            "delete_devices",
            body.get("auth"),
            [[PASSWORD]],
            handlers,
            user_id=req.user_id,
            client_ip=req.client_ip,
        )
        await accounts.delete_devices(req.user_id, device_ids)
        accounts.uia.finish(session)
        return 200, {}

    async def delete_device(req: Any, deviceId: str) -> tuple[int, dict]:
        device_id_param(deviceId, "deviceId")
        return await _delete(req, req.json(allow_empty=True), [deviceId])

    async def delete_devices(req: Any) -> tuple[int, dict]:
        body = req.json()
        devices = body.get("devices")
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise BadJSON("'devices' must be a list of device IDs")
        for device_id in devices:
            device_id_param(device_id, "devices")
        return await _delete(req, body, devices)

    router.add("GET", CLIENT_V3 + "/devices", list_devices)
    router.add("GET", CLIENT_V3 + "/devices/{deviceId}", get_device)
    router.add("PUT", CLIENT_V3 + "/devices/{deviceId}", put_device)
    router.add("DELETE", CLIENT_V3 + "/devices/{deviceId}", delete_device)
    router.add("POST", CLIENT_V3 + "/delete_devices", delete_devices)
