"""Key distribution (client-server API "End-to-End Encryption", "Key management API":
https://spec.matrix.org/v1.16/client-server-api/#key-management-api): ``/keys/upload``,
``/keys/query``, ``/keys/claim``, and the local half of the federation's
``user/keys/query`` / ``user/keys/claim``.

Rules:

1. Upload: device keys must be the token's user and device and self-signed by the
   device's ed25519 key (``checks.device_keys``); at most ``MAX_KEYS_PER_UPLOAD`` one-time
   plus fallback keys per request (413 ``M_TOO_LARGE``) and ``MAX_OTKS_PER_DEVICE``
   stored one-time keys per device; one fallback key per algorithm.  The answer is the
   device's ``one_time_key_counts``.
2. Query: our users from the database (only devices that still exist, with their
   signatures); other servers' users through ``user/keys/query``, all servers at once,
   each bounded by ``timeout`` (default 10 s, at most ``MAX_TIMEOUT_MS``); a server that
   fails is listed in ``failures`` and its users are missing; at most
   ``MAX_REMOTE_SERVERS`` servers are asked per request (the others are failures).
   ``user_signing_keys`` only for the requesting user ("Cross-signing").  What a remote
   server answers is kept only for its own users.
3. Claim: one key per requested device, a one-time key first (each handed out once: it is
   deleted in the claiming transaction), else the fallback key.
4. At most ``MAX_USERS`` users and ``MAX_DEVICE_IDS`` device IDs per query or claim
   (413 ``M_TOO_LARGE``), the same caps the federation side applies.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from twisted.internet import defer

from federation.errors import BadJSON, InvalidParam, MatrixError
from federation.identifiers import is_valid_user_id

from . import checks, key_store
from .device_lists import DeviceLists
from .hooks import RemoteKeys

log = logging.getLogger("parta.e2ee")

MAX_OTKS_PER_DEVICE = 200
MAX_USERS = 1000
MAX_DEVICE_IDS = 10_000
DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 20_000
MAX_REMOTE_SERVERS = 50
_COUNTS_CACHE = 20_000


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


def check_counts(n_users: int, n_devices: int) -> None:
    if n_users > MAX_USERS:
        raise checks.TooLarge(f"At most {MAX_USERS} users may be requested at once")
    if n_devices > MAX_DEVICE_IDS:
        raise checks.TooLarge(f"At most {MAX_DEVICE_IDS} device IDs may be requested at once")


def parse_timeout(body: dict) -> float:
    value = body.get("timeout", DEFAULT_TIMEOUT_MS)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadJSON("'timeout' must be an integer (milliseconds)")
    return max(0, min(value, MAX_TIMEOUT_MS)) / 1000.0


def parse_query(body: dict) -> dict[str, list[str]]:
    """``{"device_keys": {userId: [deviceId, ...]}}`` (``[]``: every device)."""
    wanted = body.get("device_keys")
    if not isinstance(wanted, dict):
        raise MatrixError("Missing 'device_keys' object", errcode="M_MISSING_PARAM")
    check_counts(len(wanted), 0)
    n = 0
    for user_id, device_ids in wanted.items():
        if not is_valid_user_id(user_id):
            raise InvalidParam(f"{user_id[:300]!r} is not a valid user ID")
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise BadJSON(f"device_keys[{user_id!r}] must be a list of device IDs")
        n += len(device_ids)
    check_counts(len(wanted), n)
    return wanted


def parse_claim(body: dict) -> dict[str, dict[str, str]]:
    """``{"one_time_keys": {userId: {deviceId: algorithm}}}``."""
    wanted = body.get("one_time_keys")
    if not isinstance(wanted, dict):
        raise MatrixError("Missing 'one_time_keys' object", errcode="M_MISSING_PARAM")
    check_counts(len(wanted), 0)
    n = 0
    for user_id, devices in wanted.items():
        if not is_valid_user_id(user_id):
            raise InvalidParam(f"{user_id[:300]!r} is not a valid user ID")
        if not isinstance(devices, dict) or not all(
            isinstance(a, str) and a for a in devices.values()
        ):
            raise BadJSON(f"one_time_keys[{user_id!r}] must map device IDs to an algorithm")
        n += len(devices)
    check_counts(len(wanted), n)
    return wanted


def with_zero_count(counts: dict[str, int]) -> dict[str, int]:
    """Counts with ``signed_curve25519`` always present: "not listed" means zero in the
    spec, but some clients only upload new one-time keys when they see the field."""
    return {"signed_curve25519": 0, **counts}


def _with_signatures(obj: dict, extra: dict[str, dict[str, str]] | None) -> dict:
    if not extra:
        return obj
    out = dict(obj)
    merged = {u: dict(v) for u, v in (obj.get("signatures") or {}).items() if isinstance(v, dict)}
    for signer, by_key in extra.items():
        merged.setdefault(signer, {}).update(by_key)
    out["signatures"] = merged
    return out


class KeyService:
    def __init__(self, *, db: Any, server_name: str, device_lists: DeviceLists, clock: Any) -> None:
        self.db = db
        self.server_name = server_name
        self.device_lists = device_lists
        self.clock = clock
        self.remote: RemoteKeys | None = None
        # (user, device) -> (one-time key counts, unused fallback key types), for /sync.
        self._counts: OrderedDict[tuple[str, str], tuple[dict[str, int], list[str]]] = OrderedDict()

    # --- counts for /sync -----------------------------------------------------------------
    def forget_counts(self, user_id: str, device_id: str) -> None:
        self._counts.pop((user_id, device_id), None)

    async def counts(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str]]:
        key = (user_id, device_id)
        hit = self._counts.get(key)
        if hit is not None:
            self._counts.move_to_end(key)
            return hit

        def read(conn: Any) -> tuple[dict[str, int], list[str]]:
            return (
                key_store.otk_counts(conn, user_id, device_id),
                key_store.unused_fallback_types(conn, user_id, device_id),
            )

        value = await self.db.run(read)
        self._counts[key] = value
        if len(self._counts) > _COUNTS_CACHE:
            self._counts.popitem(last=False)
        return value

    # --- 1. upload ------------------------------------------------------------------------
    async def upload(self, user_id: str, device_id: str | None, body: dict) -> dict:
        if device_id is None:
            raise InvalidParam("Keys can only be uploaded with a device's access token")
        device_obj = None
        if body.get("device_keys") is not None:
            device_obj = checks.device_keys(body["device_keys"], user_id, device_id)
        otks = checks.one_time_keys(body.get("one_time_keys"), "one_time_keys")
        fbs = checks.one_time_keys(body.get("fallback_keys"), "fallback_keys")
        if len(otks) + len(fbs) > checks.MAX_KEYS_PER_UPLOAD:
            limit = checks.MAX_KEYS_PER_UPLOAD
            raise checks.TooLarge(f"At most {limit} keys may be uploaded at once")
        if len({alg for alg, _k, _j in fbs}) != len(fbs):
            raise BadJSON("At most one fallback key per algorithm")
        device_json = checks.encode(device_obj) if device_obj is not None else None

        def txn(conn: Any) -> tuple[bool, dict[str, int], list[str]]:
            changed = False
            if device_json is not None:
                cross = key_store.cross_signing_keys(conn, [user_id]).get(user_id, {})
                if any(checks.public_key_id(k) == device_id for k in cross.values()):
                    # "Servers MUST not allow devices to have the same IDs as
                    # cross-signing keys" ("Cross-signing").
                    raise InvalidParam("The device ID is the ID of a cross-signing key")
                changed = key_store.set_device_keys(conn, user_id, device_id, device_json)
            key_store.add_one_time_keys(conn, user_id, device_id, otks, MAX_OTKS_PER_DEVICE)
            key_store.set_fallback_keys(conn, user_id, device_id, fbs)
            return (
                changed,
                key_store.otk_counts(conn, user_id, device_id),
                key_store.unused_fallback_types(conn, user_id, device_id),
            )

        changed, counts, fallbacks = await self.db.run(txn)
        self._counts[(user_id, device_id)] = (counts, fallbacks)
        if changed and device_obj is not None:
            edu = {
                "user_id": user_id,
                "device_id": device_id,
                "stream_id": 0,
                "prev_id": [],
                "deleted": False,
                "keys": device_obj,
            }
            await self.device_lists.keys_changed(user_id, ("m.device_list_update", edu))
        return {"one_time_key_counts": with_zero_count(counts)}

    # --- 2. query -------------------------------------------------------------------------
    async def local_keys(
        self,
        wanted: dict[str, list[str]],
        viewer: str | None,
        *,
        names: bool = True,
    ) -> dict:
        """Keys of our users (``wanted`` holds only ours): ``device_keys``, ``master_keys``,
        ``self_signing_keys`` and, for ``viewer`` themself, ``user_signing_keys``."""

        def read(conn: Any) -> tuple[dict, dict, dict]:
            return (
                key_store.device_keys_for(conn, wanted),
                key_store.cross_signing_keys(conn, wanted),
                key_store.signatures_for(conn, wanted, viewer),
            )

        found, cross, extra = await self.db.run(read)
        device_keys: dict[str, dict] = {}
        for user_id in wanted:
            per_device = {}
            for device_id, (obj, name) in found.get(user_id, {}).items():
                obj = _with_signatures(obj, extra.get((user_id, device_id)))
                unsigned = {"device_display_name": name} if names and name is not None else {}
                per_device[device_id] = dict(obj, unsigned=unsigned)
            device_keys[user_id] = per_device
        out: dict[str, Any] = {"device_keys": device_keys}
        for key_type, field in (("master", "master_keys"), ("self_signing", "self_signing_keys")):
            got = {}
            for user_id, keys in cross.items():
                if key_type in keys:
                    obj = keys[key_type]
                    pub = checks.public_key_id(obj)
                    got[user_id] = _with_signatures(obj, extra.get((user_id, pub)))
            out[field] = got
        if viewer is not None and viewer in cross and "user_signing" in cross[viewer]:
            out["user_signing_keys"] = {viewer: cross[viewer]["user_signing"]}
        return out

    async def query(self, viewer: str, body: dict) -> dict:
        wanted = parse_query(body)
        timeout = parse_timeout(body)
        local = {u: d for u, d in wanted.items() if server_of(u) == self.server_name}
        remote: dict[str, dict[str, list[str]]] = {}
        for u, d in wanted.items():
            if server_of(u) != self.server_name:
                remote.setdefault(server_of(u), {})[u] = d
        out = await self.local_keys(local, viewer)
        out.setdefault("user_signing_keys", {})
        out["failures"] = {}
        if remote:
            answers = await self._fan_out(
                {s: ("query", q) for s, q in remote.items()}, timeout, out["failures"]
            )
            for server, answer in answers.items():
                for field in ("device_keys", "master_keys", "self_signing_keys"):
                    got = answer.get(field)
                    if not isinstance(got, dict):
                        continue
                    for user_id, value in got.items():
                        if user_id in remote[server] and isinstance(value, dict):
                            out[field][user_id] = value
        return out

    async def _fan_out(
        self, requests: dict[str, tuple[str, dict]], timeout: float, failures: dict
    ) -> dict[str, dict]:
        """Ask every server at once; the ones that fail go to ``failures``, and so do the
        servers past the first ``MAX_REMOTE_SERVERS`` (one request must not make the node
        contact any number of servers)."""
        remote = self.remote
        if remote is None or len(requests) > MAX_REMOTE_SERVERS:
            servers = sorted(requests)
            allowed = servers[:MAX_REMOTE_SERVERS] if remote is not None else []
            for server in servers:
                if server not in allowed:
                    failures[server] = {}
            requests = {s: requests[s] for s in allowed}
            if remote is None or not requests:
                return {}

        async def one(server: str, kind: str, payload: dict) -> tuple[str, dict | None]:
            try:
                if kind == "query":
                    answer = await remote.query_keys(server, payload, timeout)
                else:
                    answer = await remote.claim_keys(server, payload, timeout)
            except Exception as exc:  # noqa: BLE001 - any failure is "unreachable" here
                log.info("event=remote_keys_failed server=%s kind=%s error=%s", server, kind, exc)
                return server, None
            return server, answer if isinstance(answer, dict) else None

        results = await defer.gatherResults(
            [defer.ensureDeferred(one(s, k, p)) for s, (k, p) in requests.items()],
            consumeErrors=True,
        )
        out = {}
        for server, answer in results:
            if answer is None:
                failures[server] = {}
            else:
                out[server] = answer
        return out

    # --- 3. claim -------------------------------------------------------------------------
    async def claim_local(self, wanted: dict[str, dict[str, str]]) -> dict:
        """Claim keys of our users' devices: ``{user: {device: {alg:key_id: key}}}``."""
        requests = [(u, d, a) for u, devices in wanted.items() for d, a in devices.items()]
        if not requests:
            return {}

        def txn(conn: Any) -> list[tuple[str, str, str, Any]]:
            got = []
            for user_id, device_id, algorithm in requests:
                found = key_store.claim_one(conn, user_id, device_id, algorithm)
                if found is not None:
                    got.append((user_id, device_id, found[0], found[1]))
            return got

        claimed = await self.db.run(txn)
        out: dict[str, dict[str, dict]] = {}
        for user_id, device_id, name, key in claimed:
            out.setdefault(user_id, {}).setdefault(device_id, {})[name] = key
            self._counts.pop((user_id, device_id), None)
        return out

    async def claim(self, body: dict) -> dict:
        wanted = parse_claim(body)
        timeout = parse_timeout(body)
        local = {u: d for u, d in wanted.items() if server_of(u) == self.server_name}
        remote: dict[str, dict[str, dict[str, str]]] = {}
        for u, d in wanted.items():
            if server_of(u) != self.server_name:
                remote.setdefault(server_of(u), {})[u] = d
        out: dict[str, Any] = {"one_time_keys": await self.claim_local(local), "failures": {}}
        if remote:
            answers = await self._fan_out(
                {s: ("claim", q) for s, q in remote.items()}, timeout, out["failures"]
            )
            for server, answer in answers.items():
                got = answer.get("one_time_keys")
                if not isinstance(got, dict):
                    continue
                for user_id, value in got.items():
                    if user_id in remote[server] and isinstance(value, dict):
                        out["one_time_keys"][user_id] = value
        return out
