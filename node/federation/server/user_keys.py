"""``POST /_matrix/federation/v1/user/keys/query`` and ``/user/keys/claim`` (spec:
server-server API "End-to-End Encryption", ``user_keys.yaml``), answered from the keys our
users published with the client-server API (``node/e2ee``).

keys/query (``{"device_keys": {userId: [deviceId, ...]}}``, ``[]`` = all devices):

1. every user must be ours (400 ``M_INVALID_PARAM``), each value a list of device ID
   strings (400 ``M_BAD_JSON``); at most ``MAX_USERS`` users / ``MAX_DEVICE_IDS`` device
   IDs (413 ``M_TOO_LARGE``, ``user_common``);
2. ``device_keys`` has an entry for each requested user that has an account here,
   mapping device ID -> the device keys it uploaded with ``/keys/upload`` (with the
   signatures of its owner's self-signing key), plus ``unsigned.device_display_name``
   only with ``federation.share_device_names`` (off by default: pupils' device names stay
   at school); devices without keys are left out, a user ID without an account too;
3. ``master_keys`` / ``self_signing_keys`` of the requested users that have them (never
   ``user_signing_keys``: those are their owner's only).

keys/claim (``{"one_time_keys": {userId: {deviceId: algorithm}}}``):

1. the same checks (each value an object of device ID -> algorithm string);
2. ``one_time_keys`` holds the key found for each device: a one-time key (handed out
   once), else its fallback key; devices without either are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import BadJSON
from federation.transport import endpoints as E

from ..xmatrix_auth import serve
from .user_common import body_map, check_counts, existing_users, local_user_id

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def parse_query(body: dict, server_name: str) -> dict[str, list[str]]:
    """keys/query rule 1: ``{userId: [deviceId, ...]}`` of our users."""
    requested = body_map(body, "device_keys")
    check_counts(len(requested), 0)  # before any per-user work
    out: dict[str, list[str]] = {}
    n_devices = 0
    for user_id, device_ids in requested.items():
        local_user_id(user_id, server_name)
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise BadJSON(f"device_keys[{user_id!r}] must be a list of device IDs")
        n_devices += len(device_ids)
        out[user_id] = device_ids
    check_counts(len(out), n_devices)
    return out


def parse_claim(body: dict, server_name: str) -> dict[str, dict[str, str]]:
    """keys/claim rule 1: ``{userId: {deviceId: algorithm}}`` of our users."""
    requested = body_map(body, "one_time_keys")
    check_counts(len(requested), 0)  # before any per-user work
    out: dict[str, dict[str, str]] = {}
    n_devices = 0
    for user_id, wanted in requested.items():
        local_user_id(user_id, server_name)
        if not isinstance(wanted, dict) or not all(isinstance(alg, str) for alg in wanted.values()):
            raise BadJSON(f"one_time_keys[{user_id!r}] must map device IDs to an algorithm name")
        n_devices += len(wanted)
        out[user_id] = wanted
    check_counts(len(out), n_devices)
    return out


def register(routes: Any, fctx: FederationContext) -> None:
    db = fctx.ctx.db

    async def keys_query(req: Any, origin: str) -> tuple[int, dict]:
        requested = parse_query(req.json(), fctx.server_name)  # 1.
        known = await db.run(existing_users, list(requested)) if requested else set()
        wanted = {u: d for u, d in requested.items() if u in known}
        if fctx.e2ee is None:
            return 200, {"device_keys": {u: {} for u in wanted}}
        share_names = fctx.config.share_device_names
        found = await fctx.e2ee.keys.local_keys(wanted, None, names=share_names)  # 2., 3.
        return 200, {
            "device_keys": found["device_keys"],
            "master_keys": found["master_keys"],
            "self_signing_keys": found["self_signing_keys"],
        }

    async def keys_claim(req: Any, origin: str) -> tuple[int, dict]:
        requested = parse_claim(req.json(), fctx.server_name)  # 1.
        if fctx.e2ee is None:
            return 200, {"one_time_keys": {}}
        return 200, {"one_time_keys": await fctx.e2ee.keys.claim_local(requested)}  # 2.

    serve(routes, E.USER_KEYS_QUERY, keys_query)
    serve(routes, E.USER_KEYS_CLAIM, keys_claim)
