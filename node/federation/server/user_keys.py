"""``POST /_matrix/federation/v1/user/keys/query`` and ``/user/keys/claim`` (spec:
server-server API "End-to-End Encryption", ``user_keys.yaml``).

This node stores no E2EE keys: there is no ``/keys/upload`` (nor cross-signing or
one-time key storage) on the client side yet.  Both endpoints therefore answer truthfully
with what is stored -- nothing -- and never make keys up.

keys/query (``{"device_keys": {userId: [deviceId, ...]}}``, ``[]`` = all devices):

1. every user must be ours (400 ``M_INVALID_PARAM``), each value a list of device ID
   strings (400 ``M_BAD_JSON``); at most ``MAX_USERS`` users / ``MAX_DEVICE_IDS`` device
   IDs (413 ``M_TOO_LARGE``, ``user_common``);
2. ``device_keys`` has an entry for each requested user that has an account here,
   mapping device ID -> the keys the device uploaded with ``/keys/upload`` (plus
   ``unsigned``).  No device uploaded any, so every entry is ``{}``; a user ID of ours
   without an account is left out (there is nothing to say about it);
3. ``master_keys`` / ``self_signing_keys`` are left out: none are stored.

keys/claim (``{"one_time_keys": {userId: {deviceId: algorithm}}}``):

1. the same checks (each value an object of device ID -> algorithm string);
2. ``one_time_keys`` holds the keys found ("If a key matching these requirements can be
   found, the response contains it"): with no one-time or fallback keys stored, none is
   found and the map is ``{}``.
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
        # 2. No device keys are stored on this node: each known user's map is empty.
        # 3. No cross-signing keys are stored: no master_keys / self_signing_keys.
        return 200, {"device_keys": {u: {} for u in requested if u in known}}

    async def keys_claim(req: Any, origin: str) -> tuple[int, dict]:
        parse_claim(req.json(), fctx.server_name)  # 1.
        # 2. No one-time or fallback keys are stored: nothing can be claimed.
        return 200, {"one_time_keys": {}}

    serve(routes, E.USER_KEYS_QUERY, keys_query)
    serve(routes, E.USER_KEYS_CLAIM, keys_claim)
